"""The reward-latency benchmark of the M2 GRPO recipe, run by the harness benchmark runner.

    python -m verl_recipes.m2_grpo.bench [reward_latency ...] [--small] [--check] [--out reports/bench]

It rewards prompts x rollouts HealthBench pairs through ``reward.compute_score`` against the
latency-simulating grader (``harness.tools.sim_server``), twice: first pass and a repeat that the
grading cache should answer, in one event loop with one grader client, as verl's reward loop. The harness
scenarios (``harness.tools.bench``) run here too; ``--check`` over all of them is the documented benchmark.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from harness.cache import GradingCache
from harness.clients import OpenAIChat
from harness.data import resolve
from harness.grading import M2BENCH_PROFILE, criterion_prompt
from harness.healthbench import HealthBenchExample, load_file
from harness.tools.bench import OSS_SAMPLE, SCENARIOS, Size, clients, main, open_connections, response_for
from harness.tools.sim_server import SimProcess
from verl_recipes.m2_grpo import reward


def reward_batch(size: Size) -> list[tuple[HealthBenchExample, str]]:
    """prompts x rollouts (example, response) pairs; 6 distinct responses per prompt, so rollouts
    6 and 7 repeat rollouts 0 and 1 (identical pairs, as GRPO groups often have)."""
    examples = load_file(resolve(OSS_SAMPLE))[: size.prompts]
    distinct = min(6, size.rollouts)
    return [
        (e, f"{response_for(e, 'No reply.')}\n\n(rollout variant {r % distinct})") for e in examples for r in range(size.rollouts)
    ]


_VERL_FIELDS: dict[str, tuple[str, dict]] = {}


def verl_fields(example: HealthBenchExample) -> tuple[str, dict]:
    """(ground truth, extra_info) of a prompt as verl hands them to the reward: JSON strings read from its parquet
    files. Serialised once per prompt, before the timed passes (verl does not serialise them per call)."""
    if example.prompt_id not in _VERL_FIELDS:
        extra = {
            "conversation": json.dumps(example.prompt),
            "example_tags": json.dumps(example.example_tags),
            "item_id": example.prompt_id,
        }
        _VERL_FIELDS[example.prompt_id] = (json.dumps([i.to_dict() for i in example.rubrics]), extra)
    return _VERL_FIELDS[example.prompt_id]


def reward_scorer(grader: OpenAIChat, mode: str, concurrency: int, cache: GradingCache):
    """``score(example, response) -> awaitable`` through the verl reward bridge
    (``reward.compute_score``). Returns (path description, score function, engine)."""
    engine = reward.configure(
        grader, grader_id="sim-grader", mode=mode, max_concurrency=concurrency, cache=cache, healthbench_profile=M2BENCH_PROFILE
    )  # both modes with our prompt, so the two compare like for like

    async def score_bridge(example, response):
        rubric, extra = verl_fields(example)
        result = await reward.compute_score(reward.HEALTHBENCH, response, rubric, extra)
        return result["score"] if result["reward_valid"] else None

    return "verl_recipes.m2_grpo.reward.compute_score (the verl reward bridge), awaited concurrently", score_bridge, engine


def reward_latency(size: Size) -> dict:
    batch = reward_batch(size)
    c = size.reward_concurrency
    path = ""
    figures: dict = {"pairs": len(batch), "distinct_pairs": len({(e.prompt_id, r) for e, r in batch})}
    with SimProcess(latency_s=size.latency_s) as srv, tempfile.TemporaryDirectory() as tmp:

        async def measure() -> str:
            """Everything in one event loop with one grader client, as verl's reward loop runs."""
            async with clients(srv.base_url, c) as (_, grader):
                await open_connections([grader], c)
                # one grader round-trip, measured
                probe = [{"role": "user", "content": criterion_prompt(batch[0][0].prompt, batch[0][1], batch[0][0].rubrics[0])}]
                t0 = time.perf_counter()
                await grader(probe)
                figures["grader_round_trip_s"] = rtt = time.perf_counter() - t0
                for mode in ("batched", "per_criterion"):  # warm-up (first calls of each path), untimed
                    warm = reward_batch(replace(size, prompts=1, rollouts=2))
                    _, score, _ = reward_scorer(grader, mode, c, GradingCache(Path(tmp) / "warm-up.sqlite"))
                    await asyncio.gather(*(score(e, r + " warm-up") for e, r in warm))
                for example, _ in batch:
                    verl_fields(example)  # verl hands the reward serialised fields: serialising them is not timed
                for mode in ("batched", "per_criterion"):
                    cache = GradingCache(Path(tmp) / f"{mode}.sqlite")
                    path, score, engine = reward_scorer(grader, mode, c, cache)
                    passes = []
                    for label in ("first", "repeat"):
                        srv.reset_stats()
                        hits0, misses0, shared0 = cache.hits, cache.misses, engine.shared_in_flight
                        t0 = time.perf_counter()
                        scores = await asyncio.gather(*(score(e, r) for e, r in batch))
                        wall = time.perf_counter() - t0
                        calls = srv.stats()["grader_calls"]
                        bound = rtt * math.ceil(calls / c) if calls else 0.0
                        passes.append(
                            {
                                "pass": label,
                                "wall_time_s": wall,
                                "grader_calls": calls,
                                "cache_hits": cache.hits - hits0,
                                "cache_misses": cache.misses - misses0,
                                "pairs_shared_in_flight": engine.shared_in_flight - shared0,
                                "lower_bound_s": bound,
                                "wall_time_over_lower_bound": wall / bound if bound else None,
                                "failed": sum(s is None for s in scores),
                            }
                        )
                    figures[mode] = passes
                return path

        path = asyncio.run(measure())
    for mode in ("batched", "per_criterion"):
        figures[f"{mode}_wall_time_over_lower_bound"] = figures[mode][0]["wall_time_over_lower_bound"]
    return {
        "config": {
            "batch": f"{size.prompts} prompts x {size.rollouts} rollouts from healthbench/{OSS_SAMPLE.name}; "
            "6 distinct responses per prompt (rollouts 6, 7 repeat 0, 1)",
            "path": path,
            "grader_profile": "m2bench (both modes, so they compare like for like)",
            "latency_s": size.latency_s,
            "concurrency": c,
            "event_loop": "one loop and one grader client for the whole scenario, connections opened before timing",
            "cache": "GradingCache (SQLite file), fresh per mode; 'repeat' rewards the same batch again. cache_hits and "
            "cache_misses count criteria; pairs_shared_in_flight counts (response, rubric) pairs answered by an "
            "identical pair being graded at the same time (single flight in RubricGrader)",
            "lower_bound": "measured grader round-trip x ceil(grader calls / concurrency)",
        },
        "figures": figures,
        "targets": {"batched_wall_time_over_lower_bound": ["<=", 1.3]},
        "notes": ["The target is on the batched reward (the RL setting); per-criterion is reported for comparison."],
    }


RECIPE_SCENARIOS = {**SCENARIOS, "reward_latency": reward_latency}

if __name__ == "__main__":
    sys.exit(main(scenarios=RECIPE_SCENARIOS, prog="python -m verl_recipes.m2_grpo.bench"))
