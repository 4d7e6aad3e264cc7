#!/usr/bin/env bash
# HealthBench Hard in reference mode with the embedded grader (SmolLM2-135M on CPU): the physician-written
# ideal completions next to empty replies, on the same rows of the public 50-row sample, graded with the
# official grader profile (the default) and with ours. The gap between ideal and empty is how far this
# grader tells a good reply from no reply.
# n = 4: the four rows (of the 41 with an ideal completion) with the fewest rubric criteria (3, 3, 4, 5),
# so the 4 x 15 grader calls finish on 2 busy cores (up to a minute per call there).
# Run from the repository root: bash reports/reference_mode/run_embedded.sh
#   BIN=.venv/bin by default; PROFILES="simple_evals m2bench" by default (a subset re-runs only those).
set -euo pipefail
BIN=${BIN:-.venv/bin}
export M2BENCH_DATA_DIR=${M2BENCH_DATA_DIR:-$(cd ../shared/data && pwd)} HF_HUB_OFFLINE=1
export M2BENCH_CACHE_DIR=$(mktemp -d)  # fresh verdicts
out=reports/reference_mode
ids=45b7cc5e-b5a8-481c-a801-5d0556677154,ff97341f-fa7c-49da-af80-9f9a556002f5,1f2d3cc7-d318-49e0-97eb-895611763a54,597631bc-9c38-49df-bcca-6052b1254963
for profile in ${PROFILES:-simple_evals m2bench}; do
  for responses in ideal empty; do
    rm -rf $out/logs/$profile-$responses
    $BIN/inspect eval tasks/healthbench_hard --model none --model-role grader=m2bench/default \
      -T data_file=$M2BENCH_DATA_DIR/healthbench/hard_sample50_seed42.jsonl -T responses=$responses -T grader_profile=$profile \
      --sample-id $ids --log-dir $out/logs/$profile-$responses --display plain > $out/inspect_$profile-$responses.txt 2>&1
  done
done
$BIN/python - <<'PY' > $out/embedded_hard.md
import glob
from inspect_ai.log import read_eval_log
from harness.evals.logs import results_table

out = "reports/reference_mode"
runs = [(p, r) for p in ("simple_evals", "m2bench") for r in ("ideal", "empty")]
logs = {run: read_eval_log(glob.glob(f"{out}/logs/{run[0]}-{run[1]}/*.eval")[0]) for run in runs}
score = {run: log.results.scores[0].metrics["score"].value for run, log in logs.items()}
per = {run: {s.id: s.scores["rubric_scorer"].value for s in log.samples} for run, log in logs.items()}
met = {run: [v["criteria_met"] for s in log.samples for v in s.scores["rubric_scorer"].metadata["verdicts"]] for run, log in logs.items()}
print("# HealthBench Hard, reference mode, embedded grader\n")
print("Produced by `bash reports/reference_mode/run_embedded.sh` (console output in `inspect_<profile>-<replies>.txt`).")
print("Grader: `m2bench/default` (SmolLM2-135M, CPU, schema-guided decoding), with the official `simple_evals`")
print("profile (the default) and with our `m2bench` prompt, one criterion per call.")
print(f"Rows: n = {len(per[runs[0]])} of the 41 rows of `hard_sample50_seed42.jsonl` that have an ideal completion")
print("(the four with the fewest criteria, 15 criteria in all); the same rows in every run.\n")
print("| grader profile | replies | score (clipped mean) | bootstrap std | criteria judged met |")
print("|---|---|---|---|---|")
for run in runs:
    print(f"| {run[0]} | {run[1]} | {score[run]:.3f} | {logs[run].results.scores[0].metrics['bootstrap_std'].value:.3f} "
          f"| {sum(met[run])} of {len(met[run])} |")
for profile in ("simple_evals", "m2bench"):
    print(f"\n**Gap (ideal - empty), {profile}: {score[profile, 'ideal'] - score[profile, 'empty']:+.3f}** on a 0-1 scale.")
print("\n| prompt_id | criteria | " + " | ".join(f"{p} {r}" for p, r in runs) + " |")
print("|---|---|" + "---|" * len(runs))
for sample in logs[runs[0]].samples:
    cells = " | ".join(f"{per[run][sample.id]:.3f}" for run in runs)
    print(f"| {sample.id} | {len(sample.metadata['rubric'])} | {cells} |")
table = results_table([f"{out}/logs/{p}-{r}" for p, r in runs])
print("\nResults table (`harness.evals.logs.results_table`), every row not comparable:\n")
print("```")
print(table[["model", "score", "n", "data", "limited", "grader", "grader_profile", "comparable"]].to_string(index=False))
print("```")
print(f"\nwhy not comparable: {table['why_not_comparable'].iloc[0]}")
PY
cat $out/embedded_hard.md
