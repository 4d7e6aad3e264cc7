"""HealthBench meta-eval: official pairwise metric, loader errors, both grading modes, Inspect task."""

import asyncio
import json

import pytest

from harness import data
from harness.errors import DataError
from harness.grading import RubricGrader
from harness.meta_eval import (
    META_EVAL,
    grade_rows,
    grader_agreement,
    load_meta_eval,
    pairwise_f1,
    physician_agreement,
    report,
)
from tests.helpers.paths import FIXTURES
from tests.helpers.scripted import scripted_grader

FIXTURE = FIXTURES / "healthbench_meta_eval_small.jsonl"


def test_pairwise_f1_matches_the_official_worked_example():
    # simple-evals healthbench_meta_eval_test.py: rater [T, F, T] vs others [[T, T, F], [T, F], [F]]
    m = pairwise_f1([True, False, True], [[True, True, False], [True, False], [False]])
    assert m["precision_pos"] == 2 / 4 and m["precision_neg"] == 1 / 2
    assert m["recall_pos"] == 2 / 3 and m["recall_neg"] == 1 / 3
    f1_pos = 2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3)
    f1_neg = 2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3)
    assert m["f1_balanced"] == pytest.approx((f1_pos + f1_neg) / 2)


def test_f1_undefined_without_both_classes():
    assert pairwise_f1([True], [[True]])["f1_balanced"] is None


def test_physician_baseline_two_raters():
    rows = load_meta_eval(FIXTURE)[:1]
    rows[0].labels, rows[0].physicians = [True, True], ["a", "b"]
    extra = [
        type(rows[0])(rows[0].prompt, "x", "c2", "k", [False, False], ["a", "b"]),
        type(rows[0])(rows[0].prompt, "x", "c3", "k", [True, False], ["a", "b"]),
    ]
    # a vs b: F1 pos = F1 neg = 2/3 (worked by hand), symmetric for b vs a
    assert physician_agreement(rows + extra)["f1_balanced"] == pytest.approx(2 / 3)


def test_loader_reads_fixture_and_reports_bad_rows(tmp_path):
    rows = load_meta_eval(FIXTURE)
    assert len(rows) == 6 and rows[1].labels == [False, False, True] and rows[1].physicians == ["p1", "p2", "p3"]
    bad = tmp_path / "bad.jsonl"
    lines = FIXTURE.read_text().splitlines()
    obj = json.loads(lines[1])
    obj["anonymized_physician_ids"] = ["p1"]
    bad.write_text(lines[0] + "\n" + json.dumps(obj) + "\n")
    with pytest.raises(DataError) as err:
        load_meta_eval(bad)
    assert err.value.line == 2 and err.value.field == "anonymized_physician_ids"


def test_missing_official_file_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("M2BENCH_DATA_DIR", str(tmp_path))

    def offline(url, dest):
        raise OSError("network unreachable")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(DataError) as err:
        load_meta_eval()
    assert META_EVAL.name in str(err.value) and "M2BENCH_DATA_DIR/healthbench" in str(err.value)


@pytest.mark.parametrize("agree_with", ["majority", "always_yes"])
def test_both_modes_same_labels_and_metric(agree_with):
    rows = load_meta_eval(FIXTURE)
    majority = {r.rubric: sum(r.labels) * 2 > len(r.labels) for r in rows}
    decide = (lambda c: majority[c]) if agree_with == "majority" else (lambda c: True)
    results = {}
    for mode in ("per_criterion", "batched"):
        grader = scripted_grader(decide)
        labels = asyncio.run(grade_rows(rows, RubricGrader(grader, grader_id="s", mode=mode)))
        results[mode] = (labels, grader.calls)
    assert results["per_criterion"][0] == results["batched"][0] == [decide(r.rubric) for r in rows]
    assert results["per_criterion"][1] == 6 and results["batched"][1] == 2  # two conversations
    out = report(rows, results["batched"][0])
    assert out["pairwise_model_f1_balanced"] == grader_agreement(rows, results["batched"][0])["f1_balanced"]
    assert set(out["model"]["by_category"]) == {r.category for r in rows}
    if agree_with == "always_yes":  # never predicts negative: negative-class F1 undefined
        assert out["pairwise_model_f1_balanced"] is None


def test_inspect_task_runs_with_scripted_grader():
    from inspect_ai import eval as inspect_eval

    from harness.evals.meta_eval import meta_eval_task
    from tests.helpers.scripted import scripted_grader_model

    rows = load_meta_eval(FIXTURE)
    majority = {r.rubric: sum(r.labels) * 2 > len(r.labels) for r in rows}
    log = inspect_eval(
        meta_eval_task(str(FIXTURE), grading_mode="batched"),
        model=scripted_grader_model(lambda c: majority[c]),
        display="none",
    )[0]
    assert log.status == "success"
    metrics = log.results.scores[0].metrics
    expected = grader_agreement(rows, [majority[r.rubric] for r in rows])["f1_balanced"]
    assert metrics["pairwise_model_f1_balanced"].value == pytest.approx(expected)
    assert metrics["pairwise_physician_f1_balanced"].value == pytest.approx(physician_agreement(rows)["f1_balanced"])
