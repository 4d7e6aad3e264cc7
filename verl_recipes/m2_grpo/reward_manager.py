"""The recipe's reward manager: verl's ``dapo`` manager (async reward loop + DAPO overlong penalty),
extended only so that consultation rows reach ``reward.compute_score`` with their episode.

verl loads it from the config (``reward.reward_manager.source=importlib``,
``module.path=pkg://verl_recipes.m2_grpo.reward_manager``, ``name=M2RewardManager``) in every
reward worker (``RewardLoopWorker``). The agent loop ``m2_consultation`` records its episode in
its output's ``extra_fields["transcript"]``; verl hands those fields to the reward worker as
``tool_extra_fields``, and this manager copies the transcript into the row's ``extra_info``.
Everything else is verl's ``DAPORewardManager``: the same reward kwargs
(``reward.custom_reward_function.reward_kwargs``) and the same length penalty for every row.
"""

from __future__ import annotations

import numpy as np
from verl import DataProto
from verl.experimental.reward_loop.reward_manager.dapo import DAPORewardManager


class M2RewardManager(DAPORewardManager):
    async def run_single(self, data: DataProto) -> dict:
        data = data[-1:]
        fields = data.non_tensor_batch.get("tool_extra_fields")
        recorded = fields[0] if fields is not None and isinstance(fields[0], dict) else {}
        if recorded.get("transcript"):
            extra_info = dict(data.non_tensor_batch["extra_info"][0] or {})
            extra_info["transcript"] = recorded["transcript"]
            data.non_tensor_batch["extra_info"] = np.array([extra_info], dtype=object)
        return await super().run_single(data)
