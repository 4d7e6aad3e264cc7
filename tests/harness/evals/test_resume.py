"""Kill-and-resume: an interrupted run resumes with ``inspect_ai.eval_retry`` and loses nothing.

Scripted models are served by harness/tools/sim_server.py (deterministic verdicts per criterion text),
so an uninterrupted run and an interrupted-then-resumed run must give identical scores. The
grading cache (SQLite under $M2BENCH_CACHE_DIR) survives the interruption: verdicts received
before it are not asked for again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai import eval_retry
from inspect_ai.log import list_eval_logs, read_eval_log
from inspect_ai.model import GenerateConfig, get_model

from harness.cache import GradingCache
from harness.grading import parse_grading_prompt
from harness.healthbench import load_file
from harness.rubric import rubric_score
from harness.tools.sim_server import SimServer, simulated_verdict
from tests.helpers.paths import DATA_DIR, FIXTURES, ROOT

pytestmark = pytest.mark.slow  # every test here kills and resumes a real `inspect eval` subprocess


HARD = DATA_DIR / "healthbench" / "hard_sample50_seed42.jsonl"
DATA = HARD if HARD.is_file() else FIXTURES / "reliability_hb.jsonl"
LIMIT = 8
EXAMPLES = load_file(DATA)[:LIMIT]
CRITERIA = sum(len(e.rubrics) for e in EXAMPLES)
TASK = "tasks/healthbench_hard"


def expected() -> dict[str, float]:
    return {e.prompt_id: rubric_score(e.rubrics, [simulated_verdict(i.criterion) for i in e.rubrics]) for e in EXAMPLES}


class GoesDown(SimServer):
    """A grader that answers ``healthy`` grading requests, then returns garbage until ``up()``."""

    def __init__(self, healthy: int, **kw):
        super().__init__(0.0, **kw)
        self.budget = healthy

    def up(self):
        self.budget = 10**9

    async def _complete(self, request, text, arrived):
        if parse_grading_prompt(request["messages"]) is not None:
            if self.budget <= 0:
                self._queued.appendleft("non_json")
            self.budget -= 1
        return await super()._complete(request, text, arrived)


def env(model_srv, grader_srv, cache_dir: Path) -> dict[str, str]:
    return {
        "SIMM_BASE_URL": model_srv.base_url,
        "SIMM_API_KEY": "test-key",
        "SIMG_BASE_URL": grader_srv.base_url,
        "SIMG_API_KEY": "test-key",
        "M2BENCH_CACHE_DIR": str(cache_dir),
    }


@pytest.fixture(autouse=True)
def _fresh_models(monkeypatch):
    """eval_retry rebuilds models from the log with get_model(), which memoizes them: a model
    from an earlier test would still point at that test's (stopped) server."""
    import inspect_ai.model._model as model_module

    monkeypatch.setattr(model_module, "_models", {})


def run(log_dir: Path, max_error_fraction: float, max_samples: int = 4):
    grader = get_model("openai-api/simg/sim-grader", config=GenerateConfig(max_retries=0), memoize=False, max_retries=0)
    [log] = inspect_eval(
        TASK,
        task_args={"data_file": str(DATA), "max_error_fraction": max_error_fraction},
        model=get_model("openai-api/simm/sim-model", memoize=False, max_retries=0),
        model_roles={"grader": grader},
        log_dir=str(log_dir),
        display="none",
        limit=LIMIT,
        max_samples=max_samples,
        log_buffer=1,
    )
    return log


def scores_of(log) -> dict[str, float]:
    return {s.id: s.scores["rubric_scorer"].value for s in log.samples if s.scores and not s.error}


def headline(log) -> float:
    return log.results.scores[0].metrics["score"].value


def cached_verdicts(cache_dir: Path) -> int:
    path = cache_dir / "grading.sqlite"
    return len(GradingCache(path)) if path.exists() else 0


def test_grader_down_midway_then_resume(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    # uninterrupted run
    with SimServer(0.0) as model_srv, SimServer(0.0) as grader_srv:
        for k, v in env(model_srv, grader_srv, tmp_path / "cache-a").items():
            monkeypatch.setenv(k, v)
        whole = run(tmp_path / "logs-a", max_error_fraction=0.0)
    assert whole.status == "success"
    assert scores_of(whole) == pytest.approx(expected())

    # the grader goes down after about half of the criteria: the run fails
    cache = tmp_path / "cache-b"
    with SimServer(0.0) as model_srv, GoesDown(healthy=CRITERIA // 2) as grader_srv:
        for k, v in env(model_srv, grader_srv, cache).items():
            monkeypatch.setenv(k, v)
        broken = run(tmp_path / "logs-b", max_error_fraction=0.0)
        assert broken.status == "error"
        done_before = scores_of(broken)
        assert len(done_before) < LIMIT
        stored = cached_verdicts(cache)
        assert stored == CRITERIA // 2  # every verdict received before the failure is on disk

        # the grader comes back; Inspect's retry resumes the same log
        grader_srv.up()
        grader_srv.reset_stats()
        model_srv.reset_stats()
        [resumed] = eval_retry(broken.location, log_dir=str(tmp_path / "logs-b"), display="none", max_retries=1)
        resumed_grader_calls = grader_srv.stats()["grader_calls"]
        resumed_model_calls = model_srv.stats()["model_calls"]

    assert resumed.status == "success"
    assert scores_of(resumed) == pytest.approx(scores_of(whole))
    assert headline(resumed) == pytest.approx(headline(whole))
    # no finished sample is redone: only the others are generated again
    assert resumed_model_calls == LIMIT - len(done_before)
    # no finished grading is redone: verdicts stored before the failure are cache hits
    redo = [e for e in EXAMPLES if e.prompt_id not in done_before]
    assert resumed_grader_calls == sum(len(e.rubrics) for e in redo) - (
        stored - sum(len(e.rubrics) for e in EXAMPLES if e.prompt_id in done_before)
    )
    assert resumed_grader_calls < sum(len(e.rubrics) for e in redo)  # the cache was hit
    assert cached_verdicts(cache) == CRITERIA


WORKER = """
import signal
import sys
# Ctrl-C as in a terminal, whatever this process inherited: a job started in the background inherits
# SIGINT ignored (and then Python installs no KeyboardInterrupt handler), and a blocked SIGINT stays blocked
signal.pthread_sigmask(signal.SIG_UNBLOCK, {{signal.SIGINT}})
signal.signal(signal.SIGINT, signal.default_int_handler)
from inspect_ai import eval
from inspect_ai.model import GenerateConfig, get_model
grader = get_model("openai-api/simg/sim-grader", config=GenerateConfig(max_retries=0), max_retries=0)
eval("{task}", task_args={{"data_file": "{data}", "max_error_fraction": 0.0}}, model="openai-api/simm/sim-model",
     model_roles={{"grader": grader}}, log_dir=sys.argv[1], display="none", limit={limit}, max_samples=1, log_buffer=1)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_killed_process_resumes(monkeypatch, tmp_path, sig):
    """``inspect eval`` in a subprocess, killed midway; eval_retry finishes the same run."""
    monkeypatch.chdir(ROOT)
    cache, logs = tmp_path / "cache", tmp_path / "logs"
    with SimServer(0.25) as model_srv, SimServer(0.02) as grader_srv:
        variables = env(model_srv, grader_srv, cache)
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER.format(task=TASK, data=DATA, limit=LIMIT), str(logs)],
            cwd=ROOT,
            env={**os.environ, **variables},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        # kill once about a quarter of the criteria are graded (early enough that a busy machine
        # cannot finish the run before the signal lands)
        deadline = time.monotonic() + 60
        while grader_srv.stats()["grader_calls"] < CRITERIA // 4 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
        proc.send_signal(sig)
        proc.wait(timeout=30)
        graded_before = grader_srv.stats()["grader_calls"]
        [info] = list_eval_logs(str(logs))
        killed = read_eval_log(info)
        assert killed.status in ("started", "cancelled")
        done_before = scores_of(killed)
        assert len(done_before) < LIMIT
        stored = cached_verdicts(cache)
        assert 0 < stored <= graded_before

        for k, v in variables.items():
            monkeypatch.setenv(k, v)
        grader_srv.reset_stats()
        model_srv.reset_stats()
        [resumed] = eval_retry(info, log_dir=str(logs), display="none", max_retries=1)
        resumed_grader_calls = grader_srv.stats()["grader_calls"]
        resumed_model_calls = model_srv.stats()["model_calls"]

    assert resumed.status == "success"
    assert scores_of(resumed) == pytest.approx(expected())
    assert resumed_model_calls == LIMIT - len(done_before)
    # every criterion is graded exactly once across both processes, except verdicts that were
    # in flight when the process died
    assert stored + resumed_grader_calls == CRITERIA
    assert cached_verdicts(cache) == CRITERIA
