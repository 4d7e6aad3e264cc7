"""The offline end-to-end demo: HealthBench Hard on a few samples with the embedded model.

    python -m harness.tools.demo [--limit 3] [--log-dir logs]

The embedded model (SmolLM2-135M-Instruct on CPU) is both the model under test and the
grader (passed explicitly as the ``grader`` role), grading with the default, official
(simple-evals) grader profile. No API key, GPU or internet is needed. A 135M model scores low;
that is expected, and the results table marks the run as not comparable.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from harness.data import find_local, shown_path
from harness.errors import DataError
from harness.evalsets import HEALTHBENCH_SAMPLES
from harness.grading import GRADER_PROFILES, GRADING_MODES, OFFICIAL_PROFILE
from harness.healthbench import official_path
from harness.local_model import MODEL_DESCRIPTION, LocalModel

ROOT = Path(__file__).resolve().parents[2]


def hard_data() -> tuple[str | None, str]:
    """The official Hard file if obtainable, else the public 50-row sample in $M2BENCH_DATA_DIR."""
    try:
        return None, f"official HealthBench Hard file {shown_path(official_path('hard'))}"
    except DataError as official_error:
        sample = find_local(HEALTHBENCH_SAMPLES["hard"])
        if sample is None:
            raise official_error
        return str(
            sample
        ), f"public 50-row sample of HealthBench Hard ({shown_path(sample)}); the official file was not reachable"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=3)
    parser.add_argument("--log-dir", default=str(ROOT / "logs"))
    parser.add_argument("--grader-profile", default=OFFICIAL_PROFILE, choices=GRADER_PROFILES)
    parser.add_argument(
        "--grading-mode", default="per_criterion", choices=GRADING_MODES, help="batched needs --grader-profile m2bench"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        return run(args)
    finally:
        print(f"demo wall time: {time.perf_counter() - started:.1f} s", flush=True)


def run(args: argparse.Namespace) -> int:
    from inspect_ai import eval as inspect_eval

    from harness.evals.failures import TaskFailure
    from harness.evals.logs import results_table

    data_file, data_note = hard_data()
    print(f"model under test and grader: m2bench/default = {MODEL_DESCRIPTION}")
    print(f"data: {data_note}; first {args.limit} samples")
    task_args: dict[str, str] = {"grading_mode": args.grading_mode, "grader_profile": args.grader_profile}
    if data_file:
        task_args["data_file"] = data_file
    try:
        logs = inspect_eval(
            os.path.relpath(ROOT / "tasks" / "healthbench_hard"),  # inspect takes task folders as relative paths
            model="m2bench/default",
            model_roles={"grader": "m2bench/default"},
            task_args=task_args,
            limit=args.limit,
            log_dir=args.log_dir,
            display="plain",
        )
    except TaskFailure as failure:
        print(failure, file=sys.stderr)
        return 2
    log = logs[0]
    if log.status != "success":
        print(f"run ended with status {log.status}: {log.error}", file=sys.stderr)
        return 1
    print(f"embedded model decoding: {LocalModel.shared().engine}")  # loaded by the run above
    row = results_table([log.location]).iloc[0]
    print("\nResults table row:")
    # nothing run-specific in kept output; optional columns this benchmark does not fill are left out
    print(row.drop(["log", "why_not_comparable", "date"]).dropna().to_string())
    print(f"not comparable with published scores: {row['why_not_comparable']}" if not row["comparable"] else "comparable")
    print(f"\nInspect log: {shown_path(log.location)}\nView it with: inspect view --log-dir {shown_path(args.log_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
