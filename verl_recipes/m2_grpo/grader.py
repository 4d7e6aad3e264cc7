"""The reward's shared grader: one engine, one grader client and one cache per process, and the
bookkeeping of valid and invalid rewards. Used by the reward (``reward.py``) and the consultation
reward (``consultation.py``).

Grader (first match): ``configure(...)`` (tests, benchmarks); ``M2BENCH_GRADER_BASE_URL`` +
``M2BENCH_GRADER_MODEL`` (any OpenAI-compatible server, key from ``M2BENCH_GRADER_API_KEY`` or
``OPENAI_API_KEY``); otherwise the embedded offline model (``m2bench/default``, slow, for checks).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from harness.cache import GradingCache, default_cache
from harness.errors import GradingError
from harness.grading import Grader, RubricGrader
from harness.local_model import local_grader

logger = logging.getLogger(__name__)

# the keys of every result (verl requires the same extra keys for every sample of a batch)
EXTRA_KEYS = ("score", "reward_valid", "grader_calls", "graded_criteria")
INVALID_WINDOW = 200

GRADER_URL_ENV = "M2BENCH_GRADER_BASE_URL"
GRADER_MODEL_ENV = "M2BENCH_GRADER_MODEL"
GRADER_KEY_ENV = "M2BENCH_GRADER_API_KEY"
GRADING_MODE_ENV = "M2BENCH_GRADING_MODE"
CONCURRENCY_ENV = "M2BENCH_GRADER_CONCURRENCY"
EMBEDDED_GRADER = "m2bench/default"


@dataclass
class RewardState:
    engine: RubricGrader
    recent_valid: deque


_state: RewardState | None = None
_lock = threading.Lock()
_build_lock = threading.Lock()


def grader_api_key() -> str | None:
    return os.environ.get(GRADER_KEY_ENV) or os.environ.get("OPENAI_API_KEY")


def grader_from_env() -> tuple[Grader, str]:
    """(grader callable, grader id safe to log) from the environment."""
    url, model = os.environ.get(GRADER_URL_ENV), os.environ.get(GRADER_MODEL_ENV)
    if url and model:
        from harness.clients import OpenAIChat

        client = OpenAIChat(url, model, api_key=grader_api_key())
        return client, client.name
    if url or model:
        raise GradingError(f"set both {GRADER_URL_ENV} and {GRADER_MODEL_ENV} (only one is set)")
    return local_grader(), EMBEDDED_GRADER


def configure(
    grader: Grader | None = None,
    *,
    grader_id: str | None = None,
    mode: str | None = None,
    max_concurrency: int | None = None,
    cache: GradingCache | None | bool = True,
) -> RubricGrader:
    """Build the shared engine (call before training/benchmarks to choose the grader explicitly)."""
    global _state
    if grader is None:
        grader, env_id = grader_from_env()
        grader_id = grader_id or env_id
    engine = RubricGrader(
        grader,
        grader_id=grader_id or "custom-grader",
        mode=mode or os.environ.get(GRADING_MODE_ENV, "per_criterion"),
        max_concurrency=max_concurrency or int(os.environ.get(CONCURRENCY_ENV, "64")),
        cache=default_cache() if cache is True else (None if cache is False else cache),
    )
    with _lock:
        _state = RewardState(engine, deque(maxlen=INVALID_WINDOW))
    return engine


def engine() -> RubricGrader:
    """The shared engine, built from the environment on first use."""
    state = _state
    if state is None:
        with _build_lock:  # concurrent first calls build it once
            if _state is None:
                configure()
        state = _state
    assert state is not None  # configure() set it
    return state.engine


def reset() -> None:
    """Forget the shared engine (tests)."""
    global _state
    with _lock:
        _state = None


def json_field(value: Any) -> Any:
    """extra_info values are stored as JSON text in the parquet files (a stable column schema)."""
    return json.loads(value) if isinstance(value, str) else value


def result(score: float, valid: bool, grader_calls: int = 0, graded: int = 0) -> dict[str, float]:
    return {
        "score": float(score),
        "reward_valid": 1.0 if valid else 0.0,
        "grader_calls": float(grader_calls),
        "graded_criteria": float(graded),
    }


def _check_invalid_rate(valid: bool, max_invalid_fraction: float, problem: str) -> None:
    state = _state
    if state is None:
        return
    state.recent_valid.append(valid)
    window = state.recent_valid
    invalid = window.count(False)
    if len(window) >= 20 and invalid > max_invalid_fraction * len(window):
        raise GradingError(
            f"{invalid} of the last {len(window)} rewards could not be graded by {state.engine.grader_id} "
            f"(more than max_invalid_fraction={max_invalid_fraction}); last problem: {problem}"
        )


def finish(
    score: float | None,
    problem: str,
    grader_calls: int,
    graded: int,
    *,
    what: str,
    invalid_score: float,
    max_invalid_fraction: float,
) -> dict[str, float]:
    """The reward dict for a graded sample, or the logged, counted fallback when ``score`` is None."""
    if score is None:
        logger.error("%s not graded (fallback score %s): %s", what, invalid_score, problem)
        _check_invalid_rate(False, max_invalid_fraction, problem)
        return result(invalid_score, False, grader_calls, graded)
    _check_invalid_rate(True, max_invalid_fraction, "")
    return result(score, True, grader_calls, graded)
