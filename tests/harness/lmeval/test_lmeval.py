"""lm-eval tasks (tasks/lm_eval), the results importer, and parity with the Inspect task."""

import json
import math
import shutil

import pytest
from inspect_ai import eval as inspect_eval  # noqa: E402
from lm_eval.api.model import LM  # noqa: E402

from harness.answers import score_choice  # noqa: E402
from harness.errors import DataError  # noqa: E402
from harness.evals.medqa import medqa_task  # noqa: E402
from harness.lmeval.results import lmeval_rows, lmeval_table  # noqa: E402
from harness.medqa import format_prompt, load_medqa  # noqa: E402
from harness.results import RESULT_COLUMNS  # noqa: E402
from tests.helpers.lmeval import run_lmeval
from tests.helpers.paths import FIXTURES, shared_file


class ScriptedLM(LM):
    """Test-only lm-eval model: fixed generations and a fixed preferred letter per prompt."""

    def __init__(self, replies=None, letters=None):
        super().__init__()
        self.replies, self.letters, self.contexts = replies or {}, letters or {}, []

    def generate_until(self, requests):
        self.contexts += [r.args[0] for r in requests]
        return [self.replies[r.args[0]] for r in requests]

    def loglikelihood(self, requests):
        out = []
        for r in requests:
            context, continuation = r.args
            question = next(q for q in self.letters if q in context)
            out.append((0.0 if continuation.strip() == self.letters[question] else -5.0, False))
        return out

    def loglikelihood_rolling(self, requests):
        raise NotImplementedError


def sample_replies(questions):
    """Realistic replies of every kind, right and wrong, for the first 10 questions."""
    makers = [
        lambda q, w: f"ANSWER: {q.answer}",
        lambda q, w: f"The answer is ({w}).",
        lambda q, w: f"It is not {w} but {q.answer}.",
        lambda q, w: f"I would pick {q.answer_text}.",
        lambda q, w: f"Answer: {q.answer} or {w}",
        lambda q, w: "I cannot answer this without more information.",
        lambda q, w: f"<think>Could be {w}.</think>\nthe answer is {q.answer.lower()}",
        lambda q, w: f"{w}) {q.options[w]}",
        lambda q, w: "",
        lambda q, w: f"**Final answer: {q.answer}**",
    ]
    out = []
    for q, make in zip(questions, makers):
        wrong = next(k for k in q.options if k != q.answer)
        out.append(make(q, wrong))
    return out


@pytest.fixture
def ten_questions():
    shared_file("medqa", "phrases_no_exclude_test.jsonl")
    return load_medqa("test")[:10]


@pytest.mark.slow  # over ~3 s: the fast loop leaves it out
def test_generation_parity_with_inspect(ten_questions, tmp_path):
    """Identical generations give identical accuracy and no-answer counts in both harnesses."""
    replies = {format_prompt(q): r for q, r in zip(ten_questions, sample_replies(ten_questions))}
    lm = ScriptedLM(replies=replies)
    results = run_lmeval(lm, ["m2_medqa_gen"], tmp_path / "lmeval", limit=10)
    assert sorted(lm.contexts) == sorted(replies)  # lm-eval sent exactly the Inspect prompts

    from tests.helpers.scripted import mock_model

    log = inspect_eval(
        medqa_task("test"), model=mock_model(lambda p: replies[p]), limit=10, log_dir=str(tmp_path / "logs"), display="none"
    )[0]
    inspect_metrics = {n: m.value for s in log.results.scores for n, m in s.metrics.items()}
    lmeval_metrics = results["results"]["m2_medqa_gen"]

    expected = sum(score_choice(r, q.options, q.answer) for q, r in zip(ten_questions, replies.values())) / 10
    assert expected == pytest.approx(0.5)  # 5 right; wrong, ambiguous and missing answers in the rest
    assert lmeval_metrics["acc,none"] == pytest.approx(inspect_metrics["accuracy"]) == pytest.approx(expected)
    assert lmeval_metrics["no_answer,none"] == pytest.approx(inspect_metrics["no_answer"]) == pytest.approx(0.2)
    assert lmeval_metrics["ambiguous,none"] == pytest.approx(inspect_metrics["ambiguous"]) == pytest.approx(0.1)


@pytest.mark.slow  # over ~1.5 s: the fast loop leaves it out
def test_loglikelihood_task_scores_the_preferred_letter(ten_questions, tmp_path):
    letters = {q.question: (q.answer if n % 3 else next(k for k in "ABCD" if k != q.answer)) for n, q in enumerate(ten_questions)}
    results = run_lmeval(ScriptedLM(letters=letters), ["m2_medqa"], tmp_path / "lmeval", limit=10)
    assert results["results"]["m2_medqa"]["acc,none"] == pytest.approx(6 / 10)  # wrong on n = 0, 3, 6, 9
    row = lmeval_table([tmp_path / "lmeval"], model="scripted").iloc[0]
    assert (row.model, row.benchmark, row.subset, row.split, row.harness, row.n) == (
        "scripted",
        "medqa",
        "usmle_4opt_loglik",
        "test",
        "lm-eval",
        10,
    )
    assert row.score == pytest.approx(0.6)


def test_shuffle_seed_through_metadata(ten_questions):
    from harness.lmeval.tasks import load_medqa as lmeval_load

    docs = lmeval_load(shuffle_choices=5)["test"]
    shuffled = load_medqa("test", shuffle_seed=5)[:10]
    assert [d["answer"] for d in docs.select(range(10))] == [q.answer for q in shuffled]
    assert [d["options"][d["label"]] for d in docs.select(range(10))] == [q.answer_text for q in ten_questions]


def test_importer_reads_results_json(tmp_path):
    path = tmp_path / "run" / "results_2026.json"
    path.parent.mkdir()
    shutil.copy(FIXTURES / "medqa_lmeval_results.json", path)
    table = lmeval_table([tmp_path])
    assert list(table.columns) == RESULT_COLUMNS
    assert len(table) == 2  # the group row without metrics is skipped
    loglik, gen = table.iloc[0], table.iloc[1]
    assert loglik.model == "hf/Qwen/Qwen2.5-7B-Instruct" and loglik.subset == "usmle_4opt_loglik"
    assert loglik.score == 0.55 and loglik.stderr == pytest.approx(0.0796) and loglik.n == 40
    assert gen.subset == "usmle_4opt" and gen.score == 0.625 and gen.harness == "lm-eval"
    assert gen.date == "2026-11-24" or gen.date == "2026-11-25"
    assert gen.log.endswith("#m2_medqa_gen")
    # labels: the official test file, cut to 40 of its 1273 questions by --limit, so not comparable
    assert (loglik.data, loglik.limited, loglik.epochs, loglik.grader_profile) == ("phrases_no_exclude_test.jsonl", True, 1, "")
    assert not loglik.comparable and "cut by --limit" in loglik.why_not_comparable


def test_importer_bad_files(tmp_path):
    bad = tmp_path / "results_bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not a JSON file"):
        lmeval_rows(bad)
    bad.write_text(json.dumps({"something": 1}))
    with pytest.raises(DataError, match="not an lm-eval results file"):
        lmeval_rows(bad)
    with pytest.raises(DataError, match="file not found"):
        lmeval_rows(tmp_path / "absent.json")


def test_importer_missing_stderr_is_nan(tmp_path):
    path = tmp_path / "results_x.json"
    path.write_text(json.dumps({"results": {"other_task": {"acc,none": 0.4}}, "config": {"model": "vllm"}}))
    row = lmeval_rows(path)[0]
    assert row["benchmark"] == "other_task" and row["model"] == "vllm" and math.isnan(row["stderr"])


def test_results_import_of_an_empty_folder_is_an_error_not_an_empty_table(tmp_path):
    from harness.lmeval.results import main

    with pytest.raises(DataError, match="no lm-eval results file"):
        main([str(tmp_path)])
    with pytest.raises(DataError, match="file or folder not found"):
        main([str(tmp_path / "missing")])


def test_results_import_keeps_no_credentials_of_model_args(tmp_path):
    """lm-eval itself keeps model_args (base_url included) in its results JSON; our table never copies them."""
    data = json.loads((FIXTURES / "medqa_lmeval_results.json").read_text())
    data["config"] = {
        "model": "local-chat-completions",
        "model_args": "model=judge,base_url=http://u:pw-SECRET@host/v1/chat/completions",
    }
    (tmp_path / "results_1.json").write_text(json.dumps(data))
    table = lmeval_table([tmp_path])
    assert len(table) and "pw-SECRET" not in table.to_csv()
    assert set(table["model"]) == {"local-chat-completions/judge"}
