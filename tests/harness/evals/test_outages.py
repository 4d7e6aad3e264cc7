"""An unreachable or hanging helper role ends the run, bounded by default limits, with a one-line cause.

Inspect retries a model call forever unless told otherwise; the grader, patient and rubric generator
get ``ROLE_LIMITS`` (attempt timeout, retries) unless the user set their own.
"""

from __future__ import annotations

import socket

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import GenerateConfig, get_model

from harness.evals.scoring import ROLE_LIMITS, bounded
from harness.grading import parse_grading_prompt
from harness.tools.sim_server import SimServer
from tests.helpers.paths import FIXTURES, ROOT

DATA = FIXTURES / "reliability_hb.jsonl"  # its first row has 3 criteria


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_role_limits_fill_only_what_the_user_left_unset():
    plain = get_model("mockllm/model", memoize=False)
    assert bounded(plain, GenerateConfig(temperature=0.5)).model_dump(exclude_none=True) == {"temperature": 0.5, **ROLE_LIMITS}
    own = get_model("mockllm/model", config=GenerateConfig(max_retries=7, attempt_timeout=9), memoize=False)
    assert bounded(own, GenerateConfig()).model_dump(exclude_none=True) == {}  # the role's own config stays in charge
    assert bounded(plain, GenerateConfig(attempt_timeout=5)).attempt_timeout == 5  # a caller's value is kept


def run(monkeypatch, tmp_path, grader, **options):
    monkeypatch.chdir(ROOT)
    [log] = inspect_eval(
        "tasks/healthbench_hard",
        task_args={"data_file": str(DATA), "responses": "ideal", "max_error_fraction": 0.0},
        model="mockllm/model",  # reference replies: the model under test is never called
        model_roles={"grader": grader},
        log_dir=str(tmp_path / "logs"),
        display="none",
        limit=1,
        **options,
    )
    return log


@pytest.mark.slow
def test_unreachable_grader_ends_the_run_with_a_one_line_cause(monkeypatch, tmp_path):
    port = closed_port()
    monkeypatch.setenv("DOWN_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("DOWN_API_KEY", "test-key")
    log = run(monkeypatch, tmp_path, get_model("openai-api/down/judge", memoize=False))
    assert log.status == "error"
    [sample] = log.samples
    for message in (log.error.message, sample.error.message):
        assert "\n" not in message and "RetryError" not in message
        assert f"grader openai-api/down/judge at http://127.0.0.1:{port}/v1 failed: connection refused" in message
        assert "3 criteria: " in message and "(after 3 attempts)" in message


class Hanging(SimServer):
    """Grader requests hang (the client gives up first); counts them."""

    def __init__(self):
        super().__init__(0.0, hang_s=30.0)
        self.grader_requests = 0

    async def _complete(self, request, text, arrived):
        if parse_grading_prompt(request["messages"]) is not None:
            self.grader_requests += 1
            self._queued.appendleft("timeout")
        return await super()._complete(request, text, arrived)


@pytest.mark.slow
def test_hanging_grader_is_retried_a_bounded_number_of_times(monkeypatch, tmp_path):
    with Hanging() as srv:
        monkeypatch.setenv("HANG_BASE_URL", srv.base_url)
        monkeypatch.setenv("HANG_API_KEY", "test-key")
        # the user's attempt timeout (1 s) is kept; the retries come from ROLE_LIMITS
        grader = get_model("openai-api/hang/judge", config=GenerateConfig(attempt_timeout=1), memoize=False)
        log = run(monkeypatch, tmp_path, grader)
        requests = srv.grader_requests
    assert log.status == "error"
    assert "timed out" in log.samples[0].error.message
    # 3 criteria x 3 engine attempts x (1 + max_retries) Inspect attempts, each cut by the attempt timeout
    assert requests == 3 * 3 * (1 + ROLE_LIMITS["max_retries"])
