"""Running the recipe's verl parts on the CPU in tests: the composed CPU config, a scripted rollout
server, exported rows, and an in-memory stand-in for TransferQueue (verl's V1 key-value store, a
GPU-cluster service that cannot start here)."""

from __future__ import annotations

import json
import sys
import types
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from verl.workers.rollout.replica import TokenOutput

from tests.helpers.paths import shared_file


def cpu_config(*overrides: str):
    """The recipe's config as ``--cpu-steps`` composes it (embedded model, small sizes) plus ``overrides``."""
    from verl_recipes.m2_grpo import cpu_steps, launch

    args = [*cpu_steps.CPU_DEFAULTS, f"actor_rollout_ref.model.path={cpu_steps.embedded_model_dir()}", *overrides]
    cfg = launch.compose(args)
    args, _ = launch.data_overrides(cfg, args)
    return launch.compose(args)


def exported_rows(sources=("medqa", "healthbench", "consultation")) -> dict[str, list[dict]]:
    """Exported training rows by data source (shortest prompts first)."""
    from verl_recipes.m2_grpo import data

    files = {
        "medqa": ("medqa", "phrases_no_exclude_dev.jsonl"),
        "healthbench": ("healthbench", "oss_eval_sample500.jsonl"),
        "consultation": ("agentclinic", "agentclinic_medqa_extended.jsonl"),
    }
    for source in sources:
        shared_file(*files[source])
    rows: dict[str, list[dict]] = defaultdict(list)
    for r in data.build(list(sources), val_fraction=0.1).train:
        rows[r["data_source"]].append(r)
    return {k: sorted(v, key=lambda r: len(json.dumps(r["prompt"]))) for k, v in rows.items()}


class ScriptedServer:
    """verl's rollout server interface: replies ``reply(prompt text)`` as tokens; raises when it says so."""

    def __init__(self, tokenizer, reply):
        self.tokenizer, self.reply = tokenizer, reply

    async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs):
        text = self.reply(self.tokenizer.decode(prompt_ids))
        if isinstance(text, Exception):
            raise text
        ids = self.tokenizer.encode(text, add_special_tokens=False) + [self.tokenizer.eos_token_id]
        return TokenOutput(token_ids=ids, log_probs=[-0.5] * len(ids), stop_reason="completed", extra_fields={"global_steps": 1})


@dataclass
class KVBatchMeta:
    partition_id: str
    keys: list[str]
    tags: list[dict]
    extra_info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.keys)


class FakeTransferQueue(types.ModuleType):
    """The slice of TransferQueue's key-value API that verl's V1 agent loop worker and replay buffer use."""

    def __init__(self):
        super().__init__("transfer_queue")
        self.KVBatchMeta = KVBatchMeta
        self.tags: dict[str, dict[str, dict]] = defaultdict(dict)
        self.values: dict[str, dict[str, dict]] = defaultdict(dict)

    def init(self, conf=None):
        return None

    def close(self):
        return None

    def _put(self, partition_id, key, tag=None, value=None):
        self.tags[partition_id].setdefault(key, {}).update(tag or {})
        if value is not None:
            self.values[partition_id].setdefault(key, {}).update(value)

    def kv_put(self, key, partition_id, fields=None, tag=None):
        self._put(partition_id, key, tag)

    def kv_batch_put(self, keys, partition_id, fields=None, tags=None):
        for key, tag in zip(keys, tags or [{}] * len(keys)):
            self._put(partition_id, key, tag)

    async def async_kv_put(self, key, partition_id, fields=None, tag=None):
        self._put(partition_id, key, tag)

    async def async_kv_batch_put(self, keys, fields, tags, partition_id):
        extra = fields.get("extra_fields")
        extra = extra.tolist() if hasattr(extra, "tolist") else list(extra)
        for key, tag, value in zip(keys, tags, extra):
            self._put(partition_id, key, tag, {"extra_fields": value})

    def kv_list(self, partition_id=None):
        return {p: dict(t) for p, t in self.tags.items() if partition_id in (None, p)}

    def kv_batch_get(self, keys, partition_id, select_fields=None):
        return {name: [self.values[partition_id][k][name] for k in keys] for name in select_fields or ["extra_fields"]}

    def kv_clear(self, keys, partition_id):
        for key in [keys] if isinstance(keys, str) else keys:
            self.tags[partition_id].pop(key, None)
            self.values[partition_id].pop(key, None)


def install_fake_transfer_queue(monkeypatch) -> FakeTransferQueue:
    fake = FakeTransferQueue()
    monkeypatch.setitem(sys.modules, "transfer_queue", fake)
    for name in (
        "verl.trainer.ppo.v1",
        "verl.trainer.ppo.v1.agent_loop_tq",
        "verl.trainer.ppo.v1.replay_buffer",
        "verl_recipes.m2_grpo.sampler",
    ):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return fake


def prompt_text(row: dict) -> str:
    return row["prompt"][-1]["content"]


def any_of(text: str, rows: list[dict]) -> bool:
    return any(prompt_text(r)[:200] in text for r in rows)


def scripted_reply(raise_for: list[dict]) -> Any:
    """A doctor/answerer that answers MedQA with a letter and raises for the prompts of ``raise_for``."""

    def reply(text: str):
        if any_of(text, raise_for):
            return RuntimeError("scripted rollout failure")
        return "The answer is clear.\nANSWER: A"

    return reply
