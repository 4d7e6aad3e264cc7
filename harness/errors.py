"""The project's own error types: each names where the problem is."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn


class M2BenchError(Exception):
    """Base class for m2bench errors."""


class DataError(M2BenchError, ValueError):
    """A data file is missing or malformed. Names file, line and field."""

    def __init__(self, path: str | Path, message: str, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = self.path + (f":{line}" if line is not None else "")
        what = f" field '{field}'" if field else ""
        super().__init__(f"{where}:{what} {message}")


class ArgumentError(M2BenchError, ValueError):
    """A task or command argument has a value outside its valid set."""

    def __init__(self, name: str, value: object, valid: Sequence[object] | str):
        valid_text = valid if isinstance(valid, str) else ", ".join(map(str, valid))
        super().__init__(f"invalid {name}={value!r}; valid values: {valid_text}")


class GradingError(M2BenchError):
    """A grader reply could not be used after all retries."""


def run_cli(main: Callable[[], int | None]) -> NoReturn:
    """Run a command's ``main`` and exit with its status.

    Expected failures become one line on stderr and a non-zero exit: our own errors and bad paths
    (``error: ...``, exit 2, with a ``hint: ...`` line where the error carries one), Ctrl-C (exit 130).
    Anything else is a bug and keeps its traceback.
    """
    try:
        status = main()
    except (M2BenchError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if hint := getattr(exc, "hint", None):
            print(f"hint: {hint}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status or 0)
