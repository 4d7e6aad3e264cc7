"""Task and command arguments, checked by type and range: a bad value is one ArgumentError naming
the argument, the value and what is valid (``-T max_error_fraction=abc``, ``-T cot=maybe``,
``-T shuffle_choices=1.5`` and a folder given as ``data_file`` all stop before any work).

Inspect parses ``-T name=value`` as YAML, so values arrive as bool, int, float or str.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.data import user_path
from harness.errors import ArgumentError

_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")


def flag(name: str, value: Any) -> bool:
    """A boolean argument: true/false (also yes/no, 1/0, as Inspect or a shell may pass them)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ArgumentError(name, value, ("true", "false"))


def fraction(name: str, value: Any, *, below_one: bool = True) -> float:
    """A number in [0, 1) (or [0, 1] when ``below_one`` is False)."""
    number = _number(value)
    if number is None or number < 0 or (number >= 1 if below_one else number > 1):
        raise ArgumentError(name, value, "a fraction in [0, 1)" if below_one else "a fraction in [0, 1]")
    return number


def whole(name: str, value: Any, *, minimum: int = 0, meaning: str = "") -> int:
    """A whole number >= ``minimum`` (a float with a fractional part is refused, never rounded)."""
    number = _number(value)
    if number is None or not number.is_integer() or number < minimum:
        raise ArgumentError(name, value, f"a whole number >= {minimum}{meaning}")
    return int(number)


def choice(name: str, value: Any, valid: Sequence[str]) -> str:
    if value not in valid:
        raise ArgumentError(name, value, valid)
    return value


def data_file(name: str, value: Any) -> Path:
    """A data file given by the user (relative to where they ran the command): it must be a file."""
    path = user_path(str(value))
    if path.is_dir():
        raise ArgumentError(name, value, "a data file, not a folder")
    if not path.is_file():
        raise ArgumentError(name, value, f"an existing data file ({path} not found)")
    return path


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
