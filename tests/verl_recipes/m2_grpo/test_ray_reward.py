"""The reward inside verl's reward worker as a Ray actor (how every training run computes it):
verl's RewardLoopWorker loads the recipe's reward manager and compute_score in its own process,
which grades over HTTP (the simulated server as grader) with the environment the job gives it."""

import pytest

from harness.tools.sim_server import SimServer
from tests.helpers.paths import ROOT
from tests.helpers.verl_cpu import cpu_config, exported_rows
from verl_recipes.m2_grpo import check

pytestmark = pytest.mark.slow


def test_the_reward_runs_inside_verls_ray_reward_worker(tmp_path):
    import ray
    from transformers import AutoTokenizer
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    cfg = cpu_config()
    tokenizer = AutoTokenizer.from_pretrained(cfg.actor_rollout_ref.model.path)
    rows = exported_rows(("medqa", "healthbench"))
    medqa, healthbench = rows["m2bench/medqa"][0], rows["m2bench/healthbench"][0]
    right = medqa["reward_model"]["ground_truth"]
    with SimServer(latency_s=0.0) as srv:
        env = {
            "M2BENCH_GRADER_BASE_URL": srv.base_url,
            "M2BENCH_GRADER_MODEL": "sim-grader",
            "M2BENCH_CACHE_DIR": str(tmp_path / "cache"),
            "PYTHONPATH": str(ROOT),
            "HF_HUB_OFFLINE": "1",
        }
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
        try:
            worker = ray.remote(RewardLoopWorker).remote(cfg)
            right_answer = ray.get(worker.compute_score.remote(check.data_proto(medqa, f"ANSWER: {right}", tokenizer)))
            graded = ray.get(worker.compute_score.remote(check.data_proto(healthbench, check.HEALTHBENCH_REPLY, tokenizer)))
        finally:
            ray.shutdown()
        grader_calls = srv.stats()["grader_calls"]
    assert right_answer["reward_extra_info"]["score"] == 1.0 and right_answer["reward_score"] == 1.0
    info = graded["reward_extra_info"]
    assert info["reward_valid"] == 1.0 and info["grader_calls"] > 0 and "overlong_reward" in info
    assert grader_calls == info["grader_calls"]  # graded over HTTP from the actor's process
