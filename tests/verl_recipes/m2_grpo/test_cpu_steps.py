"""Real GRPO steps on the CPU (verl's agent loops, reward manager, GRPO advantage, policy loss and
optimizer; the simulated server as grader and patient): the weights move, and on the same batch the
log-probabilities of positive-advantage responses rise and those of negative-advantage ones fall."""

import asyncio

import pytest
import torch

from harness.tools.sim_server import SimServer
from tests.helpers.verl_cpu import cpu_config, exported_rows
from verl_recipes.m2_grpo import cpu_steps, grader

pytestmark = pytest.mark.slow


def mean_log_prob(log_probs, mask, rows):
    return float((log_probs[rows] * mask[rows]).sum() / mask[rows].sum())


def test_two_steps_on_a_mixed_batch_move_log_probs_with_the_advantage(tmp_path, monkeypatch):
    rows = exported_rows()
    cfg = cpu_config(
        "data.train_batch_size=3",
        "actor_rollout_ref.rollout.n=3",
        "actor_rollout_ref.actor.ppo_mini_batch_size=3",
        "data.max_response_length=16",
        "reward.reward_kwargs.overlong_buffer_cfg.len=8",
    )
    with SimServer(latency_s=0.0) as srv:
        monkeypatch.setenv("M2BENCH_GRADER_BASE_URL", srv.base_url)
        monkeypatch.setenv("M2BENCH_GRADER_MODEL", "sim-grader")
        grader.reset()
        try:
            run = asyncio.run(
                cpu_steps.run_steps(cfg, 2, [r for group in rows.values() for r in group], tmp_path, sim_grader=True)
            )
        finally:
            grader.reset()
        assert srv.stats()["grader_calls"] > 0 and srv.stats()["model_calls"] > 0  # graded, and the patient answered

    initial = cpu_steps.load_policy()
    assert any(not torch.equal(a, b) for a, b in zip(run.policy.parameters(), initial.parameters()))
    assert len(run.steps) == 2
    for rec in run.steps:
        assert set(rec.data_sources) == {"m2bench/medqa", "m2bench/healthbench", "m2bench/consultation"}
        assert rec.metrics["actor/updates"] == 1 and rec.metrics["reward_valid/mean"] == 1.0
        mask = rec.response_mask
        advantage = rec.advantages.sum(-1) / mask.sum(-1).clamp(min=1)
        positive = (advantage > 0).nonzero().flatten().tolist()
        negative = (advantage < 0).nonzero().flatten().tolist()
        assert positive and negative  # the overlong penalty alone spreads rewards within groups
        assert mean_log_prob(rec.log_probs_after, mask, positive) > mean_log_prob(rec.log_probs_before, mask, positive)
        assert mean_log_prob(rec.log_probs_after, mask, negative) < mean_log_prob(rec.log_probs_before, mask, negative)
        assert rec.metrics["kl_to_initial/mean"] > 0

    paths = cpu_steps.write_report(run, "python -m verl_recipes.m2_grpo --cpu-steps 2", tmp_path / "report")
    table = paths["table"].read_text()
    assert "| 2 |" in table and "plumbing check" in table and paths["chart"].stat().st_size > 0
    before = paths["table"].stat().st_mtime_ns
    cpu_steps.write_report(run, "python -m verl_recipes.m2_grpo --cpu-steps 2", tmp_path / "report")
    assert paths["table"].stat().st_mtime_ns == before  # same content: not rewritten
