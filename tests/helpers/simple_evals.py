"""simple-evals' own HealthBench code, imported from the registered reference files for conformance tests.

The import itself is ``harness.simple_evals.upstream_module`` (shared with the peer benchmark).
``RecordingSampler`` is upstream's own ``ChatCompletionSampler`` with
its OpenAI client replaced by a recorder, so what is recorded is exactly the request upstream makes.
"""

from __future__ import annotations

import hashlib
import json
import threading
from types import ModuleType, SimpleNamespace

import pytest

from harness.errors import DataError
from harness.simple_evals import upstream_module


def upstream(module: str) -> ModuleType:
    """``<package>.<module>`` of simple-evals (e.g. ``healthbench_eval``); the test is skipped without the files."""
    try:
        return upstream_module(module)
    except DataError as exc:
        pytest.skip(f"simple-evals reference files not available: {exc}")


def scripted_reply(prompt: str) -> str:
    """A deterministic grader reply to a prompt: the verdict and the reply's format depend on its hash."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    verdict = json.dumps({"explanation": f"e{digest[2]}", "criteria_met": digest[0] % 2 == 0}, indent=2)
    return [verdict, f"```json\n{verdict}\n```", f"  {verdict}\n"][digest[1] % 3]


class RecordingSampler:
    """Upstream's ChatCompletionSampler (as its CLI builds the grader) whose client records each request."""

    def __init__(self, monkeypatch, **sampler_args):
        monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-used")
        sampler_module = upstream("sampler.chat_completion_sampler")
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self.sampler = sampler_module.ChatCompletionSampler(**sampler_args)
        self.sampler.client = SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=self._create)))

    def _create(self, **request):
        with self._lock:
            self.requests.append(request)
        reply = scripted_reply(request["messages"][-1]["content"])
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=reply))], usage=None)
