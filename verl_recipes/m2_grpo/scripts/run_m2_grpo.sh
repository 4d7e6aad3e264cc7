#!/usr/bin/env bash
# M2 GRPO on a Ray cluster, in the style of verl-recipe's DAPO run scripts: `ray job submit` ships the
# project (working dir) to every node and installs it there (runtime_env pip), data and config live on
# shared storage, checkpoints rotate (max_actor_ckpt_to_keep), metrics go to a tracking logger.
# NOT RUN YET: no GPU machine was available when this was written (see verl_recipes/m2_grpo/README.md).
#
#   export M2BENCH_GRADER_BASE_URL=http://judge-host:8001/v1 M2BENCH_GRADER_MODEL=Qwen/Qwen2.5-72B-Instruct
#   SHARED=/mnt/shared MODEL_PATH=/mnt/shared/models/Qwen2.5-7B-Instruct STAGE=2 bash verl_recipes/m2_grpo/scripts/run_m2_grpo.sh
set -xeuo pipefail

cd "$(dirname "$0")/../../.."   # the project root: the working dir Ray ships to every node

STAGE=${STAGE:-2}                                   # 1 MedQA, 2 HealthBench rubrics, 3 consultation
NNODES=${NNODES:-1}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
RAY_ADDRESS=${RAY_ADDRESS:-"http://localhost:8265"}
SHARED=${SHARED:?set SHARED to a directory every node mounts (data, checkpoints)}
MODEL_PATH=${MODEL_PATH:?set MODEL_PATH to the policy weights on shared storage}
DATA_DIR=${DATA_DIR:-"${SHARED}/m2_grpo/data/stage${STAGE}"}
CKPTS_DIR=${CKPTS_DIR:-"${SHARED}/m2_grpo/ckpts/stage${STAGE}"}
LOGGER=${LOGGER:-"['console','tensorboard']"}       # or "['console','wandb']" with WANDB_API_KEY in the env
FILTER_GROUPS=${FILTER_GROUPS:-$([ "$STAGE" = 1 ] && echo True || echo False)}  # DAPO dynamic sampling: binary MedQA groups
: "${M2BENCH_GRADER_BASE_URL:?set M2BENCH_GRADER_BASE_URL and M2BENCH_GRADER_MODEL (the judge)}"

# 1. data on shared storage (held out from the reporting eval sets), config checked, reward checked
mkdir -p "${DATA_DIR}"
python -m verl_recipes.m2_grpo --dry-run stage="${STAGE}" m2.data_dir="${DATA_DIR}" model="${MODEL_PATH}" \
    trainer.n_gpus_per_node="${GPUS_PER_NODE}" > "${DATA_DIR%/}.dry_run.txt"

# 2. the job (its entrypoint runs in a shell in the shipped working dir, where $PWD is expanded): the project (its reward, agent loop, sampler) travels to every node as the working dir, which
#    Ray puts on every worker's path; pip installs what it imports there (pyproject: dependencies, train, train-gpu)
RUNTIME_ENV=$(mktemp --suffix=.yaml)
cat > "${RUNTIME_ENV}" <<YAML
pip: ["verl[vllm]==0.9.1", "TransferQueue>=0.1.10", "inspect-ai>=0.3.285", "aiohttp", "platformdirs", "gguf", "cachetools"]
env_vars:
  M2BENCH_GRADER_BASE_URL: "${M2BENCH_GRADER_BASE_URL}"
  M2BENCH_GRADER_MODEL: "${M2BENCH_GRADER_MODEL}"
  M2BENCH_PATIENT_BASE_URL: "${M2BENCH_PATIENT_BASE_URL:-}"
  M2BENCH_PATIENT_MODEL: "${M2BENCH_PATIENT_MODEL:-}"
  M2BENCH_GRADING_MODE: "${M2BENCH_GRADING_MODE:-per_criterion}"
  M2BENCH_CACHE_DIR: "${SHARED}/m2_grpo/cache"
  TOKENIZERS_PARALLELISM: "false"
YAML

ray job submit --no-wait --runtime-env="${RUNTIME_ENV}" \
    --working-dir . \
    --address "${RAY_ADDRESS}" \
    -- python3 -m verl.trainer.main_ppo \
    --config-path='$PWD/verl_recipes/m2_grpo/config' --config-name=m2_grpo \
    stage="$( [ "$STAGE" = 1 ] && echo stage1_verifiable || ([ "$STAGE" = 3 ] && echo stage3_consultation || echo stage2_rubric))" \
    data.train_files="${DATA_DIR}/train.parquet" \
    data.val_files="${DATA_DIR}/val.parquet" \
    data.truncation=left \
    actor_rollout_ref.model.path="${MODEL_PATH}" \
    actor_rollout_ref.actor.clip_ratio_c=3.0 \
    algorithm.filter_groups.enable="${FILTER_GROUPS}" \
    algorithm.filter_groups.metric=score \
    trainer.logger="${LOGGER}" \
    trainer.nnodes="${NNODES}" \
    trainer.n_gpus_per_node="${GPUS_PER_NODE}" \
    trainer.default_local_dir="${CKPTS_DIR}" \
    trainer.max_actor_ckpt_to_keep=2 \
    trainer.resume_mode=auto \
    trainer.save_freq=50 \
    trainer.test_freq=10 \
    "$@"
