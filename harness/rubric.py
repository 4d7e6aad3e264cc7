"""Rubric items and HealthBench scoring math (the official simple-evals convention).

- example score = points of met criteria / total positive points; negative-point
  criteria subtract when met; no clipping per example; None when no positive points;
- headline = mean over examples clipped to [0, 1], bootstrap std over 1000 resamples (drawn as
  simple-evals draws them, with numpy's legacy generator, so with the same seed the two agree);
- example-level tags (``theme:``, ``physician_agreed_category:``) get the example's score;
- rubric-level tags (``axis:``, ``cluster:``) are scored over only the criteria carrying them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

BOOTSTRAP_SAMPLES = 1000


@dataclass(frozen=True)
class RubricItem:
    criterion: str
    points: float  # as written in the data (an int stays an int: the official prompt shows str(points))
    tags: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"[{self.points:g}] {self.criterion}"

    def to_dict(self) -> dict:
        return {"criterion": self.criterion, "points": self.points, "tags": list(self.tags)}

    @classmethod
    def from_dict(cls, d: dict) -> RubricItem:
        """The inverse of ``to_dict`` (tags may be missing)."""
        points = d["points"]
        return cls(d["criterion"], points if type(points) is int else float(points), tuple(d.get("tags") or ()))


@dataclass
class Verdict:
    """The grader's decision on one criterion. ``met`` is None when grading failed.

    ``retries``: grader calls beyond the first that this verdict needed (0 when cached).
    """

    item: RubricItem
    met: bool | None
    explanation: str = ""
    error: str | None = None
    cached: bool = False
    retries: int = 0

    def to_dict(self) -> dict:
        return {
            **self.item.to_dict(),
            "criteria_met": self.met,
            "explanation": self.explanation,
            "error": self.error,
            "retries": self.retries,
            "cached": self.cached,
        }


@dataclass
class ExampleGrade:
    """Result of grading one response against its rubric."""

    verdicts: list[Verdict]
    metrics: dict[str, float] = field(default_factory=dict)  # overall_score + tag scores
    grader_calls: int = 0
    grader_input_chars: int = 0

    @property
    def errors(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.met is None]

    @property
    def score(self) -> float | None:
        """The example's score, or None when any criterion could not be graded."""
        return self.metrics.get("overall_score")


def rubric_score(items: Sequence[RubricItem], met: Sequence[bool]) -> float | None:
    total = sum(i.points for i in items if i.points > 0)
    if total == 0:
        return None
    return sum(i.points for i, m in zip(items, met, strict=True) if m) / total


def example_metrics(verdicts: Sequence[Verdict], example_tags: Iterable[str] = ()) -> dict[str, float]:
    """Overall score and tag scores for one example; empty when any verdict is an error."""
    if any(v.met is None for v in verdicts):
        return {}
    items = [v.item for v in verdicts]
    met = [bool(v.met) for v in verdicts]
    overall = rubric_score(items, met)
    if overall is None:
        return {}
    metrics = {"overall_score": overall}
    for tag in example_tags:
        metrics[tag] = overall
    by_tag: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        for tag in dict.fromkeys(item.tags):
            by_tag[tag].append(index)
    for tag, indexes in by_tag.items():
        score = rubric_score([items[i] for i in indexes], [met[i] for i in indexes])
        if score is not None:
            metrics[tag] = score
    return metrics


def clipped_mean(values: Sequence[float]) -> float:
    return float(np.clip(np.mean(values), 0.0, 1.0))


def bootstrap_std(values: Sequence[float], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> float:
    """Std of the clipped mean over bootstrap resamples (seeded, so reproducible).

    The resamples are those of simple-evals (``np.random.choice(values, n)`` 1000 times from numpy's
    legacy global generator), drawn in one call: seeded alike, both give the same number.
    """
    if not len(values):
        return 0.0
    rng = np.random.RandomState(seed)
    data = np.asarray(values, dtype=float)
    draws = rng.randint(0, len(data), size=(samples, len(data)))
    means = np.clip(data[draws].mean(axis=1), 0.0, 1.0)
    return float(np.std(means))


@dataclass(frozen=True)
class MetricSummary:
    mean: float
    bootstrap_std: float
    n: int


def summarize(per_example: Sequence[dict[str, float]], seed: int = 0) -> dict[str, MetricSummary]:
    """Aggregate per-example metric dicts into clipped means with bootstrap std."""
    values: dict[str, list[float]] = defaultdict(list)
    for metrics in per_example:
        for name, value in metrics.items():
            values[name].append(value)
    return {name: MetricSummary(clipped_mean(v), bootstrap_std(v, seed=seed), len(v)) for name, v in sorted(values.items())}
