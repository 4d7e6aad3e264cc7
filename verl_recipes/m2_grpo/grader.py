"""The reward's shared grader: one engine, one grader client and one cache per process, the one
environment lookup of the recipe's model roles (grader, patient), and the reward dict of valid and
invalid rewards. Used by the reward (``reward.py``), the consultation reward and patient
(``consultation.py``) and the launcher's checks.

Roles (``endpoint(role)``): ``M2BENCH_<ROLE>_BASE_URL`` + ``M2BENCH_<ROLE>_MODEL`` (any
OpenAI-compatible server; key from ``M2BENCH_<ROLE>_API_KEY``, else ``OPENAI_API_KEY``); setting
only one of the pair is an error. The patient falls back to the grader's endpoint; with no endpoint
a role is played by the embedded offline model (``m2bench/default``: slow and weak, for checks;
a real launch refuses it unless ``m2.allow_embedded_grader=true``).
Grader (first match): ``configure(...)`` (tests, benchmarks); ``endpoint("grader")``; the embedded model.

Grader profile of HealthBench rows: ``simple_evals`` (the official grading, as the HealthBench
evals use by default), or ``M2BENCH_GRADER_PROFILE=m2bench`` (our prompt; needed for
``M2BENCH_GRADING_MODE=batched``). Consultation rows use ``m2bench``, as the consultation eval does.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from harness.cache import GradingCache, default_cache
from harness.errors import GradingError
from harness.grading import OFFICIAL_PROFILE, Grader, RubricGrader, check_grader_profile, check_grading_mode
from harness.local_model import local_grader

logger = logging.getLogger(__name__)

# the keys of every result (verl requires the same extra keys for every sample of a batch)
EXTRA_KEYS = ("score", "reward_valid", "grader_calls", "graded_criteria")

ROLES = ("grader", "patient")
GRADER_URL_ENV = "M2BENCH_GRADER_BASE_URL"
GRADER_MODEL_ENV = "M2BENCH_GRADER_MODEL"
GRADER_KEY_ENV = "M2BENCH_GRADER_API_KEY"  # the names role_env("grader", ...) gives
GRADING_MODE_ENV = "M2BENCH_GRADING_MODE"
PROFILE_ENV = "M2BENCH_GRADER_PROFILE"
CONCURRENCY_ENV = "M2BENCH_GRADER_CONCURRENCY"
EMBEDDED_GRADER = "m2bench/default"


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server playing a role (the key is read from the environment, never stored here)."""

    role: str
    base_url: str
    model: str
    source: str  # the role whose variables named it (the patient may borrow the grader's)

    def client(self, **options: Any):
        from harness.clients import OpenAIChat

        return OpenAIChat(self.base_url, self.model, api_key=role_api_key(self.source), **options)


def role_env(role: str, what: str) -> str:
    """``M2BENCH_<ROLE>_<WHAT>``, e.g. role_env("patient", "BASE_URL")."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return f"M2BENCH_{role.upper()}_{what}"


def role_api_key(role: str) -> str | None:
    return os.environ.get(role_env(role, "API_KEY")) or os.environ.get("OPENAI_API_KEY")


def endpoint(role: str) -> Endpoint | None:
    """The endpoint configured for ``role`` (the patient falls back to the grader's), or None: the embedded model."""
    url, model = os.environ.get(role_env(role, "BASE_URL")), os.environ.get(role_env(role, "MODEL"))
    if url and model:
        return Endpoint(role, url, model, role)
    if url or model:
        raise GradingError(f"set both {role_env(role, 'BASE_URL')} and {role_env(role, 'MODEL')} (only one is set)")
    if role == "patient" and (grader := endpoint("grader")) is not None:
        return Endpoint(role, grader.base_url, grader.model, grader.source)
    return None


def describe(role: str) -> str:
    """Which model plays ``role``, safe to print (no key, no credentials in the URL)."""
    from harness.clients import redact_url

    found = endpoint(role)
    if found is None:
        return f"{EMBEDDED_GRADER} (the embedded offline model: no {role_env(role, 'BASE_URL')} set)"
    borrowed = f" (the grader's endpoint: no {role_env(role, 'BASE_URL')} set)" if found.source != role else ""
    return f"{found.model} at {redact_url(found.base_url)}{borrowed}"


def grader_from_env() -> tuple[Grader, str]:
    """(grader callable, grader id safe to log) from the environment."""
    found = endpoint("grader")
    if found is None:
        return local_grader(), EMBEDDED_GRADER
    client = found.client()
    return client, client.name


@dataclass
class RewardState:
    engine: RubricGrader
    healthbench_profile: str


_state: RewardState | None = None
_lock = threading.Lock()
_build_lock = threading.Lock()


def configure(
    grader: Grader | None = None,
    *,
    grader_id: str | None = None,
    mode: str | None = None,
    max_concurrency: int | None = None,
    cache: GradingCache | None | bool = True,
    healthbench_profile: str | None = None,
) -> RubricGrader:
    """Build the shared engine (call before training/benchmarks to choose the grader explicitly)."""
    global _state
    mode = mode or os.environ.get(GRADING_MODE_ENV, "per_criterion")
    profile = check_grader_profile(healthbench_profile or os.environ.get(PROFILE_ENV, OFFICIAL_PROFILE))
    try:
        check_grading_mode(mode, profile)
    except ValueError as exc:
        raise GradingError(f"{exc} (set {PROFILE_ENV}=m2bench for {GRADING_MODE_ENV}=batched)") from None
    if grader is None:
        grader, env_id = grader_from_env()
        grader_id = grader_id or env_id
    engine = RubricGrader(
        grader,
        grader_id=grader_id or "custom-grader",
        mode=mode,
        max_concurrency=max_concurrency or int(os.environ.get(CONCURRENCY_ENV, "64")),
        cache=default_cache() if cache is True else (None if cache is False else cache),
    )
    with _lock:
        _state = RewardState(engine, profile)
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


def healthbench_profile() -> str:
    """The grader profile of HealthBench rows (after ``engine()`` has built the state)."""
    engine()
    assert _state is not None
    return _state.healthbench_profile


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


def finish(
    score: float | None, problem: str, grader_calls: int, graded: int, *, what: str, invalid_score: float
) -> dict[str, float]:
    """The reward dict for a graded sample, or the logged fallback when ``score`` is None.

    An ungraded sample gets ``score = invalid_score`` and ``reward_valid = 0``; what happens to its
    GRPO group (dropped, counted, the run stopped past a threshold) is decided where whole groups
    are seen (``failures.py``), not here.
    """
    if score is None:
        logger.error("%s not graded (fallback score %s): %s", what, invalid_score, problem)
        return result(invalid_score, False, grader_calls, graded)
    return result(score, True, grader_calls, graded)
