"""HealthBench meta-eval: official pairwise metric, loader errors, both grading modes, Inspect task."""

import asyncio
import json

import pytest

from harness import data
from harness.errors import DataError, GradingError, run_cli
from harness.grading import RubricGrader, parse_grading_prompt
from harness.meta_eval import (
    META_EVAL,
    check_failed_rows,
    grade_rows,
    grader_agreement,
    load_meta_eval,
    main,
    physician_baseline,
    rater_metrics,
    report,
)
from harness.tools.sim_server import SimServer
from tests.helpers.paths import FIXTURES
from tests.helpers.scripted import scripted_grader

FIXTURE = FIXTURES / "healthbench_meta_eval_small.jsonl"


def test_rater_metrics_match_the_official_worked_example():
    # simple-evals healthbench_meta_eval_test.py: rater [T, F, T] vs others [[T, T, F], [T, F], [F]]
    m = rater_metrics([True, False, True], [[True, True, False], [True, False], [False]], ["a", "a", "b"], "model")
    value = {k: v["value"] for k, v in m.items()}
    assert value["pairwise_model_precision_pos"] == 2 / 4 and value["pairwise_model_precision_neg"] == 1 / 2
    assert value["pairwise_model_recall_pos"] == 2 / 3 and value["pairwise_model_recall_neg"] == 1 / 3
    f1_pos = 2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3)
    f1_neg = 2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3)
    assert value["pairwise_model_f1_balanced"] == pytest.approx((f1_pos + f1_neg) / 2)
    assert value["a: pairwise_model_precision_pos"] == 2 / 3 and "b: pairwise_model_f1_balanced" not in m


def test_f1_undefined_without_both_classes():
    metrics = rater_metrics([True], [[True]], ["a"], "model")  # no negative class: no balanced F1, as upstream
    assert "pairwise_model_f1_balanced" not in metrics and metrics["pairwise_model_f1_pos"]["value"] == 1.0


def test_physician_baseline_two_raters():
    rows = load_meta_eval(FIXTURE)[:1]
    rows[0].labels, rows[0].physicians = [True, True], ["a", "b"]
    extra = [
        type(rows[0])(rows[0].prompt, "x", "c2", "k", [False, False], ["a", "b"]),
        type(rows[0])(rows[0].prompt, "x", "c3", "k", [True, False], ["a", "b"]),
    ]
    # a vs b: F1 pos = F1 neg = 2/3 (worked by hand), symmetric for b vs a: the mean over the two is 2/3
    baseline = physician_baseline(rows + extra)["pairwise_physician_f1_balanced"]
    assert baseline == {"value": pytest.approx(2 / 3), "physicians": 2}


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
def test_profiles_and_modes_give_the_same_labels_and_metric(agree_with):
    rows = load_meta_eval(FIXTURE)
    majority = {r.rubric: sum(r.labels) * 2 > len(r.labels) for r in rows}
    decide = (lambda c: majority[c]) if agree_with == "majority" else (lambda c: True)
    results = {}
    for profile, mode in (("simple_evals", "per_criterion"), ("m2bench", "per_criterion"), ("m2bench", "batched")):
        grader = scripted_grader(decide)
        labels = asyncio.run(grade_rows(rows, RubricGrader(grader, grader_id="s", mode=mode, profile=profile)))
        results[profile, mode] = (labels, grader.calls)
        assert set(parse_grading_prompt(grader.last_messages).points) == {None}  # the criterion alone, no points
    labels = [decide(r.rubric) for r in rows]
    assert {tuple(v[0]) for v in results.values()} == {tuple(labels)}
    assert [v[1] for v in results.values()] == [6, 6, 2]  # batched: two conversations
    out = report(rows, labels)
    assert out["pairwise_model_f1_balanced"] == grader_agreement(rows, labels).get("pairwise_model_f1_balanced", {}).get("value")
    assert set(out["by_category"]) <= {r.category for r in rows}
    if agree_with == "always_yes":  # never predicts negative: negative-class F1 undefined
        assert out["pairwise_model_f1_balanced"] is None
    else:
        for category, both in out["by_category"].items():  # the physicians' figure beside the model's
            assert set(both) == {"model_f1_balanced", "physician_f1_balanced"}, category


@pytest.mark.slow  # over ~1.5 s: the fast loop leaves it out
def test_failed_rows_are_counted_and_fail_the_run(tmp_path, capsys):
    rows = load_meta_eval(FIXTURE)
    assert report(rows, [True, None, False, None, True, True])["grader_failed_rows"] == 2
    check_failed_rows(0, 6, 0.0)
    with pytest.raises(GradingError, match="2 of 6 meta-eval rows could not be graded"):
        check_failed_rows(2, 6, 0.3)
    with SimServer(latency_s=0.0, error_rate=1.0, faults=["non_json"]) as srv, pytest.raises(SystemExit) as exit_:
        out = tmp_path / "meta.json"
        run_cli(lambda: main(["--base-url", srv.base_url, "--model", "g", "--data-file", str(FIXTURE), "--out", str(out)]))
    assert exit_.value.code == 2
    assert json.loads(out.read_text())["grader_failed_rows"] == 6
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: 6 of 6 meta-eval rows could not be graded")


def test_inspect_task_runs_with_scripted_grader(tmp_path):
    from inspect_ai import eval as inspect_eval

    from harness.evals.meta_eval import meta_eval_task
    from tests.helpers.scripted import scripted_grader_model

    rows = load_meta_eval(FIXTURE)
    majority = {r.rubric: sum(r.labels) * 2 > len(r.labels) for r in rows}
    log = inspect_eval(
        meta_eval_task(str(FIXTURE)), model=scripted_grader_model(lambda c: majority[c]), log_dir=str(tmp_path), display="none"
    )[0]
    assert log.status == "success"
    metrics = {k: m.value for k, m in log.results.scores[0].metrics.items()}
    labels = [majority[r.rubric] for r in rows]
    assert metrics["pairwise_model_f1_balanced"] == pytest.approx(
        grader_agreement(rows, labels)["pairwise_model_f1_balanced"]["value"]
    )
    baseline = physician_baseline(rows)
    assert metrics["pairwise_physician_f1_balanced"] == pytest.approx(baseline["pairwise_physician_f1_balanced"]["value"])
    beside = 0
    for name, value in baseline.items():  # per category, the physicians' F1 beside the model's (where defined)
        if name.endswith(": pairwise_physician_f1_balanced"):
            assert metrics[name] == pytest.approx(value["value"])
            beside += name.replace("physician", "model") in metrics
    assert beside >= 1


@pytest.mark.slow  # over ~1.5 s: the fast loop leaves it out
def test_inspect_task_fails_when_rows_cannot_be_graded(tmp_path):
    from inspect_ai import eval as inspect_eval

    from harness.evals.meta_eval import meta_eval_task
    from tests.helpers.scripted import mock_model

    log = inspect_eval(
        meta_eval_task(str(FIXTURE)), model=mock_model(lambda prompt: "no idea"), log_dir=str(tmp_path), display="none"
    )[0]
    assert log.status == "error"
    assert all("rows could not be graded" in s.error.message for s in log.samples)
