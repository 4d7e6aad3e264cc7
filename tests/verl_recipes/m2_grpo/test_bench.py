"""The recipe's reward-latency scenario, run through the harness benchmark runner (reduced size)."""

import json

import pytest

from verl_recipes.m2_grpo import bench


@pytest.mark.slow
def test_recipe_reward_scenario_runs_through_the_bench_runner(tmp_path):
    assert bench.main(["reward_latency", "--small", "--load", "0", "--out", str(tmp_path)], scenarios=bench.RECIPE_SCENARIOS) == 0
    reward = json.loads((tmp_path / "reward_latency.json").read_text())["figures"]
    for mode in ("batched", "per_criterion"):
        first, repeat = reward[mode]
        assert repeat["grader_calls"] == 0 and repeat["cache_hits"] == first["cache_misses"] > 0
