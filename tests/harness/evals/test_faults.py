"""Grader and model faults, end to end: harness/tools/sim_server.py injects them over real HTTP.

- transient faults (HTTP 500/429, timeouts, truncated / non-JSON / empty replies, broken bodies)
  are retried and the scores come out exactly as without faults;
- persistent faults make the criterion / sample an *error* (an Inspect sample error), never a
  "not met": the headline averages only the graded samples, the errors are counted and listed;
- a run whose error fraction exceeds ``max_error_fraction`` is marked failed;
- retries are bounded (exact call counts) and back off.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import GenerateConfig, get_model

from harness.clients import OpenAIChat
from harness.evals.logs import results_table
from harness.grading import RubricGrader, parse_grading_prompt
from harness.healthbench import load_file
from harness.rubric import rubric_score
from harness.tools.sim_server import FAULT_KINDS, SimServer, simulated_verdict
from tests.helpers.paths import FIXTURES, ROOT

DATA = FIXTURES / "reliability_hb.jsonl"
EXAMPLES = load_file(DATA)
TASK = "tasks/healthbench_hard"  # run from the repository root
HTTP_FAULTS = ("http_500", "http_429", "timeout", "bad_body")


def expected_score(example) -> float:
    return rubric_score(example.rubrics, [simulated_verdict(i.criterion) for i in example.rubrics])


class FaultOnce(SimServer):
    """Each distinct request (criteria of a grader prompt, or the text of a model prompt) fails
    once, on its first arrival, with the next kind from ``kinds``; its retries are healthy."""

    def __init__(self, kinds, **kw):
        super().__init__(0.0, hang_s=2.0, **kw)
        self.kinds, self.seen = list(kinds), set()

    async def _complete(self, request, text, arrived):
        prompt = parse_grading_prompt(request["messages"])
        key = tuple(prompt.criteria) if prompt else text
        if key not in self.seen:
            self.seen.add(key)
            self._queued.appendleft(self.kinds[(len(self.seen) - 1) % len(self.kinds)])
        return await super()._complete(request, text, arrived)


class Poisoned(SimServer):
    """Grader requests about a conversation containing ``poison`` always get ``fault``."""

    def __init__(self, poison: str, fault: str):
        super().__init__(0.0)
        self.poison, self.fault = poison, fault

    async def _complete(self, request, text, arrived):
        if self.poison in text and parse_grading_prompt(request["messages"]) is not None:
            self._queued.appendleft(self.fault)
        return await super()._complete(request, text, arrived)


POISON = "swollen and warm"  # in the prompt of sample rel-4 only
POISONED_ID = "rel-4"


def run_eval(monkeypatch, tmp_path, model_srv, grader_srv, max_error_fraction=0.3, retry_on_error=0):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("SIMM_BASE_URL", model_srv.base_url)
    monkeypatch.setenv("SIMM_API_KEY", "test-key")
    monkeypatch.setenv("SIMG_BASE_URL", grader_srv.base_url)
    monkeypatch.setenv("SIMG_API_KEY", "test-key")
    # Inspect's own retry (3 s initial backoff) is off for the grader; the openai SDK retries
    # 429/5xx/timeouts twice with backoff, the rubric engine retries each criterion 3 times.
    grader = get_model(
        "openai-api/simg/sim-grader", config=GenerateConfig(max_retries=0), memoize=False, max_retries=2, client_timeout=0.5
    )
    [log] = inspect_eval(
        TASK,
        task_args={"data_file": str(DATA), "max_error_fraction": max_error_fraction},
        # memoize=False: a memoized model would keep the base URL of an earlier test's server
        model=get_model("openai-api/simm/sim-model", memoize=False, max_retries=2, client_timeout=0.5),
        model_roles={"grader": grader},
        max_retries=0,
        retry_on_error=retry_on_error,
        log_dir=str(tmp_path / "logs"),
        display="none",
        limit=4,
    )
    return log


def sample_scores(log) -> dict[str, float]:
    return {s.id: s.scores["rubric_scorer"].value for s in log.samples if s.scores}


def sample_errors(log) -> dict[str, str]:
    return {s.id: s.error.message for s in log.samples if s.error}


@pytest.mark.slow
def test_transient_faults_recover_through_inspect(monkeypatch, tmp_path):
    with FaultOnce(HTTP_FAULTS) as model_srv, FaultOnce(FAULT_KINDS) as grader_srv:
        # a broken response body from the model under test is not retried by the SDK or by
        # Inspect's HTTP retry; Inspect's retry_on_error re-runs that sample
        log = run_eval(monkeypatch, tmp_path, model_srv, grader_srv, retry_on_error=1)
    assert log.status == "success", log.error
    assert sample_errors(log) == {}
    assert [s.id for s in log.samples if s.error_retries] != []
    assert sample_scores(log) == {e.prompt_id: pytest.approx(expected_score(e)) for e in EXAMPLES}
    # every fault kind really happened, on the grader and on the model under test
    assert set(grader_srv.stats()["faults"]) == set(FAULT_KINDS)
    assert set(model_srv.stats()["faults"]) == set(HTTP_FAULTS)


@pytest.mark.slow
def test_persistent_grader_fault_is_a_sample_error_not_a_zero(monkeypatch, tmp_path):
    with SimServer(0.0) as model_srv, Poisoned(POISON, "http_500") as grader_srv:
        started = time.monotonic()
        log = run_eval(monkeypatch, tmp_path, model_srv, grader_srv, max_error_fraction=0.3)
        elapsed = time.monotonic() - started
    assert log.status == "success"  # 1 error in 4 samples is under 0.3
    errors = sample_errors(log)
    assert list(errors) == [POISONED_ID]
    assert "3 of 3 criteria could not be graded" in errors[POISONED_ID]
    assert "InternalServerError" in errors[POISONED_ID]
    # reported separately: 3 of 4 samples scored; the error is not a score of 0
    assert (log.results.total_samples, log.results.completed_samples) == (4, 3)
    good = [e for e in EXAMPLES if e.prompt_id != POISONED_ID]
    headline = log.results.scores[0].metrics["score"].value
    assert headline == pytest.approx(sum(map(expected_score, good)) / 3)
    folded = sum(map(expected_score, good)) / 4  # what "not met" for the failed sample would give
    assert headline != pytest.approx(folded)
    # bounded: 3 criteria x 3 engine attempts x 3 HTTP attempts (SDK: 1 + 2 retries), then give up
    assert grader_srv.stats()["faults"] == {"http_500": 27}
    assert elapsed > 1.5  # engine backoff 0.5 s + 1.0 s between attempts, plus SDK backoff
    # a run with an errored sample is not a result by default; asked for, its row carries the graded count
    assert results_table([tmp_path / "logs"]).empty
    [row] = results_table([tmp_path / "logs"], include_incomplete=True).to_dict("records")
    assert row["n"] == 3 and row["score"] == pytest.approx(headline)


@pytest.mark.slow  # over ~3 s: the fast loop leaves it out
def test_error_fraction_over_threshold_fails_the_run(monkeypatch, tmp_path):
    with SimServer(0.0) as model_srv, Poisoned(POISON, "non_json") as grader_srv:
        log = run_eval(monkeypatch, tmp_path, model_srv, grader_srv, max_error_fraction=0.2)
    assert log.status == "error"  # 1 of 4 = 0.25 > 0.2
    assert "could not be graded" in log.error.message
    assert list(sample_errors(log)) == [POISONED_ID]
    assert "unparseable grader reply" in sample_errors(log)[POISONED_ID]
    assert grader_srv.stats()["faults"] == {"non_json": 9}  # 3 criteria x 3 attempts
    # a failed run never reaches the results table
    assert results_table([tmp_path / "logs"]).empty


# ---- the engine with harness.clients.OpenAIChat (the verl reward's path) --------------------


def grade_all(chat, mode, max_attempts=3):
    engine = RubricGrader(chat, grader_id=chat.name, mode=mode, max_attempts=max_attempts, retry_delay=0.05)
    return asyncio.run(_grade_all(engine))


async def _grade_all(engine):
    return await asyncio.gather(*(engine.grade(e.prompt, "Drink fluids and see a doctor.", e.rubrics) for e in EXAMPLES))


@pytest.mark.parametrize("mode", ["per_criterion", "batched"])
def test_openai_chat_transient_faults_recover(mode):
    with FaultOnce(FAULT_KINDS) as srv:
        grades = grade_all(OpenAIChat(srv.base_url, "sim-grader", timeout=0.5, max_retries=2), mode)
        faults = srv.stats()["faults"]
    assert all(not g.errors for g in grades)
    assert [g.score for g in grades] == [pytest.approx(expected_score(e)) for e in EXAMPLES]
    assert sum(faults.values()) == (12 if mode == "per_criterion" else 4)


@pytest.mark.parametrize(
    "fault, calls_per_criterion", [("http_500", 3 * 2), ("empty", 3), ("truncated_json", 3), ("bad_body", 3)]
)
def test_openai_chat_persistent_faults_are_errors(fault, calls_per_criterion):
    with SimServer(0.0, error_rate=1.0, faults=[fault]) as srv:
        # no timeout fault here: a generous client timeout keeps a busy machine from adding retries
        grades = grade_all(OpenAIChat(srv.base_url, "sim-grader", timeout=10, max_retries=1), "per_criterion")
        calls = srv.stats()["calls"]
    for grade, example in zip(grades, EXAMPLES):
        assert grade.score is None and grade.metrics == {}  # no score, rather than "not met"
        assert len(grade.errors) == len(example.rubrics)
        assert all("after 3 attempts" in v.error for v in grade.errors)
    assert calls == 12 * calls_per_criterion  # bounded retries


def test_partly_failed_example_has_no_score():
    """Two criteria graded, one lost: the example is an error, not a partial score."""
    example = EXAMPLES[0]
    lost = example.rubrics[1].criterion

    class LoseOne(SimServer):
        async def _complete(self, request, text, arrived):
            if lost in text:
                self._queued.appendleft("non_json")
            return await super()._complete(request, text, arrived)

    with LoseOne(0.0) as srv:
        engine = RubricGrader(OpenAIChat(srv.base_url, "g", max_retries=0), grader_id="g", retry_delay=0.01)
        grade = asyncio.run(engine.grade(example.prompt, "answer", example.rubrics))
    assert grade.score is None
    assert [v.item.criterion for v in grade.errors] == [lost]
    assert sum(v.met is not None for v in grade.verdicts) == 2


def test_zero_error_fraction_passes_a_clean_run(monkeypatch, tmp_path):
    """max_error_fraction=0: any error fails the run, and an error-free run succeeds
    (Inspect's bare fail_on_error=0.0 marks an error-free run as failed: 0 errors >= 0 * n)."""
    with SimServer(0.0) as model_srv, SimServer(0.0) as grader_srv:
        log = run_eval(monkeypatch, tmp_path, model_srv, grader_srv, max_error_fraction=0.0)
    assert log.status == "success" and log.results.completed_samples == 4


@pytest.mark.slow  # over ~1.5 s: the fast loop leaves it out
def test_error_fraction_at_the_threshold_is_not_a_failure(monkeypatch, tmp_path):
    """1 error in 4 samples with max_error_fraction=0.25: not *more than* the fraction."""
    with SimServer(0.0) as model_srv, Poisoned(POISON, "non_json") as grader_srv:
        log = run_eval(monkeypatch, tmp_path, model_srv, grader_srv, max_error_fraction=0.25)
    assert log.status == "success"
    assert list(sample_errors(log)) == [POISONED_ID]
