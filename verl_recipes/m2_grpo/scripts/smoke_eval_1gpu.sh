#!/usr/bin/env bash
# One-command GPU evaluation smoke run: vLLM serves a small LOCAL model behind an OpenAI-compatible server;
# Inspect runs HealthBench Hard (public sample) and MedQA on a handful of samples against it; the simulated
# server grades HealthBench (a plumbing check; MedQA needs no grader).
# Needs: pip install -e '.[gpu]' on a machine with one CUDA GPU.
# NOT RUN YET: no GPU machine was available (see the README's "GPU smoke runs" for the expected output).
#
#   bash verl_recipes/m2_grpo/scripts/smoke_eval_1gpu.sh /models/Qwen2.5-0.5B-Instruct [LIMIT]
set -euo pipefail
MODEL_PATH=${1:?usage: smoke_eval_1gpu.sh /local/path/to/model [limit]}
LIMIT=${2:-5}
OUT=${OUT:-runs/smoke_eval_1gpu}
VLLM_PORT=${VLLM_PORT:-8000}
SIM_PORT=${SIM_PORT:-8011}
cd "$(dirname "$0")/../../.."
mkdir -p "${OUT}"

vllm serve "${MODEL_PATH}" --served-model-name smoke --port "${VLLM_PORT}" --max-model-len 8192 \
    --gpu-memory-utilization 0.8 > "${OUT}/vllm.log" 2>&1 &
VLLM=$!
python -m harness.tools.sim_server --port "${SIM_PORT}" --latency 0.05 > "${OUT}/sim_server.log" 2>&1 &
SIM=$!
trap 'kill ${VLLM} ${SIM}' EXIT
for _ in $(seq 600); do curl -sf "http://127.0.0.1:${VLLM_PORT}/v1/models" > /dev/null && break; sleep 1; done

export LOCAL_BASE_URL="http://127.0.0.1:${VLLM_PORT}/v1" LOCAL_API_KEY=EMPTY
export SIM_BASE_URL="http://127.0.0.1:${SIM_PORT}/v1" SIM_API_KEY=EMPTY
inspect eval tasks/healthbench_hard --model openai-api/local/smoke --model-role grader=openai-api/sim/sim-grader \
    --limit "${LIMIT}" --log-dir "${OUT}/logs"
inspect eval tasks/medqa --model openai-api/local/smoke --limit "${LIMIT}" --log-dir "${OUT}/logs"
python - "${OUT}/logs" <<'PY'
import sys
from harness.evals.logs import results_table
print(results_table([sys.argv[1]]).to_string(index=False))
PY
