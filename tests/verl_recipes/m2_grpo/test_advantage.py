"""Harness rewards through verl's own GRPO advantage and clip-higher policy loss (CPU)."""

import asyncio
import json

import numpy as np
import pytest
import torch
from verl.trainer.ppo import core_algos
from verl.utils.config import omega_conf_to_dataclass

from harness.grading import parse_grading_prompt
from harness.healthbench import load_file
from tests.helpers.paths import FIXTURES
from verl_recipes.m2_grpo import data, launch, reward

REPLIES = [
    "Use oral rehydration solution.",
    "See a doctor if there is blood in the stool.",
    "Use oral rehydration solution and see a doctor if there is blood in the stool.",
    "Rest.",
]


async def grader(messages, json_schema=None):
    prompt = parse_grading_prompt(messages)
    criterion, reply = prompt.criteria[0].lower(), prompt.reply.lower()
    met = ("rehydration" in criterion and "rehydration" in reply) or ("blood" in criterion and "blood" in reply)
    return json.dumps({"explanation": "s", "criteria_met": met})


def test_group_normalised_advantages_from_harness_rewards():
    reward.reset()
    reward.configure(grader, grader_id="scripted", cache=False)
    example = load_file(FIXTURES / "healthbench_mini.jsonl")[0]
    row = data.healthbench_row(example, "test")

    async def rewards():
        return await asyncio.gather(
            *(
                reward.compute_score(row["data_source"], r, row["reward_model"]["ground_truth"], row["extra_info"])
                for r in REPLIES
            )
        )

    hb = [o["score"] for o in asyncio.run(rewards())]
    reward.reset()
    assert len(set(hb)) >= 3  # a real spread within the group
    mcq = [1.0, 0.0, 0.0, 1.0]  # a MedQA group: two right, two wrong
    scores = torch.tensor(hb + mcq)
    index = np.array(["hb"] * 4 + ["mcq"] * 4, dtype=object)
    length = 5
    mask = torch.ones(8, length)
    mask[1, 3:] = 0  # ragged responses
    token_rewards = torch.zeros(8, length)
    last = mask.sum(-1).long() - 1
    token_rewards[torch.arange(8), last] = scores  # reward on the last response token, as verl places it
    adv, _ = core_algos.compute_grpo_outcome_advantage(token_rewards, mask, index, norm_adv_by_std_in_grpo=True)
    # within each group, the advantage orders the responses exactly as the harness rewards do
    for group in (slice(0, 4), slice(4, 8)):
        assert torch.argsort(adv[group, 0], stable=True).tolist() == torch.argsort(scores[group], stable=True).tolist()
    assert (adv[4, 0] > 0) and (adv[5, 0] < 0)  # a right MedQA answer is reinforced, a wrong one discouraged


def test_clip_higher_policy_loss_with_our_actor_config():
    cfg = launch.compose(
        ["actor_rollout_ref.actor.use_dynamic_bsz=false", "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4"]
    )
    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    assert (actor.clip_ratio_low, actor.clip_ratio_high, actor.loss_agg_mode) == (0.2, 0.28, "token-mean")
    actor.global_batch_info.update(dp_size=1, batch_num_tokens=None, global_batch_size=None)
    loss_fn = core_algos.get_policy_loss_fn(actor.policy_loss.loss_mode)
    old = torch.zeros(2, 1)
    mask = torch.ones(2, 1)
    # ratio 1.5 with positive advantage: clipped at 1 + 0.28 (not 1.2); ratio 0.5 with negative: at 1 - 0.2
    loss_up, _ = loss_fn(old, torch.log(torch.full((2, 1), 1.5)), torch.ones(2, 1), mask, "token-mean", actor)
    loss_down, _ = loss_fn(old, torch.log(torch.full((2, 1), 0.5)), -torch.ones(2, 1), mask, "token-mean", actor)
    assert loss_up.item() == pytest.approx(-1.28, abs=1e-5)
    assert loss_down.item() == pytest.approx(0.8, abs=1e-5)
