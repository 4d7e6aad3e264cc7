"""HealthBench scoring math against hand-computed examples."""

import pytest

from harness.rubric import RubricItem, Verdict, bootstrap_std, clipped_mean, example_metrics, rubric_score, summarize


def verdicts(spec):
    return [Verdict(RubricItem(f"c{i}", points, tuple(tags)), met) for i, (points, met, tags) in enumerate(spec)]


def test_worked_example_with_negative_criterion_and_axis_tags():
    # +5 met, +3 not met, -4 met, +2 met: (5 - 4 + 2) / (5 + 3 + 2) = 0.3
    graded = verdicts([(5, True, ["axis:x"]), (3, False, ["axis:y"]), (-4, True, ["axis:x"]), (2, True, [])])
    metrics = example_metrics(graded, ["theme:t"])
    assert metrics["overall_score"] == pytest.approx(0.3)
    assert metrics["theme:t"] == pytest.approx(0.3)  # example-level tag gets the example's score
    assert metrics["axis:x"] == pytest.approx((5 - 4) / 5)  # only the criteria carrying the tag
    assert metrics["axis:y"] == 0.0


def test_no_per_example_clipping_but_headline_is_clipped():
    low = example_metrics(verdicts([(2, False, []), (-5, True, [])]))["overall_score"]
    assert low == pytest.approx(-2.5)
    assert clipped_mean([low, 1.0]) == 0.0  # mean -0.75 clipped to 0
    assert clipped_mean([0.5, 1.0]) == pytest.approx(0.75)


def test_all_negative_rubric_has_no_score():
    assert rubric_score([RubricItem("bad", -3)], [True]) is None
    assert example_metrics(verdicts([(-3, False, [])])) == {}


def test_tag_with_only_negative_criteria_is_left_out():
    metrics = example_metrics(verdicts([(5, True, []), (-2, False, ["axis:safety"])]))
    assert "axis:safety" not in metrics
    assert metrics["overall_score"] == 1.0


def test_errors_give_no_score():
    graded = verdicts([(5, True, [])]) + [Verdict(RubricItem("x", 3), None, error="unparseable")]
    assert example_metrics(graded) == {}


def test_bootstrap_is_reproducible_with_a_seed():
    values = [0.1, 0.5, 0.9, 0.3, 0.7, 0.2]
    assert bootstrap_std(values, seed=7) == bootstrap_std(values, seed=7)
    assert bootstrap_std(values, seed=7) != bootstrap_std(values, seed=8)
    assert 0 < bootstrap_std(values) < 0.3
    assert bootstrap_std([0.4]) == pytest.approx(0.0, abs=1e-12)  # upstream's float noise, kept identical


def test_summarize_counts_examples_per_metric():
    summary = summarize([{"overall_score": 0.2, "axis:a": 0.5}, {"overall_score": 0.6}])
    assert summary["overall_score"].mean == pytest.approx(0.4)
    assert summary["overall_score"].n == 2
    assert summary["axis:a"].n == 1
