#!/usr/bin/env bash
# One-command single-GPU smoke run of the M2 GRPO recipe: Qwen2.5-0.5B-Instruct from a LOCAL path (an offline
# GPU machine cannot download weights), stage 3 (consultations + HealthBench rubrics), 2 steps, batch 8, n 4,
# the simulated OpenAI-compatible server as grader and patient (rewards are a plumbing check).
# Needs: pip install -e '.[train,train-gpu]' on a machine with one CUDA GPU.
# NOT RUN YET: no GPU machine was available (see the README's "GPU smoke runs" for the expected output).
#
#   bash verl_recipes/m2_grpo/scripts/smoke_1gpu.sh /models/Qwen2.5-0.5B-Instruct
set -euo pipefail
MODEL_PATH=${1:?usage: smoke_1gpu.sh /local/path/to/Qwen2.5-0.5B-Instruct}
OUT=${OUT:-runs/smoke_1gpu}
PORT=${PORT:-8010}
cd "$(dirname "$0")/../../.."
mkdir -p "${OUT}"

python -m harness.tools.sim_server --port "${PORT}" --latency 0.05 > "${OUT}/sim_server.log" 2>&1 &
SIM=$!
trap 'kill ${SIM}' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:${PORT}/v1/models" > /dev/null && break; sleep 0.2; done
export M2BENCH_GRADER_BASE_URL="http://127.0.0.1:${PORT}/v1" M2BENCH_GRADER_MODEL=sim-grader
export M2BENCH_CACHE_DIR="${OUT}/cache" TOKENIZERS_PARALLELISM=false

python -m verl_recipes.m2_grpo model="${MODEL_PATH}" stage=3 data=consultation,healthbench \
    m2.data_dir="${OUT}/data" m2.max_rows_per_source=64 \
    trainer.n_gpus_per_node=1 trainer.total_training_steps=2 trainer.val_before_train=false trainer.test_freq=-1 \
    trainer.save_freq=-1 trainer.default_local_dir="${OUT}/ckpts" trainer.logger='[console]' \
    data.train_batch_size=8 actor_rollout_ref.rollout.n=4 actor_rollout_ref.actor.ppo_mini_batch_size=8 \
    data.max_prompt_length=2048 data.max_response_length=1024 reward.reward_kwargs.overlong_buffer_cfg.len=256 \
    actor_rollout_ref.rollout.multi_turn.max_assistant_turns=4 actor_rollout_ref.rollout.gpu_memory_utilization=0.4 \
    reward.num_workers=1 actor_rollout_ref.rollout.agent.num_workers=2 \
    "$@" 2>&1 | tee "${OUT}/train.log"
