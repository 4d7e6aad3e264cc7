"""``python -m verl_recipes.m2_grpo --cpu-steps N``: N real GRPO steps on the CPU with verl's own parts.

verl 0.9.1 has no CPU rollout engine and no CPU FSDP engine, so those two are replaced; everything
else is verl's, driven by the recipe's own composed config (config/m2_grpo.yaml + stage + overrides):
- data: the exported parquet read by verl's ``RLHFDataset`` and ``collate_fn``;
- rollout: ``failures.M2AgentLoopManager`` (verl's ``AgentLoopManager`` + the recipe's group drops)
  over verl's ``AgentLoopWorker``, which runs verl's ``SingleTurnAgentLoop`` for MedQA/HealthBench rows
  and the recipe's ``m2_consultation`` loop (patient simulator) for consultation rows, generating
  through ``CPUGenerationServer`` (verl's rollout-server interface over the policy's transformers
  weights) instead of vLLM;
- reward: verl's ``RewardLoopWorker`` loading the configured reward manager (``M2RewardManager``,
  verl's dapo manager: overlong penalty) and our ``compute_score`` with the configured reward kwargs,
  called in this process (``InProcessActor``) instead of as a Ray actor;
- advantage: verl's ``compute_advantage`` (GRPO: ``compute_grpo_outcome_advantage``);
- loss: verl's policy loss (``get_policy_loss_fn``; clip-higher, dual-clip ``clip_ratio_c``,
  token-mean from the actor config), verl's optimizer builder, gradient clipping at ``optim.clip_grad``,
  PPO mini-batches and epochs as configured; the optimizer steps the policy's weights (float32, CPU).
The policy is the embedded model (SmolLM2-135M-Instruct, de-quantised from its GGUF file), loaded as
a separate trainable copy; a frozen copy of the initial weights gives the KL to the initial policy.
Without grader/patient endpoints the simulated server grades and plays the patient: those rewards
are then a plumbing check (MedQA rewards still come from the real answer checker).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.data import cache_dir
from harness.errors import M2BenchError
from harness.local_model import GGUF_FILE, MODEL_DESCRIPTION, weights_dir

CPU_DEFAULTS = [  # the CPU run's sizes; any user override given after them wins
    "stage=stage3_consultation",
    "m2.data=[medqa,healthbench,consultation]",
    "data.train_batch_size=3",
    "actor_rollout_ref.rollout.n=4",
    "actor_rollout_ref.actor.ppo_mini_batch_size=1",
    "data.max_prompt_length=768",
    "data.max_response_length=32",
    "reward.reward_kwargs.overlong_buffer_cfg.len=16",
    "actor_rollout_ref.rollout.multi_turn.max_assistant_turns=2",
    "actor_rollout_ref.rollout.calculate_log_probs=true",
    "actor_rollout_ref.rollout.agent.num_workers=1",
    "actor_rollout_ref.actor.optim.lr=1e-5",
    "reward.num_workers=1",
    "trainer.n_gpus_per_node=1",
]
SIM_NOTE = (
    "no grader/patient endpoint given: the simulated OpenAI-compatible server (harness.tools.sim_server) grades "
    "and plays the patient, so HealthBench and consultation rewards are a plumbing check, not a measurement "
    "(its verdicts depend only on the criterion text); MedQA rewards come from the real answer checker"
)


def embedded_model_dir() -> Path:
    """The embedded model in Hugging Face format (config, tokenizer, float32 weights): what verl's
    workers load by path. ``harness.local_weights`` caches it once de-quantised from the GGUF file;
    where that cache cannot be written, a folder with the config and tokenizer alone is written here."""
    from harness import local_weights

    folder = local_weights.load().folder
    if folder is not None:
        return folder
    folder = cache_dir() / "models" / "smollm2-135m-instruct-hf"
    if not (folder / "config.json").is_file():
        from transformers import AutoConfig, AutoTokenizer
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        folder.mkdir(parents=True, exist_ok=True)
        AutoTokenizer.from_pretrained(weights_dir(), gguf_file=GGUF_FILE).save_pretrained(folder)
        config = AutoConfig.from_pretrained(weights_dir(), gguf_file=GGUF_FILE)
        config.architectures = [MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[config.model_type]]  # the GGUF file does not name it
        config.save_pretrained(folder)
    return folder


def load_policy() -> Any:
    """A trainable float32 copy of the embedded model (its own parameters, not the shared model's)."""
    from transformers import AutoModelForCausalLM

    folder = embedded_model_dir()
    if (folder / "model.safetensors").is_file():
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    else:  # no weight cache: de-quantise the GGUF file
        from harness import local_weights

        model = local_weights.load_gguf()[1]
    model.config.use_cache = True
    return model


class CPUGenerationServer:
    """verl's rollout server interface (``generate(...) -> TokenOutput``) over the policy on the CPU.

    Requests that arrive together are served together: those with the same prompt share one
    prefill (a GRPO group's n rollouts) and decode as one batch. Each request samples from its own
    random generator, seeded from the prompt tokens and how often that exact prompt was seen, so
    a run is repeatable whatever order the agent loops arrive in. Temperature, top_p and top_k
    follow the request; log-probs are those of the model's distribution (temperature 1).
    """

    def __init__(self, model: Any, tokenizer: Any, response_length: int, seed: int = 0):
        self.model, self.tokenizer, self.response_length, self.seed = model, tokenizer, response_length, seed
        self.max_context = int(getattr(model.config, "max_position_embeddings", 8192))
        self.global_steps = 0
        self.seen: Counter[str] = Counter()
        self.calls = self.tokens = 0
        self._pending: list[tuple[list[int], dict[str, Any], asyncio.Future]] = []
        self._serving = False

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any], **kwargs: Any):
        future = asyncio.get_running_loop().create_future()
        self._pending.append((list(prompt_ids), dict(sampling_params), future))
        if not self._serving:
            self._serving = True
            asyncio.ensure_future(self._serve())
        return await future

    async def _serve(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0.01)  # let the requests of concurrent agent loops arrive
                waiting, self._pending = self._pending, []
                groups: dict[str, list[tuple[list[int], dict[str, Any], asyncio.Future]]] = {}
                for request in waiting:
                    groups.setdefault(json.dumps([request[0], sorted(request[1].items())]), []).append(request)
                for group in groups.values():
                    try:
                        outputs = await asyncio.to_thread(self._generate_group, group[0][0], group[0][1], len(group))
                    except Exception as exc:  # the requests fail, as a rollout server's would
                        for *_, future in group:
                            future.set_exception(exc)
                        continue
                    for (*_, future), output in zip(group, outputs):
                        future.set_result(output)
        finally:
            self._serving = False

    def _generator(self, prompt_ids: list[int]) -> torch.Generator:
        key = hashlib.sha256(json.dumps(prompt_ids).encode()).hexdigest()
        occurrence = self.seen[key]
        self.seen[key] += 1
        digest = hashlib.sha256(f"{self.seed}:{self.global_steps}:{key}:{occurrence}".encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") % 2**63)

    def _generate_group(self, prompt_ids: list[int], params: dict[str, Any], count: int) -> list[Any]:
        from verl.workers.rollout.replica import TokenOutput

        generators = [self._generator(prompt_ids) for _ in range(count)]
        eos = self.tokenizer.eos_token_id
        limit = min(int(params.get("max_tokens") or self.response_length), self.max_context - len(prompt_ids))
        temperature = float(params.get("temperature", 1.0))
        top_p, top_k = float(params.get("top_p", 1.0)), int(params.get("top_k", -1))
        tokens: list[list[int]] = [[] for _ in range(count)]
        logprobs: list[list[float]] = [[] for _ in range(count)]
        done = [False] * count
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([prompt_ids]), use_cache=True, logits_to_keep=1) if limit > 0 else None
            if out is not None:
                cache = out.past_key_values
                cache.batch_repeat_interleave(count)
                logits = out.logits[:, -1].float().expand(count, -1)
            position = len(prompt_ids)
            for _ in range(max(limit, 0)):
                log_p = torch.log_softmax(logits, -1)
                step = []
                for i in range(count):
                    token = eos if done[i] else sample_token(logits[i], temperature, top_p, top_k, generators[i])
                    step.append(token)
                    if not done[i]:
                        tokens[i].append(token)
                        logprobs[i].append(float(log_p[i, token]))
                        done[i] = token == eos
                if all(done):
                    break
                out = self.model(
                    input_ids=torch.tensor(step)[:, None],
                    position_ids=torch.full((count, 1), position),
                    past_key_values=cache,
                    use_cache=True,
                )
                cache, logits, position = out.past_key_values, out.logits[:, -1].float(), position + 1
        self.model.train(was_training)
        self.calls += count
        self.tokens += sum(map(len, tokens))
        return [
            TokenOutput(
                token_ids=ids,
                log_probs=lp if params.get("logprobs") else None,
                stop_reason="completed" if ids and ids[-1] == eos else "length",
                num_preempted=0,
                extra_fields={"global_steps": self.global_steps},
            )
            for ids, lp in zip(tokens, logprobs)
        ]


def sample_token(logits: torch.Tensor, temperature: float, top_p: float, top_k: int, generator: torch.Generator) -> int:
    """One token from ``logits`` (vocabulary,) with vLLM's sampling parameters; temperature 0 is greedy."""
    if temperature <= 0:
        return int(logits.argmax())
    scaled = logits / temperature
    if top_k > 0:
        kth = torch.topk(scaled, top_k).values[-1]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, -1)
    if top_p < 1.0:
        ordered, order = torch.sort(probs, descending=True)
        drop = torch.cumsum(ordered, -1) - ordered > top_p
        probs = probs.scatter(0, order, ordered.masked_fill(drop, 0.0))
    return int(torch.multinomial(probs, 1, generator=generator))


def response_log_probs(model: Any, batch: Any, rows: list[int], temperature: float = 1.0) -> torch.Tensor:
    """Per-token log-probabilities of the response tokens, shape (len(rows), response width), zero
    past each response (verl's layout: left-padded prompt, right-padded response). Rows with the
    same prompt (a GRPO group) share one prompt forward pass; only response positions get logits.
    Differentiable when called with gradients enabled."""
    from verl.utils.torch_functional import logprobs_from_logits

    responses, attention = batch.batch["responses"], batch.batch["attention_mask"]
    width, prompt_width = responses.shape[1], batch.batch["prompts"].shape[1]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i in rows:
        prompt = batch.batch["prompts"][i][attention[i, :prompt_width].bool()]
        groups.setdefault(tuple(prompt.tolist()), []).append(i)
    result: dict[int, torch.Tensor] = {}
    for prompt, members in groups.items():
        lengths = [int(attention[i, prompt_width:].sum()) for i in members]
        longest = max(lengths)
        out = model(input_ids=torch.tensor([prompt]), use_cache=True, logits_to_keep=1)
        first = out.logits[:, -1]
        if longest > 1:
            cache = out.past_key_values
            cache.batch_repeat_interleave(len(members))
            ids = responses[members, : longest - 1]
            mask = torch.cat(
                [
                    torch.ones(len(members), len(prompt), dtype=torch.long),
                    attention[members, prompt_width : prompt_width + longest - 1],
                ],
                1,
            )
            positions = torch.arange(len(prompt), len(prompt) + longest - 1).expand(len(members), -1)
            rest = model(
                input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=False
            ).logits
            logits = torch.cat([first.expand(len(members), -1)[:, None], rest], 1)
        else:
            logits = first.expand(len(members), -1)[:, None]
        lp = logprobs_from_logits(logits / temperature, responses[members, :longest])
        for row, (i, n) in enumerate(zip(members, lengths)):
            result[i] = torch.cat([lp[row, :n], lp.new_zeros(width - n)])
    return torch.stack([result[i] for i in rows])


@dataclass
class StepRecord:
    """One step's batch and numbers (the tests read the tensors; the report the metrics)."""

    step: int
    metrics: dict[str, float]
    advantages: torch.Tensor  # (rows, response width), 0 outside the response mask
    response_mask: torch.Tensor
    log_probs_before: torch.Tensor  # the policy before this step's update, on this step's batch
    log_probs_after: torch.Tensor  # the policy after it, on the same batch
    data_sources: list[str]


@dataclass
class CPURun:
    steps: list[StepRecord] = field(default_factory=list)
    sim_grader: bool = False
    config_lines: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    policy: Any = None  # the trained weights


def select_rows(rows: list[dict], count: int, tokenizer: Any, max_prompt_length: int) -> list[dict]:
    """``count`` rows, sources interleaved (one of each in turn), prompts that fit ``max_prompt_length``."""
    by_source: dict[str, list[dict]] = {}
    for r in rows:
        ids = tokenizer.apply_chat_template(list(r["prompt"]), add_generation_prompt=True, tokenize=True)
        if len(ids["input_ids"] if hasattr(ids, "keys") else ids) <= max_prompt_length:
            by_source.setdefault(r["data_source"], []).append(r)
    pools = [by_source[s] for s in sorted(by_source)]
    if not pools:
        raise M2BenchError(f"no exported row has a prompt of at most data.max_prompt_length={max_prompt_length} tokens")
    picked = [pools[i % len(pools)][i // len(pools)] for i in range(count) if i // len(pools) < len(pools[i % len(pools)])]
    if len(picked) < count:
        raise M2BenchError(f"only {len(picked)} rows fit data.max_prompt_length={max_prompt_length}; {count} needed")
    return picked


def gen_batch_of(batch: Any) -> Any:
    """What verl's legacy trainer sends to the rollout (``RayPPOTrainer._get_gen_batch``): all fields,
    the reward fields staying in the training batch too."""
    reward_keys = {"data_source", "reward_model", "extra_info", "uid"} & batch.non_tensor_batch.keys()
    gen = batch.pop(batch_keys=[], non_tensor_batch_keys=list(set(batch.non_tensor_batch) - reward_keys))
    gen.non_tensor_batch.update(batch.non_tensor_batch)
    return gen


async def run_steps(cfg: Any, steps: int, rows: list[dict], work_dir: Path, sim_grader: bool = False, seed: int = 0) -> CPURun:
    """``steps`` GRPO steps on ``rows`` (exported verl rows) with the composed config ``cfg``."""
    import copy

    from omegaconf import OmegaConf, open_dict
    from verl import DataProto
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
    from verl.trainer.ppo import core_algos
    from verl.trainer.ppo.metric_utils import compute_data_metrics
    from verl.trainer.ppo.ray_trainer import compute_advantage
    from verl.utils.config import omega_conf_to_dataclass
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn
    from verl.workers.config.optimizer import build_optimizer

    from verl_recipes.m2_grpo import data
    from verl_recipes.m2_grpo.failures import InProcessActor, M2AgentLoopManager

    started = time.perf_counter()
    torch.manual_seed(seed)
    n = int(cfg.actor_rollout_ref.rollout.n)
    batch_size = int(cfg.data.train_batch_size)
    mini = int(cfg.actor_rollout_ref.actor.ppo_mini_batch_size)
    if batch_size % mini:
        raise M2BenchError(f"data.train_batch_size={batch_size} must be a multiple of actor.ppo_mini_batch_size={mini}")
    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    actor.global_batch_info.update(dp_size=1, batch_num_tokens=None, global_batch_size=None)
    loss_fn = core_algos.get_policy_loss_fn(actor.policy_loss.loss_mode)
    temperature = float(cfg.actor_rollout_ref.rollout.temperature)

    policy = load_policy()
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    optimizer = build_optimizer(policy.parameters(), omega_conf_to_dataclass(cfg.actor_rollout_ref.actor.optim))

    reward_worker = RewardLoopWorker(cfg)
    tokenizer = reward_worker.input_tokenizer
    server = CPUGenerationServer(policy, tokenizer, int(cfg.actor_rollout_ref.rollout.response_length), seed)
    worker = AgentLoopWorker(cfg, server, None, [InProcessActor(reward_worker)])
    manager = M2AgentLoopManager(cfg, server, None, [InProcessActor(reward_worker)])
    manager.agent_loop_workers = [InProcessActor(worker)]

    picked = select_rows(rows, steps * batch_size, tokenizer, int(cfg.data.max_prompt_length))
    parquet = data.write(data.Export(train=picked, val=picked[:1], manifest={"cpu_steps": True}), work_dir)["train"]
    data_cfg = copy.deepcopy(cfg.data)
    with open_dict(data_cfg):
        data_cfg.filter_overlong_prompts = False  # select_rows already kept prompts that fit
    dataset = RLHFDataset([str(parquet)], tokenizer, data_cfg)

    run = CPURun(sim_grader=sim_grader, config_lines=OmegaConf.to_yaml(cfg, resolve=True).splitlines())
    for step in range(1, steps + 1):
        metrics: dict[str, float] = {"step": float(step)}
        server.global_steps = step
        t0 = time.perf_counter()
        batch = DataProto.from_single_dict(collate_fn([dataset[i] for i in range((step - 1) * batch_size, step * batch_size)]))
        batch.non_tensor_batch["uid"] = np.array([f"step{step}-prompt{i}" for i in range(len(batch))], dtype=object)
        gen = gen_batch_of(batch)
        gen.meta_info["global_steps"] = step
        output = await manager.generate_sequences(gen.repeat(repeat_times=n, interleave=True))
        metrics.update({k: float(v) for k, v in output.meta_info.pop("timing", {}).items() if k.startswith("m2/")})
        batch = batch.repeat(repeat_times=n, interleave=True).union(output)
        metrics["timing_s/gen_and_reward"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        rows_all = list(range(len(batch)))
        with torch.no_grad():
            policy.eval()
            old = response_log_probs(policy, batch, rows_all, temperature)
            ref = response_log_probs(reference, batch, rows_all, temperature)
        mask = batch.batch["response_mask"].float()
        batch.batch["old_log_probs"] = old
        batch.batch["token_level_scores"] = batch.batch["rm_scores"]
        batch.batch["token_level_rewards"] = batch.batch["rm_scores"]
        batch = compute_advantage(
            batch,
            adv_estimator=cfg.algorithm.adv_estimator,
            gamma=cfg.algorithm.gamma,
            lam=cfg.algorithm.lam,
            num_repeat=n,
            norm_adv_by_std_in_grpo=cfg.algorithm.norm_adv_by_std_in_grpo,
            config=cfg.algorithm,
        )
        if "rollout_log_probs" in batch.batch and mask.sum() > 0:
            diff = (batch.batch["rollout_log_probs"] - old).abs()
            metrics["rollout_vs_recomputed_log_prob_abs_diff"] = float((diff * mask).sum() / mask.sum())

        policy.train()
        losses, clipfracs, grad_norms = [], [], []
        for _ in range(int(cfg.actor_rollout_ref.actor.ppo_epochs)):
            for start in range(0, len(batch), mini * n):
                idx = list(range(start, start + mini * n))
                if float(mask[idx].sum()) == 0:
                    continue  # every group of this mini-batch was dropped
                new = response_log_probs(policy, batch, idx, temperature)
                loss, pg = loss_fn(old[idx], new, batch.batch["advantages"][idx], mask[idx], actor.loss_agg_mode, actor)
                if actor.use_kl_loss:
                    kl = core_algos.kl_penalty(new, ref[idx], actor.kl_loss_type)
                    loss = loss + core_algos.agg_loss(kl, mask[idx], actor.loss_agg_mode) * actor.kl_loss_coef
                optimizer.zero_grad()
                loss.backward()
                grad_norms.append(float(torch.nn.utils.clip_grad_norm_(policy.parameters(), actor.optim.clip_grad)))
                optimizer.step()
                losses.append(float(loss.detach()))
                clipfracs.append(float(pg["actor/pg_clipfrac"]))
        with torch.no_grad():
            policy.eval()
            after = response_log_probs(policy, batch, rows_all, temperature)
        metrics["timing_s/update"] = time.perf_counter() - t0

        kl_to_initial = core_algos.kl_penalty(after, ref, "low_var_kl")
        valid = np.array([float(v) for v in batch.non_tensor_batch["reward_valid"]])
        overlong = np.array([float(v) for v in batch.non_tensor_batch.get("overlong", np.zeros(len(batch)))])
        scores = batch.batch["token_level_rewards"].sum(-1)
        adv = batch.batch["advantages"][mask.bool()]
        data_metrics = compute_data_metrics(batch=batch, use_critic=False)
        metrics.update(
            {
                "reward/mean": float(scores.mean()),
                "reward/std": float(scores.std()) if len(scores) > 1 else 0.0,
                "reward_valid/mean": float(valid.mean()),
                "response_length/mean": float(data_metrics["response_length/mean"]),
                "overlong/fraction": float(overlong.mean()),
                "advantages/mean": float(adv.mean()) if adv.numel() else 0.0,
                "advantages/std": float(adv.std()) if adv.numel() > 1 else 0.0,
                "advantages/min": float(adv.min()) if adv.numel() else 0.0,
                "advantages/max": float(adv.max()) if adv.numel() else 0.0,
                "actor/pg_loss": float(np.mean(losses)) if losses else math.nan,
                "actor/pg_clipfrac": float(np.mean(clipfracs)) if clipfracs else math.nan,
                "actor/grad_norm": float(np.mean(grad_norms)) if grad_norms else math.nan,
                "actor/updates": float(len(losses)),
                "kl_to_initial/mean": float((kl_to_initial * mask).sum() / mask.sum()) if mask.sum() > 0 else 0.0,
            }
        )
        print(
            f"step {step}/{steps}: reward {metrics['reward/mean']:.3f}, loss {metrics['actor/pg_loss']:.4f}, "
            f"KL to initial {metrics['kl_to_initial/mean']:.2e}, dropped groups {metrics.get('m2/dropped_groups', 0):.0f}",
            flush=True,
        )
        run.steps.append(
            StepRecord(
                step,
                metrics,
                batch.batch["advantages"] * mask,
                mask,
                old,
                after,
                [str(s) for s in batch.non_tensor_batch["data_source"]],
            )
        )
    from verl_recipes.m2_grpo import consultation, grader

    for chat in (grader.engine().grader, consultation.patient_chat()):  # HTTP sessions of this event loop
        if hasattr(chat, "aclose"):
            await chat.aclose()
    run.wall_s = time.perf_counter() - started
    run.policy = policy
    return run


REPORT_COLUMNS = [
    ("reward/mean", "reward mean"),
    ("reward/std", "reward std"),
    ("reward_valid/mean", "valid reward fraction"),
    ("response_length/mean", "response length (tokens)"),
    ("overlong/fraction", "overlong fraction"),
    ("advantages/mean", "advantage mean"),
    ("advantages/std", "advantage std"),
    ("advantages/min", "advantage min"),
    ("advantages/max", "advantage max"),
    ("actor/pg_loss", "policy loss"),
    ("actor/pg_clipfrac", "clip fraction"),
    ("actor/grad_norm", "grad norm"),
    ("kl_to_initial/mean", "KL to initial policy"),
    ("m2/dropped_groups", "dropped groups"),
]


def report_table(run: CPURun) -> str:
    header = "| step | " + " | ".join(label for _, label in REPORT_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(REPORT_COLUMNS) + 1)]
    for rec in run.steps:
        cells = [f"{rec.metrics.get(key, math.nan):.4g}" for key, _ in REPORT_COLUMNS]
        lines.append(f"| {rec.step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_if_changed(path: Path, content: bytes) -> bool:
    """Write only when the bytes differ (committed reports change only when their content does)."""
    if path.is_file() and path.read_bytes() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return True


def write_report(run: CPURun, command: str, out_dir: Path, name: str = "cpu_steps") -> dict[str, Path]:
    """``<name>.md`` (command, setup, per-step table) and ``<name>.png`` (small chart) in ``out_dir``."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    first = run.steps[0] if run.steps else None
    sources = Counter(first.data_sources) if first else Counter()
    md = [
        "# M2 GRPO: real steps on the CPU",
        "",
        f"Command: `{command}`",
        "",
        f"Policy: the embedded model, {MODEL_DESCRIPTION}, float32, trained on the CPU.",
        "Per step: " + ", ".join(f"{v} {k} rollouts" for k, v in sorted(sources.items())) + ".",
        "Parts: verl 0.9.1's RLHFDataset, AgentLoopWorker (SingleTurnAgentLoop and the recipe's m2_consultation loop),"
        " RewardLoopWorker with the recipe's reward manager (dapo overlong penalty), compute_advantage (GRPO),"
        " policy loss (clip-higher, token-mean) and optimizer; a CPU generation server stands in for vLLM.",
        "",
        *([f"**Rewards: {SIM_NOTE}.**", ""] if run.sim_grader else []),
        report_table(run),
        "",
        f"![per-step metrics]({name}.png)",
        "",
    ]
    paths = {"table": out_dir / f"{name}.md", "chart": out_dir / f"{name}.png"}
    write_if_changed(paths["table"], "\n".join(md).encode())
    fig, axes = plt.subplots(1, 3, figsize=(9, 2.6))
    steps = [r.step for r in run.steps]
    for ax, (key, label) in zip(
        axes, [("reward/mean", "reward mean"), ("actor/pg_loss", "policy loss"), ("kl_to_initial/mean", "KL to initial")]
    ):
        ax.plot(steps, [r.metrics.get(key, math.nan) for r in run.steps], marker="o")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_xticks(steps)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
    write_if_changed(paths["chart"], buffer.getvalue())
    return paths
