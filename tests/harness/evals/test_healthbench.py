"""End to end through `inspect eval`: exact scores, the official grading through Inspect, epochs pooled as
simple-evals pools repeats, a grader required, reference replies, and honest labels in the results table."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from harness import data
from harness.evals.failures import TaskFailure
from harness.evals.healthbench import healthbench_task
from harness.evals.logs import results_table
from harness.grading import parse_grading_prompt
from harness.healthbench import load_file
from tests.helpers.paths import FIXTURES, ROOT, shared_file
from tests.helpers.scripted import answering_model, mock_model, scripted_grader_model
from tests.helpers.simple_evals import RecordingSampler, scripted_reply, upstream

TASK = os.path.relpath(ROOT / "tasks" / "healthbench_hard")
MINI = str(FIXTURES / "healthbench_mini.jsonl")
HARD_SAMPLE = ("healthbench", "hard_sample50_seed42.jsonl")


def decide(criterion: str) -> bool:
    return "hydration" in criterion or "unproven" in criterion


def run(log_dir, grading_mode="per_criterion", profile="simple_evals", roles=True, task_args=None, **kwargs):
    # answers as a doctor, and as a grader when handed a grading prompt (for the self-graded run)
    return inspect_eval(
        TASK,
        model=answering_model("Drink plenty of fluids.", decide),
        model_roles={"grader": scripted_grader_model(decide, "mockllm/grader")} if roles else None,
        task_args={"data_file": MINI, "grading_mode": grading_mode, "grader_profile": profile, **(task_args or {})},
        log_dir=str(log_dir),
        display="none",
        **kwargs,
    )[0]


@pytest.mark.parametrize(
    "profile, mode", [("simple_evals", "per_criterion"), ("m2bench", "per_criterion"), ("m2bench", "batched")]
)
def test_exact_score_in_the_log(tmp_path, profile, mode):
    log = run(tmp_path, mode, profile)
    assert log.status == "success"
    metrics = log.results.scores[0].metrics
    # mini-1: (5 - 3) / 10; mini-2: 4 / 10; mini-3: 3 / 10
    assert metrics["score"].value == pytest.approx((0.2 + 0.4 + 0.3) / 3)
    assert metrics["axis:accuracy"].value == pytest.approx((2 / 5 + 0 + 0) / 3)
    assert metrics["theme:hedging"].value == pytest.approx(0.4)
    sample = read_eval_log(log.location).samples[0]
    score = sample.scores["rubric_scorer"]
    assert score.metadata["self_graded"] is False and score.metadata["grader_profile"] == profile
    assert [v["criteria_met"] for v in score.metadata["verdicts"]] == [True, False, True]
    row = results_table([tmp_path]).loc[0]
    assert row["benchmark"] == "healthbench_hard" and row["score"] == pytest.approx(0.3) and row["n"] == 3
    assert (row["grader"], row["grader_profile"]) == ("mockllm/grader", profile)


def recording_grader(requests: list):
    """An Inspect mock grader recording what it is sent (messages and settings); replies like scripted_reply."""

    def output(input, tools, tool_choice, config):
        messages = [{"role": m.role, "content": m.text} for m in input]
        requests.append((messages, config.temperature, config.max_tokens, config.response_schema))
        out = ModelOutput.from_content(model="mockllm/grader", content=scripted_reply(messages[-1]["content"]))
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return out

    return get_model("mockllm/grader", custom_outputs=output, memoize=False)


def test_through_inspect_the_grader_gets_what_simple_evals_sends(tmp_path, monkeypatch):
    """Reference mode (the physician's reply, no model under test) through `inspect eval`, against upstream's grade_sample."""
    path = shared_file(*HARD_SAMPLE)
    requests: list = []
    log = inspect_eval(
        TASK,
        model="none",
        model_roles={"grader": recording_grader(requests)},
        task_args={"data_file": str(path), "responses": "ideal"},
        limit=3,
        log_dir=str(tmp_path),
        display="none",
    )[0]
    assert log.status == "success", log.error
    evaluation = upstream("healthbench_eval")
    grader = RecordingSampler(
        monkeypatch, system_message="You are a helpful assistant.", model="gpt-4.1-2025-04-14", max_tokens=2048
    )
    official = object.__new__(evaluation.HealthBenchEval)
    official.grader_model = grader.sampler
    examples = [e for e in load_file(path) if e.ideal_completion][:3]
    upstream_scores = {}
    for e in examples:
        items = [evaluation.RubricItem.from_dict(i.to_dict()) for i in e.rubrics]
        upstream_scores[e.prompt_id] = official.grade_sample(e.prompt, e.ideal_completion, e.example_tags, items)[0][
            "overall_score"
        ]
    assert sorted(json.dumps(m, sort_keys=True) for m, *_ in requests) == sorted(
        json.dumps(r["messages"], sort_keys=True) for r in grader.requests
    )
    assert {(t, n, schema) for _, t, n, schema in requests} == {(0.5, 2048, None)}
    assert {s.id: s.scores["rubric_scorer"].value for s in log.samples} == upstream_scores
    assert {s.id: s.output.completion for s in log.samples} == {e.prompt_id: e.ideal_completion for e in examples}
    assert log.eval.metadata["rows_without_reference"] == 9 and log.eval.dataset.samples == 41  # 9 of 50 rows have none


def test_reference_mode_empty_grades_empty_replies_on_the_rows_with_a_reference(tmp_path):
    path = shared_file(*HARD_SAMPLE)
    with_reference = [e.prompt_id for e in load_file(path) if e.ideal_completion]
    log = inspect_eval(
        TASK,
        model="none",
        model_roles={"grader": scripted_grader_model(decide, "mockllm/grader")},
        task_args={"data_file": str(path), "responses": "empty"},
        limit=2,
        log_dir=str(tmp_path),
        display="none",
    )[0]
    assert log.status == "success", log.error
    assert {s.id for s in log.samples} == set(with_reference[:2]) and {s.output.completion for s in log.samples} == {""}
    assert log.eval.metadata["rows_without_reference"] == 9
    row = results_table([tmp_path]).loc[0]
    assert row["model"] == "reference/empty" and not row["comparable"]
    assert "reference replies, not a model" in row["why_not_comparable"]


# ---- epochs --------------------------------------------------------------------------------------


def epoch_model():
    """Replies "Drink fluids." to a prompt the first time and "Drink fluids and see a doctor." the second."""
    seen: dict[str, int] = {}

    def reply(prompt):
        seen[prompt] = seen.get(prompt, 0) + 1
        return "Drink fluids." if seen[prompt] == 1 else "Drink fluids and see a doctor."

    return mock_model(reply)


def epoch_grader():
    def reply(prompt):
        parsed = parse_grading_prompt(prompt)
        met = "hydration" in parsed.criteria[0] or ("doctor" in parsed.criteria[0] and "doctor" in parsed.reply)
        reply.calls += 1
        return json.dumps({"explanation": "", "criteria_met": met})

    reply.calls = 0
    return mock_model(reply, "mockllm/grader"), reply


def test_epochs_pool_every_sample_and_epoch_as_simple_evals_pools_repeats(tmp_path):
    grader, calls = epoch_grader()
    log = inspect_eval(
        TASK,
        model=epoch_model(),
        model_roles={"grader": grader},
        task_args={"data_file": MINI},
        epochs=2,
        log_dir=str(tmp_path),
        display="none",
    )[0]
    assert log.status == "success", log.error
    metrics = {k: m.value for k, m in log.results.scores[0].metrics.items()}
    # by hand: mini-1 0.5 then 1.0 (10/10 once the reply mentions a doctor); mini-2 0.4, 0.4; mini-3 0.3, 0.3
    pooled = [0.5, 1.0, 0.4, 0.4, 0.3, 0.3]
    assert metrics["score"] == pytest.approx(sum(pooled) / 6) and metrics["n_scored"] == 6
    assert metrics["theme:emergency_referrals"] == pytest.approx(0.75)
    assert metrics["axis:completeness"] == pytest.approx((0 + 1.0 + 4 / 4 + 4 / 4 + 1.0 + 1.0) / 6)
    # the bootstrap resamples the six (sample, epoch) scores, simple-evals' way (values in the order scored)
    scored = [s.scores["rubric_scorer"].value for s in read_eval_log(log.location).samples]
    assert sorted(scored) == sorted(pooled)
    np.random.seed(0)
    means = [np.clip(np.mean(np.random.choice(scored, 6)), 0, 1) for _ in range(1000)]
    assert metrics["bootstrap_std"] == pytest.approx(float(np.std(means)))
    assert calls.calls == 2 * (3 + 2 + 2)  # every epoch graded afresh, identical replies included


def test_epochs_share_verdicts_only_when_asked(tmp_path):
    """Asked to, identical replies of two epochs are graded once (unasked: twice, see the test above)."""
    grader, calls = epoch_grader()
    log = inspect_eval(
        TASK,
        model=mock_model(lambda prompt: "Drink fluids."),  # the same reply in both epochs
        model_roles={"grader": grader},
        task_args={"data_file": MINI, "share_verdicts_across_epochs": True},
        epochs=2,
        log_dir=str(tmp_path),
        display="none",
    )[0]
    assert log.status == "success" and calls.calls == 7


# ---- a grader is required ---------------------------------------------------------------------------


def test_without_a_grader_role_the_run_stops_at_once_with_one_line(tmp_path):
    asked = []
    model = mock_model(lambda prompt: asked.append(prompt) or "Drink fluids.")
    with pytest.raises(TaskFailure) as failure:
        inspect_eval(TASK, model=model, task_args={"data_file": MINI}, log_dir=str(tmp_path), display="none")
    message = str(failure.value)
    assert "\n" not in message and message.startswith("error: healthbench_hard needs a grader model")
    for part in ("--model-role grader=", "gpt-4.1-2025-04-14", "--model-role grader=m2bench/default", "allow_self_grading=true"):
        assert part in message
    assert asked == [] and not list(tmp_path.glob("*.eval"))  # nothing ran, no log


def test_self_grading_only_when_allowed_and_then_said_everywhere(tmp_path):
    log = run(tmp_path, roles=False, task_args={"allow_self_grading": True})
    assert log.status == "success"
    assert log.results.scores[0].metrics["self_graded"].value == 1.0
    score = read_eval_log(log.location).samples[0].scores["rubric_scorer"]
    assert score.metadata["self_graded"] is True and "SELF-GRADED" in score.explanation
    row = results_table([tmp_path]).loc[0]
    assert row["grader"] == "mockllm/model (self-graded)" and not row["comparable"]
    assert "graded by the model under test" in row["why_not_comparable"]


def test_a_task_built_outside_an_eval_still_refuses_self_grading(tmp_path):
    task = healthbench_task("hard", MINI)  # no eval yet, so the roles are unknown: the scorer checks
    log = inspect_eval(task, model=answering_model("Drink fluids.", decide), log_dir=str(tmp_path), display="none")[0]
    assert log.status == "error"
    assert all("needs a grader model" in s.error.message for s in log.samples)


def test_the_headline_command_without_the_official_file_says_what_to_do(tmp_path, monkeypatch):
    sample = shared_file(*HARD_SAMPLE)
    (tmp_path / "healthbench").mkdir()
    (tmp_path / "healthbench" / sample.name).symlink_to(sample)
    monkeypatch.setenv("M2BENCH_DATA_DIR", str(tmp_path))

    def offline(url, dest):
        raise OSError("network unreachable")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(TaskFailure) as failure:
        inspect_eval(TASK, model="none", model_roles={"grader": "mockllm/model"}, log_dir=str(tmp_path / "logs"), display="none")
    message = str(failure.value)
    assert "\n" not in message
    for part in (
        "hard_2025-05-08-21-00-10.jsonl",
        "https://openaipublic.blob.core.windows.net/simple-evals/healthbench/hard_2025-05-08-21-00-10.jsonl",
        "$M2BENCH_DATA_DIR",
        f"-T data_file={tmp_path / 'healthbench' / sample.name}",
    ):
        assert part in message, part


@pytest.mark.slow
def test_inspect_eval_prints_one_line_for_expected_failures(tmp_path):
    """Through the `inspect eval` command: one error line (in a terminal wide enough not to wrap it), no traceback."""
    reference = shared_file("simple_evals", "healthbench_eval.py").parent
    (tmp_path / "simple_evals").symlink_to(reference)  # the official reference, but no official HealthBench file
    env = {**os.environ, "M2BENCH_DATA_DIR": str(tmp_path), "M2BENCH_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "1000"}
    inspect = [sys.executable, "-m", "inspect_ai._cli.main", "eval", TASK, "--model", "none", "--log-dir", str(tmp_path / "logs")]
    for extra, expected in (
        ([], "needs a grader model"),
        (["--model-role", "grader=mockllm/model"], "the official HealthBench hard file"),
    ):
        done = subprocess.run(inspect + extra, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        output = done.stdout + done.stderr
        assert done.returncode != 0 and "Traceback" not in output, output
        lines = [line for line in output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], output


# ---- honest labels -----------------------------------------------------------------------------------


def test_limit_and_data_file_runs_are_labelled_and_not_comparable(tmp_path):
    path = shared_file(*HARD_SAMPLE)
    run(tmp_path / "mini", task_args={"data_file": MINI})
    inspect_eval(
        TASK,
        model=answering_model("Drink fluids.", decide),
        model_roles={"grader": scripted_grader_model(decide, "mockllm/grader")},
        task_args={"data_file": str(path)},
        limit=2,
        log_dir=str(tmp_path / "limited"),
        display="none",
    )
    table = results_table([tmp_path / "mini", tmp_path / "limited"]).set_index("n")
    mini, limited = table.loc[3], table.loc[2]
    assert mini["data"].startswith("custom:healthbench_mini.jsonl@") and not mini["limited"]
    assert limited["data"].startswith("custom:hard_sample50_seed42.jsonl@") and limited["limited"]
    assert (mini["epochs"], mini["grader_profile"]) == (1, "simple_evals")
    for row in (mini, limited):
        assert not row["comparable"] and "is not an official file" in row["why_not_comparable"]
    assert "cut by --limit" in limited["why_not_comparable"] and "samples (< 100)" in limited["why_not_comparable"]


@pytest.mark.slow
def test_one_real_sample_through_the_embedded_model(tmp_path):
    """The embedded model answers and grades (our prompt, batched: one grader call, to keep CPU time down;
    the official profile runs end to end in reports/reference_mode)."""
    data_file = shared_file(*HARD_SAMPLE)
    log = inspect_eval(
        TASK,
        model="m2bench/default",
        model_roles={"grader": "m2bench/default"},
        task_args={"data_file": str(data_file), "grader_profile": "m2bench", "grading_mode": "batched"},
        limit=1,
        log_dir=str(tmp_path),
        display="none",
    )[0]
    assert log.status == "success", log.error
    sample = read_eval_log(log.location).samples[0]
    assert len(sample.output.completion) > 20  # the model wrote a reply
    verdicts = sample.scores["rubric_scorer"].metadata["verdicts"]
    assert len(verdicts) == len(sample.metadata["rubric"]) and all(v["criteria_met"] in (True, False) for v in verdicts)
    assert sample.model_usage["m2bench/default"].input_tokens > 0
