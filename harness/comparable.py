"""When an own result may stand next to published numbers: the one definition of "comparable".

Used by the results table (``harness.results`` fills the ``comparable`` and ``why_not_comparable``
columns with it, every time a table is built or read), the leaderboard files
(``harness.reporting.leaderboard``) and the Pareto report (``harness.reporting.report``), which
keeps other runs in a separate, labelled layer, never on the frontier.

A run is comparable when all of these hold:

1. **official data, in full**: its data is a registered official file (``harness.evalsets``) under
   its official name, not a ``data_file`` (``custom:...``) and not a public sample, and no
   ``--limit`` or sample selection cut it;
2. **official grading** (rubric-graded benchmarks): the ``simple_evals`` grader profile, and a grader
   that is not the model under test (no self-grading, not the same model in the grader role);
3. **replies of a model**: not a reference mode (``reference/ideal``, ``reference/empty``);
4. **enough samples**: at least ``MIN_SAMPLES`` scored samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from harness.evalsets import HEALTHBENCH, MEDQA
from harness.grading import OFFICIAL_PROFILE

MIN_SAMPLES = 100  # scored samples; the official HealthBench and MedQA files have 1000 to 5000
OFFICIAL_DATA = frozenset(f.name for f in [*HEALTHBENCH.values(), *MEDQA.values()])
SELF_GRADED = " (self-graded)"  # how the results table marks a grader that is the model under test
REFERENCE_PREFIX = "reference/"  # the model column of a reference-mode run


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _flag(value: Any) -> bool | None:
    text = _text(value).strip().lower()
    return {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}.get(text)


def why_not_comparable(row: Mapping[Any, Any]) -> list[str]:
    """The reasons a results row is not comparable with published numbers (empty: comparable)."""
    reasons = []
    model, grader, data = _text(row.get("model")), _text(row.get("grader")), _text(row.get("data"))
    if data not in OFFICIAL_DATA:
        reasons.append(f"data {data or 'unknown'} is not an official file")
    limited = _flag(row.get("limited"))
    if limited is not False:
        reasons.append("cut by --limit or sample selection" if limited else "unknown whether --limit cut the data")
    if grader:  # rubric-graded
        profile = _text(row.get("grader_profile"))
        if profile != OFFICIAL_PROFILE:
            reasons.append(f"grader profile {profile or 'unknown'}, not {OFFICIAL_PROFILE}")
        if grader.endswith(SELF_GRADED) or grader == model:
            reasons.append("graded by the model under test")
    if model.startswith(REFERENCE_PREFIX):
        reasons.append("reference replies, not a model")
    try:
        n = float(row.get("n"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        n = math.nan
    if not n >= MIN_SAMPLES:
        reasons.append(f"{'unknown' if math.isnan(n) else int(n)} samples (< {MIN_SAMPLES})")
    return reasons


def is_comparable(row: Mapping[Any, Any]) -> bool:
    return not why_not_comparable(row)
