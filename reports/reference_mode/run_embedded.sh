#!/usr/bin/env bash
# HealthBench Hard in reference mode with the embedded grader (SmolLM2-135M on CPU, official grader profile):
# the physician-written ideal completions next to empty replies, on the same rows of the public 50-row sample.
# The gap between the two is how far this grader tells a good reply from no reply.
# n = 4: the four rows (of the 41 with an ideal completion) with the fewest rubric criteria (3, 3, 4, 5),
# so the 2 x 15 grader calls finish on 2 busy cores (about a minute per call there).
# Run from the repository root: bash reports/reference_mode/run_embedded.sh   (BIN=.venv/bin by default)
set -euo pipefail
BIN=${BIN:-.venv/bin}
export M2BENCH_DATA_DIR=${M2BENCH_DATA_DIR:-$(cd ../shared/data && pwd)} HF_HUB_OFFLINE=1
export M2BENCH_CACHE_DIR=$(mktemp -d)  # fresh verdicts
out=reports/reference_mode
ids=45b7cc5e-b5a8-481c-a801-5d0556677154,ff97341f-fa7c-49da-af80-9f9a556002f5,1f2d3cc7-d318-49e0-97eb-895611763a54,597631bc-9c38-49df-bcca-6052b1254963
rm -rf $out/logs
for responses in ideal empty; do
  $BIN/inspect eval tasks/healthbench_hard --model none --model-role grader=m2bench/default \
    -T data_file=$M2BENCH_DATA_DIR/healthbench/hard_sample50_seed42.jsonl -T responses=$responses \
    --sample-id $ids --log-dir $out/logs/$responses --display plain > $out/inspect_$responses.txt 2>&1
done
$BIN/python - <<'PY' > $out/embedded_hard.md
import glob
from inspect_ai.log import read_eval_log
from harness.evals.logs import results_table

out = "reports/reference_mode"
logs = {r: read_eval_log(glob.glob(f"{out}/logs/{r}/*.eval")[0]) for r in ("ideal", "empty")}
table = results_table([f"{out}/logs/ideal", f"{out}/logs/empty"])
score = {r: log.results.scores[0].metrics["score"].value for r, log in logs.items()}
per = {r: {s.id: s.scores["rubric_scorer"].value for s in log.samples} for r, log in logs.items()}
verdicts = {r: [v["criteria_met"] for s in log.samples for v in s.scores["rubric_scorer"].metadata["verdicts"]] for r, log in logs.items()}
print("# HealthBench Hard, reference mode, embedded grader\n")
print("Produced by `bash reports/reference_mode/run_embedded.sh` (console output in `inspect_ideal.txt`, `inspect_empty.txt`).")
print("Grader: `m2bench/default` (SmolLM2-135M, CPU, schema-guided decoding) with the official `simple_evals` profile.")
print(f"Rows: n = {len(per['ideal'])} of the 41 rows of `hard_sample50_seed42.jsonl` that have an ideal completion")
print("(the four with the fewest criteria); the same rows in both runs.\n")
print("| replies | score (clipped mean) | bootstrap std | criteria judged met |")
print("|---|---|---|---|")
for r in ("ideal", "empty"):
    m = logs[r].results.scores[0].metrics
    print(f"| {r} | {score[r]:.3f} | {m['bootstrap_std'].value:.3f} | {sum(verdicts[r])} of {len(verdicts[r])} |")
print(f"\n**Gap (ideal - empty): {score['ideal'] - score['empty']:+.3f}** on a 0-1 scale.\n")
print("| prompt_id | criteria | ideal | empty |")
print("|---|---|---|---|")
for sample in logs["ideal"].samples:
    print(f"| {sample.id} | {len(sample.metadata['rubric'])} | {per['ideal'][sample.id]:.3f} | {per['empty'][sample.id]:.3f} |")
print("\nResults table rows (`harness.evals.logs.results_table`):\n")
print("```")
print(table.drop(columns=["log", "date"]).to_string(index=False))
print("```")
PY
cat $out/embedded_hard.md
