"""The recipe's V1 replay buffer: verl's sync ``ReplayBuffer`` that also evicts (and so refills) the
GRPO groups the recipe drops, counts them and stops the run past the threshold (``failures.py``).

verl loads it from ``trainer.v1.sampler.custom_sampler`` (config/m2_grpo.yaml) in the trainer
process; its options come from ``trainer.v1.sampler.sampler_kwargs``. Only ``trainer.v1.trainer_mode=sync``
(the recipe's mode) is supported. Dropped: finished groups with a sample whose
``reward_extra_info.reward_valid`` is not 1, and every failed group (a rollout session raised;
verl's own buffer would otherwise train on the sessions that did not fail). verl's sync sampling
loop then refills them (``sync_refill_failed_groups`` makes its dataloader fetch single prompts).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import transfer_queue as tq
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

from harness.errors import ArgumentError
from verl_recipes.m2_grpo.failures import GroupDrops


class M2ReplayBuffer(ReplayBuffer):
    def __init__(self, trainer_mode: str, *args: Any, sampler_kwargs: Any = None, **kwargs: Any):
        if trainer_mode != "sync":
            raise ArgumentError("trainer.v1.trainer_mode", trainer_mode, "sync (the M2 replay buffer supports sync only)")
        options = dict(sampler_kwargs or {})
        self.max_dropped_fraction = float(options["max_dropped_group_fraction"])
        self.batch_size = int(options["train_batch_size"])
        dapo = options.get("filter_groups_metric") if options.get("filter_groups_enable") else None
        kwargs.setdefault("filter_groups_metric", dapo)
        kwargs.setdefault("train_batch_size", self.batch_size)
        kwargs.setdefault("gen_batch_size", 1)
        kwargs.setdefault("max_inflight_gen_batches", int(options.get("max_inflight_gen_batches", 1)))
        kwargs.setdefault("sync_refill_failed_groups", True)
        super().__init__(trainer_mode, *args, sampler_kwargs=sampler_kwargs, **kwargs)
        self.drops = GroupDrops(self.batch_size, self.max_dropped_fraction)
        self._counted: set[str] = set()
        self._invalid_samples: dict[str, dict[str, int]] = defaultdict(dict)  # partition -> uid -> invalid samples

    def sample(self, global_steps: int, partition_id: str, batch_size: int):
        self.drops = GroupDrops(self.batch_size, self.max_dropped_fraction)
        self._counted = set()
        batch, metrics = super().sample(global_steps, partition_id, batch_size)
        if partition_id == "train":
            metrics.update(self.drops.metrics(f"{self._metrics_prefix(partition_id)}/m2"))
        return batch, metrics

    def _terminal_eviction_reasons(self, global_steps: int, partition_id: str):
        stale, dapo, failed, counts = super()._terminal_eviction_reasons(global_steps, partition_id)
        if partition_id == "val":
            return stale, dapo, failed, counts
        invalid = self._invalid_reward_groups(partition_id)
        rollout_failed = set(self.failure_keys[partition_id])
        new_invalid, new_failed = invalid - self._counted, rollout_failed - invalid - self._counted
        self._counted |= new_invalid | new_failed
        samples = sum(self._invalid_samples[partition_id].get(uid, 0) for uid in new_invalid)
        self.drops.add(invalid_reward=len(new_invalid), failed_rollout=len(new_failed), invalid_samples=samples)
        dropped = invalid | rollout_failed
        return stale, dapo - dropped, failed | dropped, counts

    def _invalid_reward_groups(self, partition_id: str) -> set[str]:
        """Finished groups with a trajectory whose reward is not valid (classified once per group)."""
        seen = self._invalid_samples[partition_id]
        finished = self.finished_keys[partition_id]
        for uid in seen.keys() - finished:
            del seen[uid]
        new = finished - seen.keys()
        keys = [key for key in self.partitions[partition_id] if key.split("_")[0] in new]
        for uid in new:
            seen[uid] = 0
        if keys:
            data = tq.kv_batch_get(keys=keys, partition_id=partition_id, select_fields=["extra_fields"])
            for key, value in zip(keys, list(data["extra_fields"]), strict=True):
                fields = getattr(value, "data", value)
                info = fields.get("reward_extra_info", {}) if isinstance(fields, dict) else {}
                if float(info.get("reward_valid", 0.0)) != 1.0:  # a missing flag is not a valid reward
                    seen[key.split("_")[0]] += 1
        return {uid for uid, bad in seen.items() if bad}
