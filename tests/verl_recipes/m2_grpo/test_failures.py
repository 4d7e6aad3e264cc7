"""Grader outage during training: the group is dropped and counted, the run stops past the threshold.

Unit tests of the policy, then verl's own rollout paths with the fault-injecting simulated server
as the grader inside the reward loop: the legacy manager path (verl's AgentLoopWorker) and the V1
path (verl's AgentLoopWorkerTQ writing trajectories, the recipe's replay buffer sampling them;
TransferQueue, a cluster service, is the in-memory stand-in of tests/helpers/verl_cpu.py).
"""

import asyncio
import threading

import numpy as np
import pytest
import torch
from verl import DataProto

from harness.clients import OpenAIChat
from harness.tools.sim_server import SimServer
from tests.helpers.verl_cpu import ScriptedServer, cpu_config, exported_rows, install_fake_transfer_queue, scripted_reply
from verl_recipes.m2_grpo import grader
from verl_recipes.m2_grpo.failures import GroupDrops, TooManyDroppedGroups, drop_invalid_groups


def rollout_output(valid: list[float]) -> DataProto:
    n = len(valid)
    out = DataProto.from_dict(tensors={"response_mask": torch.ones(n, 3, dtype=torch.long)})
    out.non_tensor_batch["reward_valid"] = np.array(valid)
    return out


def test_a_group_with_an_ungraded_sample_is_masked_out_and_counted():
    out = rollout_output([1.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    drops = GroupDrops(batch_size=3, max_fraction=0.5)
    keep = drop_invalid_groups(out, ["a", "a", "b", "b", "c", "c"], drops)
    assert keep.tolist() == [False, False, True, True, True, True]
    assert out.batch["response_mask"].sum(-1).tolist() == [0, 0, 3, 3, 3, 3]
    assert drops.metrics()["m2/dropped_groups"] == 1 and drops.metrics()["m2/invalid_samples"] == 1
    assert drops.metrics()["m2/dropped_group_fraction"] == pytest.approx(1 / 3)


def test_the_run_stops_when_a_step_drops_too_many_groups():
    drops = GroupDrops(batch_size=4, max_fraction=0.25)
    drops.add(invalid_reward=1)  # 1 <= 0.25 x 4
    with pytest.raises(TooManyDroppedGroups, match="2 GRPO groups dropped.*max_dropped_group_fraction=0.25"):
        drops.add(failed_rollout=1)


@pytest.fixture
def grader_down():
    """The simulated grader answering every call with HTTP 500; retries kept short."""
    with SimServer(latency_s=0.0, error_rate=1.0, faults=["http_500"]) as srv:
        engine = grader.configure(OpenAIChat(srv.base_url, "sim-grader", max_retries=0), grader_id="sim-grader", cache=False)
        engine.retry_delay, engine.max_attempts = 0, 2
        yield srv
    grader.reset()


def reward_worker(cfg):
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    from verl_recipes.m2_grpo.failures import InProcessActor

    worker = RewardLoopWorker(cfg)
    return worker, [InProcessActor(worker)]


def batch_dict(rows, cfg, tokenizer, tmp_path, uids):
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    from verl_recipes.m2_grpo import data

    folder = tmp_path / uids[0]
    paths = data.write(data.Export(train=rows, val=rows[:1]), folder)
    dataset = RLHFDataset([str(paths["train"])], tokenizer, cfg.data)
    out = collate_fn([dataset[i] for i in range(len(rows))])
    out["uid"] = np.array(uids, dtype=object)
    return out


@pytest.mark.slow
def test_legacy_manager_drops_groups_the_grader_could_not_grade(grader_down, tmp_path):
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    from verl_recipes.m2_grpo.failures import InProcessActor, M2AgentLoopManager

    rows = exported_rows(("medqa", "healthbench"))
    batch_rows = [rows["m2bench/healthbench"][0], rows["m2bench/medqa"][0]]

    async def run(fraction):
        cfg = cpu_config("data.train_batch_size=2", "actor_rollout_ref.rollout.n=2", f"m2.max_dropped_group_fraction={fraction}")
        worker, handles = reward_worker(cfg)
        server = ScriptedServer(worker.input_tokenizer, scripted_reply([]))
        manager = M2AgentLoopManager(cfg, server, None, handles)
        manager.agent_loop_workers = [InProcessActor(AgentLoopWorker(cfg, server, None, handles))]
        prompts = DataProto.from_single_dict(batch_dict(batch_rows, cfg, worker.input_tokenizer, tmp_path, ["hb", "mq"]))
        return await manager.generate_sequences(prompts.repeat(repeat_times=2, interleave=True))

    out = asyncio.run(run(0.5))
    assert out.non_tensor_batch["reward_valid"].tolist() == [0.0, 0.0, 1.0, 1.0]  # grader down; MedQA needs none
    assert (out.batch["response_mask"][:2] == 0).all() and (out.batch["response_mask"][2:].sum(-1) > 0).all()
    assert out.meta_info["timing"]["m2/dropped_groups"] == 1 and out.meta_info["timing"]["m2/invalid_samples"] == 2
    assert grader_down.stats()["faults"]["http_500"] > 0  # the outage really was inside the reward loop
    with pytest.raises(TooManyDroppedGroups):
        asyncio.run(run(0.2))


@pytest.mark.slow
def test_v1_replay_buffer_drops_refills_counts_and_stops(grader_down, tmp_path, monkeypatch):
    from verl.utils import tensordict_utils as tu

    fake_tq = install_fake_transfer_queue(monkeypatch)
    from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopWorkerTQ

    from verl_recipes.m2_grpo.sampler import M2ReplayBuffer

    rows = exported_rows(("medqa", "healthbench"))
    medqa = rows["m2bench/medqa"]
    first = [rows["m2bench/healthbench"][0], medqa[0], medqa[1]]  # grader down / rollout raises / fine
    refills = iter(medqa[2:])

    def run(fraction):
        cfg = cpu_config("data.train_batch_size=3", "actor_rollout_ref.rollout.n=2", f"m2.max_dropped_group_fraction={fraction}")
        fake_tq.tags.clear()
        fake_tq.values.clear()
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()

        async def setup():
            worker, handles = reward_worker(cfg)
            server = ScriptedServer(worker.input_tokenizer, scripted_reply([medqa[0]]))
            return AgentLoopWorkerTQ.__ray_metadata__.modified_class(cfg, server, None, handles)

        agent_worker = asyncio.run_coroutine_threadsafe(setup(), loop).result()
        counter = iter(range(1000))

        def submit(batch_rows):  # what the V1 trainer's _submit_batch_to_rollout does
            uids = [f"u{next(counter)}" for _ in batch_rows]
            batch = tu.get_tensordict(batch_dict(batch_rows, cfg, agent_worker.tokenizer, tmp_path, uids))
            tu.assign_non_tensor_data(batch, "global_steps", 1)
            fake_tq.kv_batch_put(uids, "train", tags=[{"is_prompt": True, "status": "pending", "global_steps": 1}] * len(uids))
            asyncio.run_coroutine_threadsafe(agent_worker.generate_sequences(batch), loop).result()
            return uids

        uids = submit(first)
        buffer = M2ReplayBuffer(
            "sync",
            {},
            None,
            "drop",
            sampler_kwargs=cfg.trainer.v1.sampler.sampler_kwargs,
            refill_fn=lambda k: len(submit([next(refills) for _ in range(k)])),
            poll_interval=0.05,
        )
        try:
            return uids, buffer.sample(global_steps=1, partition_id="train", batch_size=3)
        finally:
            loop.call_soon_threadsafe(loop.stop)

    uids, (batch, metrics) = run(0.7)
    groups = {key.split("_")[0] for key in batch.keys}
    assert len(groups) == 3 and uids[0] not in groups and uids[1] not in groups and uids[2] in groups
    assert metrics["training/m2/dropped_groups_invalid_reward"] == 1  # the HealthBench group: grader down
    assert metrics["training/m2/dropped_groups_failed_rollout"] == 1  # the session that raised
    assert metrics["training/m2/dropped_groups"] == 2 and metrics["training/m2/invalid_samples"] == 2
    values = fake_tq.values["train"]
    assert all(values[k]["extra_fields"]["reward_extra_info"]["reward_valid"] == 1.0 for k in batch.keys)
    with pytest.raises(TooManyDroppedGroups, match="2 GRPO groups dropped"):
        run(0.5)
