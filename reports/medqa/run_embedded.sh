#!/usr/bin/env bash
# MedQA test, first 20 questions, embedded SmolLM2-135M on CPU, through both harnesses.
# Run from the repository root: bash reports/medqa/run_embedded.sh
set -euo pipefail
export M2BENCH_DATA_DIR=${M2BENCH_DATA_DIR:-$(cd ../shared/data && pwd)} HF_HUB_OFFLINE=1
out=reports/medqa
rm -rf $out/logs $out/lmeval $out/results.csv
.venv/bin/inspect eval tasks/medqa --model m2bench/default --limit 20 --max-tokens 8 \
  --log-dir $out/logs --display plain > $out/inspect_embedded_limit20.txt 2>&1
.venv/bin/python -m harness.lmeval.model --model m2bench-default --include_path tasks/lm_eval \
  --tasks m2_medqa,m2_medqa_gen --limit 20 --gen_kwargs max_gen_toks=8 --output_path $out/lmeval --log_samples > $out/lmeval_embedded_limit20.txt 2>&1
.venv/bin/python - <<'PY' > $out/results_table.txt
import os

import pandas as pd
from harness.lmeval.results import lmeval_table
from harness.evals.logs import results_table
from harness.results import append_results
table = pd.concat([results_table(["reports/medqa/logs"]), lmeval_table(["reports/medqa/lmeval"])], ignore_index=True)
# log paths relative to the repository, so the committed table holds no machine-specific path
table["log"] = [os.path.relpath(path) + sep + part for path, sep, part in (str(log).partition("#") for log in table["log"])]
merged = append_results(table, "reports/medqa/results.csv")
print(merged.drop(columns=["log"]).to_string(index=False))
PY
# the same greedy generations in both harnesses -> the same per-question verdicts
.venv/bin/python - <<'PY' > $out/parity_embedded.txt
import glob, json
from inspect_ai.log import read_eval_log
log = read_eval_log(glob.glob("reports/medqa/logs/*.eval")[0])
inspect = {s.input: (s.output.completion, s.scores["choice_scorer"].value) for s in log.samples}
rows = [json.loads(l) for f in glob.glob("reports/medqa/lmeval/*/samples_m2_medqa_gen_*.jsonl") for l in open(f)]
same_text = same_score = 0
for r in rows:
    text, value = inspect[r["arguments"]["gen_args_0"]["arg_0"]]
    same_text += text == r["resps"][0][0]
    same_score += (value == "C") == (r["acc"] == 1.0)
print(f"questions compared: {len(rows)}; identical generations: {same_text}; identical verdicts: {same_score}")
print(f"inspect accuracy {sum(v == 'C' for _, v in inspect.values()) / len(inspect):.3f}; "
      f"lm-eval m2_medqa_gen acc {sum(r['acc'] for r in rows) / len(rows):.3f}")
PY
cat $out/results_table.txt $out/parity_embedded.txt
