"""The project's own error types: each names where the problem is."""

from __future__ import annotations

from pathlib import Path


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

    def __init__(self, name: str, value: object, valid: list | tuple | str):
        valid_text = valid if isinstance(valid, str) else ", ".join(map(str, valid))
        super().__init__(f"invalid {name}={value!r}; valid values: {valid_text}")


class GradingError(M2BenchError):
    """A grader reply could not be used after all retries."""
