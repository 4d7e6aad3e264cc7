"""Did every run finish? For scripts and CI: ``inspect eval`` exits 0 whatever a run's status.

    python -m harness.evals.check LOG_OR_FOLDER [...]

Prints one line per Inspect log and exits 0 only when every log finished with status ``success``
and scored all its planned samples (dataset samples x epochs, after ``--limit``); 1 when any run
failed, was cancelled, is still running or left samples unscored; 2 when no log was found.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from harness.errors import DataError, run_cli
from harness.evals.logs import log_files, run_status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.evals.check", description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="+", help="Inspect log files (.eval, .json) or folders of them")
    args = parser.parse_args(argv)
    files = log_files(args.logs)
    if not files:
        raise DataError(", ".join(args.logs), "no Inspect log (.eval or .json) found")
    statuses = [run_status(f) for f in files]
    for s in statuses:
        print(f"{'ok' if s.ok else 'FAILED'}: {s.line()}")
    failed = sum(not s.ok for s in statuses)
    print(f"{len(statuses) - failed} of {len(statuses)} runs complete")
    return 1 if failed else 0


if __name__ == "__main__":
    run_cli(main)
