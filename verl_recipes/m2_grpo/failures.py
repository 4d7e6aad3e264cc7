"""What a grader outage (or a failed rollout) does during training: the recipe's failure semantics.

1. Retries, bounded: the grader client retries HTTP 429/5xx, timeouts and connection errors
   (4 retries with backoff, ``harness.clients``); the rubric engine retries an unusable reply
   (3 attempts per criterion, ``harness.grading``).
2. A sample still not graded gets ``reward_valid = 0`` (and ``score = invalid_score``), logged.
3. Its whole GRPO group is dropped: a group advantage computed against a fallback score would
   teach the policy the fallback. A rollout session that raised drops its group too.
4. The drops are counted as training metrics (``m2/dropped_groups``, ``m2/dropped_groups_invalid_reward``,
   ``m2/dropped_groups_failed_rollout``, ``m2/invalid_samples``, ``m2/dropped_group_fraction``).
5. The run stops (``TooManyDroppedGroups``, one clear message) as soon as one training step has
   dropped more than ``m2.max_dropped_group_fraction`` x ``data.train_batch_size`` groups: an
   outage stops training instead of refilling forever or learning from what is left.

Where it is implemented, through verl's extension points only:
- V1 trainer (``trainer.use_v1=true``, verl's default): ``sampler.M2ReplayBuffer``
  (``trainer.v1.sampler.custom_sampler``) evicts the groups from the replay buffer and verl refills
  them with fresh prompts, so the step still trains on a full batch of valid groups; the counts go
  into the step's metrics as ``training/m2/...``.
- Legacy trainer (``trainer.use_v1=false``): ``M2AgentLoopManager``
  (``actor_rollout_ref.rollout.agent.agent_loop_manager_class``) gives the dropped groups'
  responses ``response_mask = 0`` (no loss, no gradient; the legacy trainer cannot refill) and
  reports the counts with the rollout timing, which verl logs as ``timing_s/m2/...``. A rollout
  that raises stops the legacy run (verl's worker does not catch it).
- ``python -m verl_recipes.m2_grpo --cpu-steps N`` uses ``M2AgentLoopManager`` as its rollout manager.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from verl import DataProto
from verl.experimental.agent_loop.agent_loop import AgentLoopManager
from verl.utils.ray_utils import auto_await

from harness.errors import M2BenchError

METRIC_PREFIX = "m2"


class TooManyDroppedGroups(M2BenchError):
    """More GRPO groups were dropped in one step than m2.max_dropped_group_fraction allows."""


@dataclass
class GroupDrops:
    """Drop counts of one training step."""

    batch_size: int
    max_fraction: float
    invalid_reward: int = 0  # groups dropped for a sample the grader could not grade
    failed_rollout: int = 0  # groups dropped for a rollout session that raised
    invalid_samples: int = 0

    @property
    def dropped(self) -> int:
        return self.invalid_reward + self.failed_rollout

    def add(self, invalid_reward: int = 0, failed_rollout: int = 0, invalid_samples: int = 0) -> None:
        self.invalid_reward += invalid_reward
        self.failed_rollout += failed_rollout
        self.invalid_samples += invalid_samples
        if self.dropped > self.max_fraction * self.batch_size:
            raise TooManyDroppedGroups(
                f"{self.dropped} GRPO groups dropped in one training step ({self.invalid_reward} with a sample the grader "
                f"could not grade, {self.failed_rollout} with a failed rollout), more than m2.max_dropped_group_fraction="
                f"{self.max_fraction} x data.train_batch_size={self.batch_size}: the grader (or the rollout) is failing, "
                "so training stops instead of learning from what is left; the reward workers' log names the problems"
            )

    def metrics(self, prefix: str = METRIC_PREFIX) -> dict[str, float]:
        return {
            f"{prefix}/dropped_groups": float(self.dropped),
            f"{prefix}/dropped_groups_invalid_reward": float(self.invalid_reward),
            f"{prefix}/dropped_groups_failed_rollout": float(self.failed_rollout),
            f"{prefix}/invalid_samples": float(self.invalid_samples),
            f"{prefix}/dropped_group_fraction": self.dropped / self.batch_size if self.batch_size else 0.0,
        }


def invalid_groups(uids: Sequence[Any], reward_valid: Iterable[Any]) -> tuple[set[str], int]:
    """(groups with a sample whose reward is not valid, number of such samples)."""
    bad = [str(u) for u, v in zip(uids, reward_valid) if float(v) != 1.0]
    return set(bad), len(bad)


def drop_invalid_groups(batch: DataProto, uids: Sequence[Any], drops: GroupDrops) -> np.ndarray:
    """Mask out every group with an ungraded sample (``response_mask`` 0: no loss, no gradient).

    ``batch`` is a rollout output (``reward_valid`` among its reward extra keys); ``uids`` gives
    each row's group. Counts the drops in ``drops`` (which raises past the threshold) and returns
    the boolean row mask of what was kept.
    """
    if "reward_valid" not in batch.non_tensor_batch:
        raise M2BenchError("the rollout output has no reward_valid: the reward was not computed by the recipe's reward")
    bad, samples = invalid_groups(uids, batch.non_tensor_batch["reward_valid"])
    keep = np.array([str(u) not in bad for u in uids], dtype=bool)
    if bad:
        batch.batch["response_mask"][~keep] = 0
    drops.add(invalid_reward=len(bad), invalid_samples=samples)
    return keep


def group_drops(config: Any) -> GroupDrops:
    return GroupDrops(int(config.data.train_batch_size), float(config.m2.max_dropped_group_fraction))


class M2AgentLoopManager(AgentLoopManager):
    """verl's agent loop manager (legacy trainer) plus the recipe's group drops (module docstring).

    The V1 trainer reads the same config key, so under ``trainer.use_v1=true`` ``create`` hands
    over to verl's own V1 manager (``AgentLoopManagerTQ``): there the replay buffer drops groups.
    """

    @classmethod
    def create(cls, *args: Any, **kwargs: Any) -> Any:
        config = kwargs["config"] if "config" in kwargs else args[0]
        if config.trainer.get("use_v1", False):
            from verl.trainer.ppo.v1 import AgentLoopManagerTQ

            return AgentLoopManagerTQ.create(*args, **kwargs)
        return AgentLoopManager.create.__func__(cls, *args, **kwargs)

    @auto_await
    async def generate_sequences(self, prompts: DataProto) -> DataProto:
        output = await super().generate_sequences(prompts)
        if self.config.actor_rollout_ref.rollout.n > 1 and not prompts.meta_info.get("validate", False):
            drops = group_drops(self.config)
            drop_invalid_groups(output, prompts.non_tensor_batch["uid"], drops)
            output.meta_info.setdefault("timing", {}).update(drops.metrics())
        return output


class InProcessActor:
    """A verl worker object called the way verl calls its Ray actor (``handle.method.remote(...)``),
    in this process: used where no Ray cluster runs (the CPU steps, tests)."""

    def __init__(self, worker: Any):
        self.worker = worker

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.worker, name)

        class Remote:
            @staticmethod
            def remote(*args: Any, **kwargs: Any) -> asyncio.Future:
                return asyncio.ensure_future(method(*args, **kwargs))

        return Remote
