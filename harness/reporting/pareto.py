"""Pareto frontier of score versus parameter count: fewer parameters AND higher score.

A point is on the frontier when no other point has at most its parameters and at least
its score, with one of the two strictly better. Consequences:
- exact duplicates (same parameters, same score) do not dominate each other: all stay;
- at equal parameters only the highest score stays; at equal score only the smallest model;
- a point with a missing (NaN/None) parameter count or score is never on the frontier.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.errors import ArgumentError

PARAM_KINDS = ("total", "active")


def params_column(kind: str) -> str:
    """The models.csv column for ``--params total|active`` (active = per-token for MoE)."""
    if kind not in PARAM_KINDS:
        raise ArgumentError("params", kind, PARAM_KINDS)
    return f"params_{kind}_b"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def frontier_mask(params, scores) -> list[bool]:
    """For each (params, score) pair: is it on the frontier? Missing values give False."""
    params, scores = list(params), list(scores)
    if len(params) != len(scores):
        raise ValueError("params and scores differ in length")
    points = [(float(p), float(s), i) for i, (p, s) in enumerate(zip(params, scores)) if not (_missing(p) or _missing(s))]
    on = [False] * len(params)
    # by parameters ascending, then score descending: a point is kept when it beats the
    # best score seen among strictly smaller models and is the best at its own size
    points.sort(key=lambda t: (t[0], -t[1]))
    best_smaller = -math.inf
    i = 0
    while i < len(points):
        size = points[i][0]
        group = [t for t in points[i:] if t[0] == size]
        top = group[0][1]
        if top > best_smaller:
            for _, s, index in group:
                if s == top:
                    on[index] = True
        best_smaller = max(best_smaller, top)
        i += len(group)
    return on


def frontier(frame: pd.DataFrame, params: str = "params_b", score: str = "score") -> pd.Series:
    """Boolean Series (aligned to ``frame``) marking its Pareto-optimal rows."""
    return pd.Series(frontier_mask(frame[params].tolist(), frame[score].tolist()), index=frame.index, dtype=bool)
