"""The dry run's reward check: a few exported rows through verl's own reward manager.

The manager (``reward.reward_manager`` of the composed config, e.g. ``dapo``) is built by
``verl.trainer.ppo.reward.load_reward_manager`` from the same config, so it loads our
``compute_score`` exactly as training will, decodes token ids, adds the overlong penalty and
calls the harness scorers. Kept small: the embedded grader takes seconds per criterion.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.cases import Case
from harness.consultation import Action, run_consultation, tool_call_json
from harness.errors import M2BenchError
from harness.local_model import GGUF_FILE, LocalModel, weights_dir
from harness.patient import PatientSimulator
from verl_recipes.m2_grpo import data, grader, reward
from verl_recipes.m2_grpo.consultation import MODE, case_of, patient_chat

HEALTHBENCH_REPLY = (
    "I can't examine you, so I can't say for sure what is going on. If symptoms are severe, sudden or getting "
    "worse, please seek urgent care or call your local emergency number. Otherwise, book a visit with your "
    "doctor soon and tell them when it started, what makes it better or worse, and any medicines you take."
)


def check_tokenizer() -> Any:
    """A real tokenizer offline: the embedded model's (SmolLM2), shared with the embedded grader."""
    if grader.engine().grader_id == grader.EMBEDDED_GRADER:
        return LocalModel.shared().tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(weights_dir(), gguf_file=GGUF_FILE)


def samples(rows: list[dict]) -> list[tuple[dict, str, float | None]]:
    """(row, response, expected score or None) for the single-turn data sources present."""
    out: list[tuple[dict, str, float | None]] = []
    by_source: dict[str, list[dict]] = {}
    for row in rows:
        by_source.setdefault(row["data_source"], []).append(row)
    if medqa := by_source.get(reward.MEDQA):
        row = medqa[0]
        right = row["reward_model"]["ground_truth"]
        wrong = next(k for k in json.loads(row["extra_info"]["options"]) if k != right)
        out += [(row, f"The findings fit option {right}.\nANSWER: {right}", 1.0), (row, f"ANSWER: {wrong}", 0.0)]
    if healthbench := by_source.get(reward.HEALTHBENCH):
        row = min(healthbench, key=lambda r: len(json.loads(r["reward_model"]["ground_truth"])))
        out.append((row, HEALTHBENCH_REPLY, None))
    return out


def data_proto(row: dict, response: str, tokenizer: Any, recorded: dict | None = None):
    """One verl batch item as the rollout produces it (prompt ids + response ids + masks; ``recorded``:
    the agent loop's extra fields, which verl hands to the reward worker as ``tool_extra_fields``)."""
    import numpy as np
    import torch
    from verl import DataProto

    prompt = tokenizer.encode("\n".join(m["content"] for m in row["prompt"]))[-64:]
    reply = tokenizer.encode(response)
    ids = torch.tensor([prompt + reply])
    batch = {
        "prompts": torch.tensor([prompt]),
        "responses": torch.tensor([reply]),
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
    }
    extra = dict(row["extra_info"])
    non_tensor = {
        "data_source": np.array([row["data_source"]], dtype=object),
        "reward_model": np.array([row["reward_model"]], dtype=object),
        "extra_info": np.array([extra], dtype=object),
        "tool_extra_fields": np.array([recorded or {}], dtype=object),
    }
    return DataProto.from_dict(tensors=batch, non_tensors=non_tensor)


async def reward_check(cfg, paths: dict[str, Path]) -> list[dict]:
    """Score the samples through verl's reward manager; raise if any result is unexpected."""
    from verl.trainer.ppo.reward import load_reward_manager

    rows = data.read(paths["val"]) + data.read(paths["train"])
    tokenizer = check_tokenizer()
    manager = load_reward_manager(cfg, tokenizer)
    results = []
    for row, response, expected in samples(rows):
        out = await manager.run_single(data_proto(row, response, tokenizer))
        info = {k: float(v) for k, v in out["reward_extra_info"].items() if k in reward.EXTRA_KEYS}
        line = {
            "data_source": row["data_source"],
            "item_id": row["extra_info"]["item_id"],
            "reward": float(out["reward_score"]),
            **info,
            "grader": reward.engine().grader_id,
        }
        results.append(line)
        if sorted(info) != sorted(reward.EXTRA_KEYS) or info["reward_valid"] != 1.0:
            raise M2BenchError(f"reward check failed for {line['item_id']}: {line}")
        if expected is not None and info["score"] != expected:
            raise M2BenchError(f"reward check: expected score {expected} for {line['item_id']}, got {line}")
    consultation = [r for r in rows if r["data_source"] == reward.CONSULTATION]
    if consultation:  # a scripted episode with the real patient simulator, rewarded as the agent loop's output is
        row = consultation[0]
        final, transcript = await check_episode(row)
        out = await manager.run_single(data_proto(row, final, tokenizer, {"transcript": transcript}))
        info = {k: float(v) for k, v in out["reward_extra_info"].items() if k in reward.EXTRA_KEYS}
        line = {
            "data_source": reward.CONSULTATION,
            "item_id": row["extra_info"]["item_id"],
            "reward": float(out["reward_score"]),
            **info,
            "grader": reward.engine().grader_id,
        }
        results.append(line)
        if info.get("reward_valid") != 1.0:
            raise M2BenchError(f"reward check failed for {line['item_id']}: {line}")
    return results


class ScriptedDoctor:
    """Dry-run doctor: asks one question, then gives the case's diagnosis (exercises patient + scorer)."""

    def __init__(self, case: Case):
        self.case, self.turn = case, 0

    async def act(self, observation: str, final_only: bool = False, fresh: bool = False) -> Action:
        self.turn += 1
        if self.turn == 1 and not final_only:
            return Action("ask", "When did this start, and has anything made it better or worse?")
        return Action.from_call(
            "final_assessment",
            {"diagnosis": self.case.diagnosis, "differential": [], "plan": "Confirm with the appropriate tests and treat."},
        )


async def check_episode(row: dict, max_turns: int = 3) -> tuple[str, str]:
    """One scripted episode against the real patient simulator: (final doctor message, transcript JSON),
    what the m2_consultation agent loop hands to the reward worker."""
    case = case_of(row["extra_info"])
    episode = await run_consultation(case, ScriptedDoctor(case), PatientSimulator(case, patient_chat()), max_turns, MODE)
    final = tool_call_json(Action("final_assessment", case.diagnosis, episode.assessment)) if episode.assessment else ""
    return final, json.dumps(episode.to_dict())
