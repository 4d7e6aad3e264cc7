"""Pareto frontier on hand-made points: ties, duplicates, missing values, MoE total vs active."""

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import ArgumentError
from harness.reporting.pareto import frontier, frontier_mask, params_column

NAN = math.nan


def naive(points):
    """On the frontier: no other point with <= params and >= score, one strictly better."""
    out = []
    for i, (p, s) in enumerate(points):
        if p is None or s is None or math.isnan(p) or math.isnan(s):
            out.append(False)
            continue
        dominated = any(
            j != i and q <= p and t >= s and (q < p or t > s)
            for j, (q, t) in enumerate(points)
            if not (math.isnan(q) or math.isnan(t))
        )
        out.append(not dominated)
    return out


def test_smaller_and_better_models_form_the_frontier():
    assert frontier_mask([1, 2, 3], [10, 20, 15]) == [True, True, False]
    assert frontier_mask([3, 2, 1], [15, 20, 10]) == [False, True, True]  # order of input does not matter


def test_ties_at_equal_params_keep_only_the_best_score():
    assert frontier_mask([5, 5, 1], [30, 40, 10]) == [False, True, True]


def test_ties_at_equal_score_keep_only_the_smallest_model():
    assert frontier_mask([2, 4], [30, 30]) == [True, False]


def test_exact_duplicates_do_not_dominate_each_other():
    assert frontier_mask([3, 3, 10], [50, 50, 40]) == [True, True, False]


def test_missing_values_are_never_on_the_frontier_and_dominate_nothing():
    assert frontier_mask([NAN, 10, 20], [99, 10, 5]) == [False, True, False]
    assert frontier_mask([1, 10, None], [NAN, 10, 50]) == [False, True, False]
    assert frontier_mask([], []) == []


def test_moe_total_vs_active_changes_the_frontier():
    models = pd.DataFrame(
        {
            "model": ["small-moe", "dense-32b", "big-moe"],
            "params_total_b": [21, 32.5, 117],
            "params_active_b": [3.6, 32.5, 5.1],
            "score": [10.8, 34.7, 30.0],
        }
    )
    on_total = frontier(models, params_column("total"))
    on_active = frontier(models, params_column("active"))
    assert list(models.model[on_total]) == ["small-moe", "dense-32b"]
    assert list(models.model[on_active]) == ["small-moe", "dense-32b", "big-moe"]
    assert on_total.index.equals(models.index)


def test_unknown_param_kind_is_an_argument_error():
    with pytest.raises(ArgumentError, match="params='gpu'.*total, active"):
        params_column("gpu")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.integers(1, 6).map(float), st.just(NAN)), st.integers(0, 6).map(float)), max_size=12))
def test_matches_the_definition_on_random_points(points):
    assert frontier_mask([p for p, _ in points], [s for _, s in points]) == naive(points)
