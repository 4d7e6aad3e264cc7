"""Expected failures of a task, shown by ``inspect eval`` as one line.

Inspect prints a ``PrerequisiteError`` that escapes while it builds a task as its message alone
(no traceback) and exits non-zero (``inspect_ai._util.error.exception_hook``, through rich's
console, which soft-wraps it to the terminal's width; ``--display none`` keeps it quiet, ``--json``
sends it to stderr), while any other exception there becomes a traceback. So a task builder reports a missing file, a bad argument or a missing model role by
raising ``TaskFailure``, or lets the project's own errors (``harness.errors.M2BenchError``) out
through ``@one_line_errors``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from inspect_ai._util.error import PrerequisiteError
from rich.markup import escape

from harness.errors import M2BenchError

P = ParamSpec("P")
T = TypeVar("T")


class TaskFailure(PrerequisiteError):
    """An expected failure: ``error: <message>``, one line."""

    def __init__(self, message: str):
        self.text = f"error: {message}"
        super().__init__(escape(self.text))  # printed by rich: brackets in it are text, not markup

    def __str__(self) -> str:
        return self.text


def one_line_errors(build: Callable[P, T]) -> Callable[P, T]:
    """Wrap a task builder so the project's own errors reach ``inspect eval`` as ``TaskFailure``."""

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return build(*args, **kwargs)
        except M2BenchError as exc:
            raise TaskFailure(str(exc)) from None

    return wrapper
