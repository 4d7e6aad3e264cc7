"""tasks/medqa through Inspect: scripted replies (fast) and the embedded model (slow)."""

import pytest
from inspect_ai import eval as inspect_eval

from harness.answers import score_choice
from harness.errors import ArgumentError
from harness.evals.logs import results_table
from harness.evals.medqa import medqa_task
from harness.medqa import format_prompt, load_medqa
from tests.helpers.paths import FIXTURES, ROOT, shared_file
from tests.helpers.scripted import mock_model

SAMPLE = str(FIXTURES / "medqa_sample.jsonl")


def replies_by_prompt(questions, replies, cot=False):
    table = {format_prompt(q, cot): r for q, r in zip(questions, replies)}
    return lambda prompt: table[prompt]


def run(task, reply, tmp_path, **kwargs):
    log = inspect_eval(task, model=mock_model(reply), log_dir=str(tmp_path / "logs"), display="none", **kwargs)[0]
    assert log.status == "success", log.error
    return log


def metrics(log):
    return {name: m.value for s in log.results.scores for name, m in s.metrics.items()}


def test_scores_replies_with_the_shared_extractor(tmp_path):
    questions = load_medqa("test", data_file=SAMPLE)  # answers A, C, D
    replies = ["The answer is (A).", "I am not sure.", "ANSWER: B or D"]
    log = run(medqa_task(data_file=SAMPLE), replies_by_prompt(questions, replies), tmp_path)
    got = metrics(log)
    expected = sum(score_choice(r, q.options, q.answer) for q, r in zip(questions, replies)) / 3
    assert got["accuracy"] == pytest.approx(expected) == pytest.approx(1 / 3)
    assert got["no_answer"] == pytest.approx(1 / 3) and got["no_answer_count"] == 1
    assert got["ambiguous"] == pytest.approx(1 / 3) and got["ambiguous_count"] == 1
    statuses = [s.scores["choice_scorer"].metadata["status"] for s in log.samples]
    assert statuses == ["ok", "no_answer", "ambiguous"]


def test_epochs_count_every_reply(tmp_path):
    questions = load_medqa("test", data_file=SAMPLE)
    calls = []

    def reply(prompt):
        calls.append(prompt)
        return "nothing" if len(calls) % 2 else f"Answer: {questions[0].answer}"

    log = run(medqa_task(data_file=SAMPLE), reply, tmp_path, epochs=2, limit=1)
    assert len(calls) == 2
    got = metrics(log)
    assert got["no_answer_count"] == 1 and got["accuracy"] == pytest.approx(0.5)


def test_shuffled_choices_move_the_target(tmp_path):
    plain = load_medqa("test", data_file=SAMPLE)
    task = medqa_task(data_file=SAMPLE, shuffle_choices=3)
    shuffled = {s.id: s for s in task.dataset}
    for q in plain:
        s = shuffled[q.id]
        assert s.metadata["options"][s.target] == q.answer_text
    # a reply naming the original answer text is right whatever letter it now has
    log = run(task, lambda p: "I choose: " + next(q.answer_text for q in plain if q.question in p), tmp_path)
    assert metrics(log)["accuracy"] == 1.0


def test_cot_prompt_and_task_metadata():
    task = medqa_task(data_file=SAMPLE, cot="true")
    assert "step by step" in task.dataset[0].input
    assert task.metadata["benchmark"] == "medqa" and task.metadata["subset"] == "usmle_4opt"
    assert task.metadata["split"] == "test" and task.metadata["cot"] is True


@pytest.mark.parametrize(
    "args,name", [({"split": "train"}, "split"), ({"cot": "maybe"}, "cot"), ({"shuffle_choices": "abc"}, "shuffle_choices")]
)
def test_bad_task_arguments(args, name):
    with pytest.raises(ArgumentError, match=name):
        medqa_task(data_file=SAMPLE, **args)


def test_log_lands_in_results_table(tmp_path):
    questions = load_medqa("test", data_file=SAMPLE)
    run(medqa_task(data_file=SAMPLE), replies_by_prompt(questions, ["A", "C", "A"]), tmp_path)
    row = results_table([tmp_path / "logs"]).iloc[0]
    assert (row.benchmark, row.subset, row.split, row.harness) == ("medqa", "usmle_4opt", "test", "inspect")
    assert row.score == pytest.approx(2 / 3) and row.n == 3 and row.stderr > 0


@pytest.mark.slow
def test_embedded_model_end_to_end_inspect_and_lmeval(tmp_path, monkeypatch):
    """`inspect eval tasks/medqa --limit 5` and lm-eval m2_medqa on 5 questions, both with the embedded model."""
    shared_file("medqa", "phrases_no_exclude_test.jsonl")
    import pandas as pd

    from harness.lmeval.results import lmeval_table
    from harness.results import normalize
    from tests.helpers.lmeval import run_lmeval

    monkeypatch.chdir(ROOT)
    log = inspect_eval(
        "tasks/medqa", model="m2bench/default", limit=5, max_tokens=8, log_dir=str(tmp_path / "logs"), display="none"
    )[0]
    assert log.status == "success", log.error
    assert len(log.samples) == 5 and all(s.output.completion.strip() for s in log.samples)

    from harness.lmeval.model import EmbeddedLM

    results = run_lmeval(EmbeddedLM(), ["m2_medqa"], tmp_path / "lmeval", limit=5)
    assert results["n-samples"]["m2_medqa"]["effective"] == 5

    table = normalize(pd.concat([results_table([tmp_path / "logs"]), lmeval_table([tmp_path / "lmeval"])]))
    assert sorted(table.harness) == ["inspect", "lm-eval"]
    assert set(table.model) == {"m2bench/default"} and set(table.benchmark) == {"medqa"}
    assert list(table.n) == [5, 5]
    assert table.score.between(0, 1).all()


def test_bad_arguments_stop_before_any_work(tmp_path):
    with pytest.raises(ArgumentError, match=r"cot='maybe'"):
        medqa_task(cot="maybe")
    with pytest.raises(ArgumentError, match=r"shuffle_choices=1.5"):
        medqa_task(shuffle_choices=1.5)
    with pytest.raises(ArgumentError, match="a data file, not a folder"):
        medqa_task(data_file=str(tmp_path))
