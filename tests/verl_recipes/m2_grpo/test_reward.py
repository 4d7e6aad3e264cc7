"""The verl reward (verl_recipes.m2_grpo.reward) gives the Inspect scorers' scores, shares one engine, never hides errors."""

import asyncio
import json
import re

import pytest
from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import MemoryDataset
from inspect_ai.solver import generate

from harness.errors import GradingError
from harness.evals.healthbench import to_sample
from harness.evals.medqa import medqa_task
from harness.evals.scoring import rubric_scorer
from harness.grading import parse_grading_prompt
from harness.healthbench import load_file
from harness.medqa import load_medqa
from tests.helpers.paths import FIXTURES, shared_file
from tests.helpers.scripted import mock_model
from verl_recipes.m2_grpo import data, grader, reward

REPLIES = ["Drink fluids and rest.", "See a doctor today; hydration matters.", "Unproven remedies may help."]


def decide(criterion: str, reply: str) -> bool:
    """Scripted grader depending on criterion AND reply, so scores differ between replies."""
    words = set(re.findall(r"[a-z]{4,}", criterion.lower()))
    return len(words & set(re.findall(r"[a-z]{4,}", reply.lower()))) >= 1


def grader_reply(prompt: str) -> str:
    parsed = parse_grading_prompt(prompt)
    verdicts = [{"explanation": "s", "criteria_met": decide(c, parsed.reply)} for c in parsed.criteria]
    return json.dumps({str(n): v for n, v in enumerate(verdicts, 1)} if parsed.batched else verdicts[0])


async def grade_fn(messages, json_schema=None):
    grade_fn.calls += 1
    await asyncio.sleep(0)  # yield, so concurrent calls really interleave
    return grader_reply(messages[-1]["content"])


def policy_reply(prompt: str) -> str:
    return REPLIES[sum(map(ord, prompt)) % len(REPLIES)]


@pytest.fixture(autouse=True)
def _fresh_engine():
    reward.reset()
    yield
    reward.reset()


def healthbench_examples():
    examples = load_file(FIXTURES / "healthbench_mini.jsonl")
    path = shared_file("healthbench", "hard_sample50_seed42.jsonl")
    return examples + load_file(path)[:4]


@pytest.mark.parametrize(
    "profile, mode", [("simple_evals", "per_criterion"), ("m2bench", "per_criterion"), ("m2bench", "batched")]
)
def test_healthbench_parity_with_the_inspect_scorer(tmp_path, profile, mode):
    """The same scores from the Inspect scorer and the reward, in the default (official) profile and in ours."""
    examples = healthbench_examples()
    task = Task(
        dataset=MemoryDataset([to_sample(e) for e in examples]),
        solver=generate(),
        scorer=rubric_scorer(grading_mode=mode, grader_profile=profile),
    )
    log = inspect_eval(
        task,
        model=mock_model(policy_reply),
        model_roles={"grader": mock_model(grader_reply)},
        log_dir=str(tmp_path),
        display="none",
    )[0]
    assert log.status == "success"
    inspect_scores = {s.id: (s.output.completion, s.scores["rubric_scorer"].value) for s in log.samples}
    grade_fn.calls = 0
    reward.configure(grade_fn, grader_id="scripted", mode=mode, cache=False, healthbench_profile=profile)
    rows = {r["extra_info"]["item_id"]: r for r in (data.healthbench_row(e, "test") for e in examples)}
    verl_scores = {}
    for pid, (reply, _) in inspect_scores.items():
        r = rows[f"healthbench:{pid}"]
        out = asyncio.run(reward.compute_score(r["data_source"], reply, r["reward_model"]["ground_truth"], r["extra_info"]))
        assert out["reward_valid"] == 1.0
        verl_scores[pid] = out["score"]
    assert verl_scores == {pid: score for pid, (_, score) in inspect_scores.items()}
    assert len(set(verl_scores.values())) > 2  # the scripted grader makes scores differ
    assert grade_fn.calls > 0


def test_medqa_parity_with_the_inspect_scorer(tmp_path):
    shared_file("medqa", "phrases_no_exclude_test.jsonl")
    questions = load_medqa("test")[:12]

    # replies of every kind: right, wrong, ambiguous, no answer, option text, boxed
    def reply(prompt):
        q = next(q for q in questions if q.question in prompt)
        n = int(q.id.split("-")[1]) % 6
        wrong = next(k for k in q.options if k != q.answer)
        return [
            f"ANSWER: {q.answer}",
            f"ANSWER: {wrong}",
            f"A or {wrong}",
            "I am not sure.",
            f"It is {q.options[q.answer]}.",
            f"\\boxed{{{q.answer}}}",
        ][n]

    log = inspect_eval(medqa_task("test", cot=True), model=mock_model(reply), limit=12, log_dir=str(tmp_path), display="none")[0]
    assert log.status == "success"
    rows = {r["extra_info"]["item_id"]: r for r in (data.medqa_row(q, "test") for q in questions)}
    values = []
    for sample in log.samples:
        r = rows[f"medqa:{sample.id}"]
        assert r["prompt"][0]["content"] == sample.input  # the same prompt as the eval
        out = asyncio.run(
            reward.compute_score(r["data_source"], sample.output.completion, r["reward_model"]["ground_truth"], r["extra_info"])
        )
        expected = 1.0 if sample.scores["choice_scorer"].value == "C" else 0.0
        assert out == {"score": expected, "reward_valid": 1.0, "grader_calls": 0.0, "graded_criteria": 0.0}
        values.append(expected)
    assert 0 < sum(values) < len(values)


def test_concurrent_calls_share_one_engine_and_cache():
    grade_fn.calls = 0
    from harness.cache import GradingCache

    engine = reward.configure(grade_fn, grader_id="scripted", cache=GradingCache())
    example = load_file(FIXTURES / "healthbench_mini.jsonl")[0]
    r = data.healthbench_row(example, "test")

    async def batch():
        return await asyncio.gather(
            *(
                reward.compute_score(r["data_source"], REPLIES[i % 3], r["reward_model"]["ground_truth"], r["extra_info"])
                for i in range(64)
            )
        )

    first = asyncio.run(batch())
    assert reward.engine() is engine
    calls_first = grade_fn.calls
    assert calls_first >= 9  # 3 distinct replies x 3 criteria at least
    second = asyncio.run(batch())  # a new event loop: same engine, all verdicts from the cache
    assert grade_fn.calls == calls_first
    assert [o["score"] for o in first] == [o["score"] for o in second]
    assert all(sorted(o) == sorted(reward.EXTRA_KEYS) for o in first + second)


def test_grading_errors_get_the_fallback_and_are_flagged(caplog):
    async def broken(messages, json_schema=None):
        return "no json here"

    reward.configure(broken, grader_id="broken", cache=False)
    reward.engine().retry_delay = 0
    r = data.healthbench_row(load_file(FIXTURES / "healthbench_mini.jsonl")[0], "test")
    out = asyncio.run(
        reward.compute_score(r["data_source"], "reply", r["reward_model"]["ground_truth"], r["extra_info"], invalid_score=-1.0)
    )
    assert out["reward_valid"] == 0.0 and out["score"] == -1.0
    assert sorted(out) == sorted(reward.EXTRA_KEYS)
    assert "not graded" in caplog.text and "unparseable" in caplog.text


def test_unknown_data_source_is_an_error():
    with pytest.raises(GradingError, match="unknown data_source"):
        asyncio.run(reward.compute_score("openai/gsm8k", "x", "1", {}))


def test_grader_from_env(monkeypatch):
    monkeypatch.setenv(reward.GRADER_URL_ENV, "http://user:secret@localhost:8000/v1")
    monkeypatch.setenv(reward.GRADER_MODEL_ENV, "judge")
    client, name = grader.grader_from_env()
    assert name == "openai-compatible/judge@http://localhost:8000/v1"  # credentials redacted
    monkeypatch.delenv(reward.GRADER_MODEL_ENV)
    with pytest.raises(GradingError, match="set both"):
        grader.grader_from_env()


def test_one_environment_lookup_for_grader_and_patient(monkeypatch):
    for role in grader.ROLES:
        for what in ("BASE_URL", "MODEL", "API_KEY"):
            monkeypatch.delenv(f"M2BENCH_{role.upper()}_{what}", raising=False)
    assert grader.endpoint("grader") is None and grader.endpoint("patient") is None
    monkeypatch.setenv("M2BENCH_GRADER_BASE_URL", "http://grader:8000/v1")
    monkeypatch.setenv("M2BENCH_GRADER_MODEL", "judge")
    patient = grader.endpoint("patient")  # borrows the grader's endpoint
    assert (patient.base_url, patient.model, patient.source) == ("http://grader:8000/v1", "judge", "grader")
    assert "the grader's endpoint" in grader.describe("patient")
    monkeypatch.setenv("M2BENCH_PATIENT_BASE_URL", "http://patient:8001/v1")
    with pytest.raises(GradingError, match="M2BENCH_PATIENT_BASE_URL and M2BENCH_PATIENT_MODEL"):
        grader.endpoint("patient")  # the same both-or-neither rule as the grader
    monkeypatch.setenv("M2BENCH_PATIENT_MODEL", "sim-patient")
    monkeypatch.setenv("M2BENCH_PATIENT_API_KEY", "sk-patient")
    found = grader.endpoint("patient")
    assert (found.base_url, found.model) == ("http://patient:8001/v1", "sim-patient")
    assert found.client()._api_key == "sk-patient" and "sk-patient" not in grader.describe("patient")


def test_healthbench_rows_default_to_the_official_profile(monkeypatch):
    seen = []

    async def recording(messages, json_schema=None, sampling=None):
        seen.append(messages)
        return grader_reply(messages[-1]["content"])

    monkeypatch.delenv(grader.PROFILE_ENV, raising=False)
    reward.configure(recording, grader_id="scripted", cache=False)
    r = data.healthbench_row(load_file(FIXTURES / "healthbench_mini.jsonl")[0], "test")
    asyncio.run(reward.compute_score(r["data_source"], "reply", r["reward_model"]["ground_truth"], r["extra_info"]))
    assert len(seen) == 3 and {parse_grading_prompt(m).profile for m in seen} == {"simple_evals"}
    with pytest.raises(GradingError, match=f"{grader.PROFILE_ENV}=m2bench"):
        reward.configure(recording, grader_id="scripted", mode="batched", cache=False)
    monkeypatch.setenv(grader.PROFILE_ENV, "m2bench")
    reward.configure(recording, grader_id="scripted", mode="batched", cache=False)
    asyncio.run(reward.compute_score(r["data_source"], "reply", r["reward_model"]["ground_truth"], r["extra_info"]))
    assert len(seen) == 4 and parse_grading_prompt(seen[-1]).batched
