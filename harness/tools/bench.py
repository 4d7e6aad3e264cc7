"""Performance benchmarks: grading cost, throughput, loading, client overhead, memory, prefix caching, peers.

    python -m harness.tools.bench [SCENARIO ...] [--small] [--repeats 3] [--load 1] [--check] [--out reports/bench]
    python -m harness.tools.bench --table [--out reports/bench]     # the README tables from the reports

The reward-latency scenario belongs to the verl recipe: ``python -m verl_recipes.m2_grpo.bench`` runs
it and all of these through this same runner.

Each timed scenario runs ``--repeats`` times while ``--load`` busy processes of the benchmark's own keep
the machine busy; each writes ``<out>/<scenario>.md`` and ``.json`` (targets with the median of the
runs and every run, the load average of every run, configuration, machine, figures; no date or path,
so a report changes only with its figures). ``--check`` exits 1 with one ``error:`` line naming every
missed target. Model and grader calls go over real HTTP to the latency-simulating server
(``harness.tools.sim_server``, started in a child process), so the figures measure the harness, not a
model. ``--small`` runs a reduced size (tests).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp  # noqa: F401,E402  (imported up front, so no timed run pays for the first import)

from harness.clients import OpenAIChat
from harness.data import read_jsonl, resolve
from harness.errors import ArgumentError
from harness.evalsets import HEALTHBENCH, HEALTHBENCH_SAMPLES
from harness.grading import M2BENCH_PROFILE, OFFICIAL_PROFILE, SCHEDULES, RubricGrader, grader_profile
from harness.healthbench import HealthBenchExample, load_file, load_healthbench
from harness.simple_evals import official_grading, upstream_module
from harness.tools.sim_server import PREFIX_BLOCK, PrefixCache, SimProcess, tokens

HARD_SAMPLE = HEALTHBENCH_SAMPLES["hard"]
OSS_SAMPLE = HEALTHBENCH_SAMPLES["full"]
NOTE_HARD = (
    "The full HealthBench Hard file (1000 rows) is not available offline; the 50-row public sample "
    f"healthbench/{HARD_SAMPLE.name} (random.seed(42) sample of Hard) is used, cycled with distinct prompt_ids "
    "where a scenario needs more rows."
)


@dataclass
class Size:
    cost_examples: int | None  # None = all rows of the Hard sample
    latency_s: float
    concurrencies: tuple[int, ...]
    waves: int  # throughput workload: about this many full rounds of `concurrency` calls
    prompts: int
    rollouts: int
    reward_concurrency: int
    load_rows: int
    repeats: int  # runs of each timed scenario; targets use the median
    memory_rows: tuple[int, int]


FULL = Size(None, 0.3, (8, 32, 128), 20, 64, 8, 128, 5000, 3, (500, 2000))
SMALL = Size(5, 0.05, (4, 16), 3, 4, 4, 16, 1000, 1, (20, 80))


# ---- shared pieces ---------------------------------------------------------------------------
def machine() -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next(ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def hard_examples() -> list[HealthBenchExample]:
    return load_file(resolve(HARD_SAMPLE))


def cycle(examples: Sequence[HealthBenchExample], n: int) -> list[HealthBenchExample]:
    """``n`` examples taken round-robin from ``examples``, with distinct prompt_ids and a distinct
    last message (so repeats are real work: no cache or single-flight sharing between them)."""
    out = []
    for i in range(n):
        e = examples[i % len(examples)]
        copy = i // len(examples)
        prompt = [*e.prompt[:-1], {**e.prompt[-1], "content": e.prompt[-1]["content"] + (f" (copy {copy})" if copy else "")}]
        out.append(replace(e, prompt_id=f"{e.prompt_id}#{i}", prompt=prompt))
    return out


def response_for(example: HealthBenchExample, fallback: str) -> str:
    return example.ideal_completion or fallback


def limited(chat: OpenAIChat, limit: asyncio.Semaphore):
    async def call(messages, json_schema=None):
        async with limit:
            return await chat(messages, json_schema)

    return call


@contextlib.asynccontextmanager
async def clients(base_url: str, concurrency: int) -> AsyncIterator[tuple[OpenAIChat, OpenAIChat]]:
    """The model and grader clients of one event loop (one connection pool each), closed on exit."""
    model = OpenAIChat(base_url, "sim-model", max_retries=2, max_connections=concurrency)
    grader = OpenAIChat(base_url, "sim-grader", max_retries=2, max_connections=concurrency)
    try:
        yield model, grader
    finally:
        await model.aclose()
        await grader.aclose()


# ---- scenario 1: grading cost ----------------------------------------------------------------
def grading_cost(size: Size) -> dict:
    examples = hard_examples()
    if size.cost_examples:
        examples = examples[: size.cost_examples]
    rows = {}
    scores = {}
    with SimProcess(latency_s=0.0) as srv:
        for mode in ("per_criterion", "batched"):
            srv.reset_stats()

            async def run(mode: str = mode) -> list:
                async with clients(srv.base_url, 32) as (_, chat):
                    engine = RubricGrader(chat, grader_id="sim-grader", mode=mode, max_concurrency=32)
                    return await asyncio.gather(
                        *(engine.grade(e.prompt, response_for(e, chat.model), e.rubrics, e.example_tags) for e in examples)
                    )

            grades = asyncio.run(run())
            stats = srv.stats()
            n = len(examples)
            scores[mode] = [g.score for g in grades]
            rows[mode] = {
                "grader_calls": stats["grader_calls"],
                "grader_input_tokens": stats["grader_input_tokens"],
                "grader_input_chars": sum(g.grader_input_chars for g in grades),
                "grader_calls_per_example": stats["grader_calls"] / n,
                "grader_input_tokens_per_example": stats["grader_input_tokens"] / n,
                "errors": sum(len(g.errors) for g in grades),
            }
    per, bat = rows["per_criterion"], rows["batched"]
    figures = {
        "examples": len(examples),
        "criteria": sum(len(e.rubrics) for e in examples),
        "responses_from_ideal_completion": sum(1 for e in examples if e.ideal_completion),
        "per_criterion": per,
        "batched": bat,
        "grader_calls_ratio": bat["grader_calls_per_example"] / per["grader_calls_per_example"],
        "grader_input_tokens_ratio": bat["grader_input_tokens_per_example"] / per["grader_input_tokens_per_example"],
        "grader_input_chars_ratio": bat["grader_input_chars"] / per["grader_input_chars"],
        "scores_identical": scores["per_criterion"] == scores["batched"],
    }
    return {
        "config": {
            "data": f"healthbench/{HARD_SAMPLE.name}",
            "latency_s": 0.0,
            "concurrency": 32,
            "response": "each row's ideal_completion (the canned sim reply where a row has none)",
            "token_count": "regex word tokens (harness.tools.sim_server.count_tokens), grader requests only",
        },
        "figures": figures,
        "targets": {"grader_calls_ratio": ["<=", 0.2], "grader_input_tokens_ratio": ["<=", 1 / 3]},
        "deterministic": True,  # counts, not times
        "notes": [NOTE_HARD],
    }


# ---- scenario 2: throughput ------------------------------------------------------------------
async def full_run(examples, model: OpenAIChat, grader: OpenAIChat, mode: str, concurrency: int) -> list:
    """Model call then grading for every example, at most ``concurrency`` requests in flight."""
    limit = asyncio.Semaphore(concurrency)
    generate, grade = limited(model, limit), limited(grader, limit)
    engine = RubricGrader(grade, grader_id="sim-grader", mode=mode, max_concurrency=concurrency)

    async def one(example):
        response = await generate(example.prompt)
        return (await engine.grade(example.prompt, response, example.rubrics, example.example_tags)).score

    return await asyncio.gather(*(one(e) for e in examples))


async def open_connections(chats: Sequence[OpenAIChat], concurrency: int) -> None:
    """``concurrency`` simultaneous calls per client (untimed), so the timed runs reuse open connections,
    as a long-running evaluation or RL reward loop does."""
    probe = [{"role": "user", "content": "hello"}]
    await asyncio.gather(*(chat(probe) for chat in chats for _ in range(concurrency)))


def throughput(size: Size) -> dict:
    rows = hard_examples()
    mean_items = statistics.mean(len(e.rubrics) for e in rows)
    calls_per_example = {"batched": 2.0, "per_criterion": 1 + mean_items}
    results: dict[str, dict] = {}
    with SimProcess(latency_s=size.latency_s) as srv:
        for c in size.concurrencies:

            async def measure(c: int = c) -> dict:
                runs: dict[str, Any] = {}
                async with clients(srv.base_url, c) as (model, grader):
                    await open_connections([model, grader], c)
                    for mode in ("batched", "per_criterion"):
                        await full_run(rows[:2], model, grader, mode, 2)  # warm-up: first calls of each path
                    for mode in ("batched", "per_criterion"):
                        n = math.ceil(size.waves * c / calls_per_example[mode])
                        srv.reset_stats()
                        cpu0, t0 = time.process_time(), time.perf_counter()
                        scores = await full_run(cycle(rows, n), model, grader, mode, c)
                        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                        stats = srv.stats()
                        bound = stats["calls"] * size.latency_s / c
                        runs[mode] = {
                            "examples": n,
                            "calls": stats["calls"],
                            "wall_time_s": wall,
                            "lower_bound_s": bound,
                            "wall_time_over_lower_bound": wall / bound,
                            "harness_cpu_s": cpu,
                            "harness_cpu_ms_per_call": 1000 * cpu / stats["calls"],
                            "max_concurrent_server": stats["max_concurrent"],
                            "failed_examples": sum(s is None for s in scores),
                        }
                return runs

            results[str(c)] = asyncio.run(measure())
    figures = {
        "wall_time_over_lower_bound": {c: r["batched"]["wall_time_over_lower_bound"] for c, r in results.items()},
        "wall_time_over_lower_bound_per_criterion": {
            c: r["per_criterion"]["wall_time_over_lower_bound"] for c, r in results.items()
        },
        "harness_cpu_ms_per_call": {c: r["per_criterion"]["harness_cpu_ms_per_call"] for c, r in results.items()},
        "by_concurrency": results,
    }
    return {
        "config": {
            "data": f"healthbench/{HARD_SAMPLE.name} (cycled)",
            "latency_s": size.latency_s,
            "concurrencies": list(size.concurrencies),
            "workload": f"ceil({size.waves} x concurrency / calls per example) examples per run, so every run has "
            f"about {size.waves} rounds of calls; mean {mean_items:.2f} criteria per example",
            "grader_profile": "m2bench (both modes, so they compare like for like)",
            "lower_bound": "server-counted calls x latency / concurrency",
            "concurrency": "at most `concurrency` model+grader requests in flight (one shared semaphore); "
            "connections opened before the timed runs, as in a long-running loop",
            "server": "harness.tools.sim_server in a child process",
        },
        "figures": figures,
        "targets": {"wall_time_over_lower_bound": ["<=", 1.2], "wall_time_over_lower_bound_per_criterion": ["<=", 1.2]},
        "notes": [
            NOTE_HARD,
            "harness_cpu = CPU seconds of the benchmark process (client side: harness, aiohttp, "
            "event loop) during the run; the server runs in another process. simple-evals' own grading code "
            "is measured in the peers scenario.",
        ],
    }


# ---- scenario 4: load ------------------------------------------------------------------------
def write_cycled_rows(path: Path, n: int) -> Path:
    """``n`` rows of the public HealthBench sample, repeated with distinct prompt_ids and a distinct last message
    (so no copy shares parsed objects, a cache entry or an in-flight grading with another), as a JSONL file."""
    rows = [obj for _, obj in read_jsonl(resolve(OSS_SAMPLE))]
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            row, copy = rows[i % len(rows)], i // len(rows)
            prompt = [*row["prompt"][:-1], {**row["prompt"][-1], "content": row["prompt"][-1]["content"] + f" (copy {copy})"}]
            out.write(json.dumps({**row, "prompt_id": f"{row['prompt_id']}-{copy}", "prompt": prompt}) + "\n")
    return path


def load(size: Size) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        # the official file name, so load_healthbench also checks the official row count (5000)
        path = write_cycled_rows(Path(tmp) / HEALTHBENCH["full"].name, size.load_rows)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            if size.load_rows == 5000:
                examples = load_healthbench("full", data_file=path)
            else:
                examples = load_file(path)
            times.append(time.perf_counter() - t0)
        file_mb = path.stat().st_size / 1e6
    return {
        "config": {
            "file": f"{size.load_rows} rows: healthbench/{OSS_SAMPLE.name} repeated with distinct prompt_ids, written to a temp file",
            "repeats": 5,
        },
        "figures": {
            "rows": len(examples),
            "file_mb": file_mb,
            "load_s_median": statistics.median(times),
            "load_s_min": min(times),
            "load_s_max": max(times),
        },
        "targets": {"load_s_median": ["<=", 2.0]},
        "notes": [
            "The official 5000-row file is not available offline; timing covers JSON parsing and full "
            "validation (harness.healthbench.load_healthbench, including the official row-count check)."
        ],
    }


# ---- scenario 5: client CPU per call -------------------------------------------------------
def client_overhead(size: Size) -> dict:
    """Client CPU per grader call: harness.clients.OpenAIChat (aiohttp) vs the openai SDK."""
    import httpx
    from openai import AsyncOpenAI, DefaultAsyncHttpxClient

    calls, concurrency = (600, 64) if size is FULL else (60, 8)
    messages = [{"role": "user", "content": "hello " * 200}]

    async def drive(call) -> tuple[float, float]:
        limit = asyncio.Semaphore(concurrency)

        async def one():
            async with limit:
                await call()

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(calls)))
        return (time.process_time() - cpu) / calls * 1000, time.perf_counter() - wall

    with SimProcess(size.latency_s) as srv:

        async def ours():
            chat = OpenAIChat(srv.base_url, "sim-model", max_connections=concurrency)
            result = await drive(lambda: chat(messages))
            await chat.aclose()
            return result

        async def sdk():
            pool = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
            client = AsyncOpenAI(base_url=srv.base_url, api_key="EMPTY", http_client=DefaultAsyncHttpxClient(limits=pool))
            result = await drive(lambda: client.chat.completions.create(model="sim-model", messages=messages))
            await client.close()
            return result

        (ours_ms, ours_wall), (sdk_ms, sdk_wall) = asyncio.run(ours()), asyncio.run(sdk())
    bound = calls * size.latency_s / concurrency
    return {
        "config": {
            "calls": calls,
            "concurrency": concurrency,
            "latency_s": size.latency_s,
            "server": "harness.tools.sim_server in a child process",
        },
        "figures": {
            "client_cpu_ms_per_call": {"openai_chat_aiohttp": ours_ms, "openai_sdk": sdk_ms},
            "wall_time_over_lower_bound": {"openai_chat_aiohttp": ours_wall / bound, "openai_sdk": sdk_wall / bound},
        },
        "notes": ["CPU is this process's CPU time (time.process_time) divided by the number of calls."],
    }


# ---- scenario: memory ------------------------------------------------------------------------
MEMORY_CONCURRENCY = 32
MEMORY_CHILD = (
    "import json, sys; from pathlib import Path; from harness.tools.bench import grade_rows_peak_rss; "
    "print(json.dumps(grade_rows_peak_rss(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))))"
)


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB: VmHWM of /proc/self/status, the high-water mark of the process's
    own memory. (``ru_maxrss`` is not: Linux carries the parent's high-water mark into a child across fork/exec,
    so a child started by a large benchmark process would report the parent's peak.) ``ru_maxrss`` elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def grade_rows_peak_rss(data_file: Path, base_url: str, concurrency: int) -> dict:
    """Run in a fresh process: official per-criterion grading of every row of ``data_file``, all started at once;
    its peak RSS."""
    import gc

    examples = load_file(data_file)
    rows = len(examples)
    gc.collect()
    loaded_mb = peak_rss_mb()

    async def run() -> tuple[int, int, int]:
        async with clients(base_url, concurrency) as (_, grader):
            engine = RubricGrader(grader, grader_id="sim-grader", profile=OFFICIAL_PROFILE, max_concurrency=concurrency)
            grades = await asyncio.gather(
                *(engine.grade(e.prompt, response_for(e, "No reply."), e.rubrics, e.example_tags) for e in examples)
            )
            return engine.max_prompts_alive, sum(g.grader_calls for g in grades), sum(len(g.errors) for g in grades)

    alive, calls, errors = asyncio.run(run())
    peak_mb = peak_rss_mb()
    return {
        "rows": rows,
        "grader_calls": calls,
        "errors": errors,
        "max_prompts_alive": alive,
        "peak_rss_after_loading_rows_mb": loaded_mb,
        "peak_rss_mb": peak_mb,
    }


def memory(size: Size) -> dict:
    small, large = size.memory_rows
    runs = {}
    with SimProcess(latency_s=0.0) as srv, tempfile.TemporaryDirectory() as tmp:
        for rows in (small, large):
            data_file = write_cycled_rows(Path(tmp) / f"rows{rows}.jsonl", rows)
            # a fresh interpreter that imports only this module (not the caller's main module, whose imports would
            # set the peak), so its peak RSS is that of the grading
            child = subprocess.run(
                [sys.executable, "-c", MEMORY_CHILD, str(data_file), srv.base_url, str(MEMORY_CONCURRENCY)],
                cwd=Path(__file__).resolve().parents[2],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[str(rows)] = json.loads(child.stdout.splitlines()[-1])
    growth_kb = (runs[str(large)]["peak_rss_mb"] - runs[str(small)]["peak_rss_mb"]) * 1024 / (large - small)
    return {
        "config": {
            "data": f"healthbench/{OSS_SAMPLE.name} repeated with distinct prompt_ids and last messages, "
            "written to a temp file and parsed in the grading process",
            "grading": f"official (simple_evals) profile, per criterion, concurrency {MEMORY_CONCURRENCY}, every row "
            "started at once (asyncio.gather), response = the row's ideal completion",
            "server": "harness.tools.sim_server in a child process, latency 0",
            "process": "each size in a fresh interpreter importing only harness.tools.bench; peak RSS = VmHWM of that process",
        },
        "figures": {
            "max_prompts_alive": max(r["max_prompts_alive"] for r in runs.values()),
            "peak_rss_growth_kb_per_row": growth_kb,
            "by_rows": runs,
        },
        "targets": {"max_prompts_alive": ["<=", MEMORY_CONCURRENCY]},
        "deterministic": True,  # memory, not time
        "notes": [
            "peak_rss_growth_kb_per_row = (peak RSS at the larger size - at the smaller) / extra rows: what a row costs "
            "while graded (its parsed data, its waiting criterion tasks, its verdicts), prompts excluded, as they are "
            "built only inside the concurrency limit (max_prompts_alive, counted by the engine). The per-criterion "
            "tasks of every started row still wait in memory (one asyncio task per criterion), so RSS still grows "
            "with the rows graded at once; no target is set for that growth.",
        ],
    }


# ---- scenario: prefix caching -----------------------------------------------------------------
PREFIX_CONFIGS = ((OFFICIAL_PROFILE, "per_criterion"), (M2BENCH_PROFILE, "per_criterion"), (M2BENCH_PROFILE, "batched"))
PREFIX_CONCURRENCY = 32


def request_texts(examples: Sequence[HealthBenchExample], profile: str, mode: str) -> list[str]:
    """The text of every grader request (messages joined as the sim server reads them), built by the profile."""
    chosen = grader_profile(profile)
    texts = []
    for e in examples:
        groups = [[item] for item in e.rubrics] if mode == "per_criterion" else [list(e.rubrics)]
        for items in groups:
            texts.append("\n".join(m["content"] for m in chosen.messages(e.prompt, response_for(e, "No reply."), items, False)))
    return texts


def perfect_prefix_reuse(texts: Sequence[str], block: int = 1) -> int:
    """Input tokens left uncached if every request reused the longest prefix any other request had.

    ``block=1``: the number of nodes of the token trie of all requests (sorted, each adds its tokens past its
    common prefix with the previous). ``block=N``: the same for a server that caches whole N-token blocks only
    (vLLM, the sim server): the trie of full blocks (the server's own chained block hashes), plus each request's
    trailing partial block, which no such server reuses."""
    if block > 1:
        chains: set[int] = set()
        tails = 0
        for text in texts:
            toks = tokens(text)
            blocks = PrefixCache.block_hashes("", toks, block)
            chains.update(blocks)
            tails += len(toks) - len(blocks) * block
        return block * len(chains) + tails
    total, previous = 0, ()  # type: tuple[int, tuple[str, ...]]
    for seq in sorted(tuple(tokens(t)) for t in texts):
        common = 0
        for a, b in zip(previous, seq):
            if a != b:
                break
            common += 1
        total += len(seq) - common
        previous = seq
    return total


def prefix_cache(size: Size) -> dict:
    examples = hard_examples()
    if size.cost_examples:
        examples = examples[: size.cost_examples]
    n, c = len(examples), PREFIX_CONCURRENCY
    rows: dict[str, dict] = {}
    with SimProcess(latency_s=size.latency_s) as srv:
        for profile, mode in PREFIX_CONFIGS:
            texts = request_texts(examples, profile, mode)
            bound, block_bound = perfect_prefix_reuse(texts), perfect_prefix_reuse(texts, PREFIX_BLOCK)
            for schedule in SCHEDULES if mode == "per_criterion" else SCHEDULES[:1]:

                async def run(profile: str = profile, mode: str = mode, schedule: str = schedule) -> float:
                    async with clients(srv.base_url, c) as (_, grader):
                        await open_connections([grader], c)
                        srv.reset_stats()  # also empties the server's prefix cache
                        engine = RubricGrader(
                            grader, grader_id="sim-grader", profile=profile, mode=mode, max_concurrency=c, schedule=schedule
                        )
                        t0 = time.perf_counter()
                        await asyncio.gather(
                            *(engine.grade(e.prompt, response_for(e, "No reply."), e.rubrics, e.example_tags) for e in examples)
                        )
                        return time.perf_counter() - t0

                wall = asyncio.run(run())
                stats = srv.stats()
                latency_bound = stats["grader_calls"] * size.latency_s / c
                rows[f"{profile}/{mode}/{schedule}"] = {
                    "grader_calls": stats["grader_calls"],
                    "input_tokens_per_example": stats["grader_input_tokens"] / n,
                    "uncached_input_tokens_per_example": stats["grader_uncached_input_tokens"] / n,
                    "perfect_reuse_uncached_per_example": bound / n,
                    "uncached_over_perfect_reuse": stats["grader_uncached_input_tokens"] / bound,
                    "perfect_block_reuse_uncached_per_example": block_bound / n,
                    "uncached_over_perfect_block_reuse": stats["grader_uncached_input_tokens"] / block_bound,
                    "wall_time_s": wall,
                    "latency_bound_s": latency_bound,
                    "wall_time_over_latency_bound": wall / latency_bound,
                }
    per_criterion = [f"{p}/per_criterion/prefix_first" for p in (OFFICIAL_PROFILE, M2BENCH_PROFILE)]
    figures = {
        "uncached_over_perfect_block_reuse_prefix_first": {
            k.split("/")[0]: rows[k]["uncached_over_perfect_block_reuse"] for k in per_criterion
        },
        "uncached_over_perfect_reuse_prefix_first": {
            k.split("/")[0]: rows[k]["uncached_over_perfect_reuse"] for k in per_criterion
        },
        "wall_time_over_latency_bound_prefix_first": {
            k.split("/")[0]: rows[k]["wall_time_over_latency_bound"] for k in per_criterion
        },
        "by_configuration": rows,
    }
    return {
        "config": {
            "data": f"healthbench/{HARD_SAMPLE.name}" + (f" (first {n} rows)" if size.cost_examples else ""),
            "responses": "each row's ideal completion",
            "latency_s": size.latency_s,
            "concurrency": c,
            "server": "harness.tools.sim_server in a child process, prefix cache emptied before each configuration; "
            "a request's blocks become reusable once it has been answered; no prefill time added",
            "schedules": "concurrent (every per-criterion call of an example at once) and prefix_first (one call per "
            "example first, the rest once it has been answered); the requests are byte-identical (unit test)",
            "perfect_reuse": "token-trie size of all grader requests of a configuration: what perfect prefix caching leaves "
            "uncached (computed from the prompts, in sim-server tokens)",
            "perfect_block_reuse": f"the same for a server that caches whole {PREFIX_BLOCK}-token blocks (vLLM's default "
            "block size, as the sim server): the trie of full blocks plus each request's trailing partial block — the "
            "least any client can leave uncached on such a server; the target is set against it",
            "latency_bound": "grader calls x latency / concurrency",
        },
        "figures": figures,
        "targets": {
            "uncached_over_perfect_block_reuse_prefix_first": ["<=", 1.1],
            "wall_time_over_latency_bound_prefix_first": ["<=", 1.2],
        },
        "notes": [
            "The server caches whole 16-token blocks, so each request past the first leaves up to 15 tokens of its shared "
            "prefix uncached; the perfect-reuse bound counts single tokens and no block cache can reach it, so the "
            "target is on the block bound and both ratios are reported.",
            "batched (m2bench) has one call per example and no schedule; it is listed for comparison.",
        ],
    }


# ---- scenario: peers ------------------------------------------------------------------------------
def simple_evals_grading(examples: Sequence[HealthBenchExample], base_url: str, example_threads: int) -> list[float]:
    """simple-evals' own HealthBench grading (``HealthBenchEval.grade_sample`` and its grader sampler as its CLI
    builds it, from the registered reference files) of each example's ideal completion, with its thread pools:
    ``example_threads`` examples at once (its ``n_threads``), each grading its rubric items on
    ``common.map_with_progress``' default pool."""
    upstream_eval = upstream_module("healthbench_eval")
    sampler_module = upstream_module("sampler.chat_completion_sampler")
    common = upstream_module("common")
    reference = official_grading()
    saved = {k: os.environ.get(k) for k in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
    os.environ.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY="EMPTY")
    try:
        grader = sampler_module.ChatCompletionSampler(
            model="sim-grader", system_message=reference.system_message, max_tokens=reference.max_tokens
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    evaluation = upstream_eval.HealthBenchEval.__new__(upstream_eval.HealthBenchEval)  # no data download
    evaluation.grader_model = grader

    def grade(example: HealthBenchExample) -> float:
        items = [upstream_eval.RubricItem.from_dict(item.to_dict()) for item in example.rubrics]
        metrics, _, _ = evaluation.grade_sample(
            list(example.prompt), response_for(example, "No reply."), list(example.example_tags), items
        )
        return metrics["overall_score"]

    try:
        return common.map_with_progress(grade, list(examples), num_threads=example_threads, pbar=False)
    finally:
        grader.client.close()


def peers(size: Size) -> dict:
    examples = hard_examples()
    if size.cost_examples:
        examples = examples[: size.cost_examples]
    c = PREFIX_CONCURRENCY
    cores = os.cpu_count() or 1
    example_threads = max(1, c // min(cores, 10))  # at most c grader calls in flight, as ours
    runs: dict[str, dict] = {}
    scores: dict[str, list] = {}
    with SimProcess(latency_s=size.latency_s) as srv:
        simple_evals_grading(examples[:1], srv.base_url, 1)  # warm-up: imports, first connection (untimed)
        plan = [
            ("simple_evals_code", OFFICIAL_PROFILE, "per_criterion"),
            ("m2bench_official", OFFICIAL_PROFILE, "per_criterion"),
            ("m2bench_batched", M2BENCH_PROFILE, "batched"),
        ]
        for name, profile, mode in plan:
            srv.reset_stats()
            cpu0, t0 = time.process_time(), time.perf_counter()
            if name == "simple_evals_code":
                scores[name] = simple_evals_grading(examples, srv.base_url, example_threads)
            else:

                async def run(profile: str = profile, mode: str = mode) -> list:
                    async with clients(srv.base_url, c) as (_, grader):
                        engine = RubricGrader(grader, grader_id="sim-grader", profile=profile, mode=mode, max_concurrency=c)
                        return await asyncio.gather(
                            *(engine.grade(e.prompt, response_for(e, "No reply."), e.rubrics, e.example_tags) for e in examples)
                        )

                scores[name] = [g.score for g in asyncio.run(run())]
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            stats = srv.stats()
            runs[name] = {
                "wall_time_s": wall,
                "grader_calls": stats["grader_calls"],
                "grader_input_tokens": stats["grader_input_tokens"],
                "client_cpu_ms_per_call": 1000 * cpu / stats["grader_calls"],
                "max_concurrent_server": stats["max_concurrent"],
            }
    base = runs["simple_evals_code"]
    figures = {
        "wall_time_s": {k: r["wall_time_s"] for k, r in runs.items()},
        "wall_time_vs_simple_evals_code": {k: r["wall_time_s"] / base["wall_time_s"] for k, r in runs.items()},
        "grader_calls": {k: r["grader_calls"] for k, r in runs.items()},
        "grader_input_tokens": {k: r["grader_input_tokens"] for k, r in runs.items()},
        "client_cpu_ms_per_call": {k: r["client_cpu_ms_per_call"] for k, r in runs.items()},
        "max_concurrent_server": {k: r["max_concurrent_server"] for k, r in runs.items()},
        "official_scores_identical_to_simple_evals_code": scores["m2bench_official"] == scores["simple_evals_code"],
    }
    return {
        "config": {
            "data": f"healthbench/{HARD_SAMPLE.name}" + (f" (first {len(examples)} rows)" if size.cost_examples else ""),
            "responses": "each row's ideal completion (grading only, no model call)",
            "latency_s": size.latency_s,
            "simple_evals_code": "simple-evals' own HealthBenchEval.grade_sample and ChatCompletionSampler (openai SDK, "
            "sync), imported from $M2BENCH_DATA_DIR/simple_evals via harness.simple_evals.upstream_module; "
            f"{example_threads} example threads x its per-example pool of min(os.cpu_count()={cores}, items) threads, "
            f"so at most {example_threads * min(cores, 10)} calls in flight",
            "m2bench_official": f"harness.grading.RubricGrader, simple_evals profile, per criterion, concurrency {c}",
            "m2bench_batched": f"harness.grading.RubricGrader, m2bench profile, batched, concurrency {c}",
            "server": "harness.tools.sim_server in a child process (the same for all three)",
        },
        "figures": figures,
        "targets": {},
        "notes": [
            "client CPU = CPU seconds of the benchmark process (all its threads) during the run / grader calls; "
            "the server runs in another process.",
            "No target: a side-by-side comparison in one run.",
        ],
    }


SCENARIOS: dict[str, Callable[[Size], dict]] = {
    "grading_cost": grading_cost,
    "throughput": throughput,
    "load": load,
    "client_overhead": client_overhead,
    "memory": memory,
    "prefix_cache": prefix_cache,
    "peers": peers,
}


# ---- runner and reports ------------------------------------------------------------------------
COMPARE = {"<=": lambda value, limit: value <= limit, ">=": lambda value, limit: value >= limit}


@contextlib.contextmanager
def generated_load(processes: int) -> Iterator[str]:
    """``processes`` busy child processes (a pure-Python spin loop) running while the block runs, so the
    figures hold on a busy machine; yields their description for the report."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield f"{processes} busy process(es) (python -c 'while True: pass') during every run" if processes else "none"
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def _median(values: list) -> Any:
    """The median of a list of numbers, or per key of a list of dicts; None when a value is missing."""
    if values and isinstance(values[0], dict):
        return {k: _median([v.get(k) if isinstance(v, dict) else None for v in values]) for k in values[0]}
    if any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in values):
        return None
    return statistics.median(values)


def evaluate_targets(runs: list[dict]) -> dict:
    """Each target of the scenario: its limit, the value measured in each run, their median, and whether it was met."""
    out = {}
    for name, (op, limit) in runs[-1].get("targets", {}).items():
        values = [run["figures"].get(name) for run in runs]
        measured = _median(values)
        parts = measured.values() if isinstance(measured, dict) else [measured]
        met = all(v is not None and COMPARE[op](v, limit) for v in parts)
        out[name] = {"op": op, "limit": limit, "measured": measured, "runs": values, "met": met}
    return out


def missed_targets(scenario: str, targets: dict) -> list[str]:
    """``scenario.target[key] = value (limit op x)`` for each value that missed its target."""
    missed = []
    for name, t in targets.items():
        values = t["measured"].items() if isinstance(t["measured"], dict) else [(None, t["measured"])]
        for key, value in values:
            if value is None or not COMPARE[t["op"]](value, t["limit"]):
                where = f"{scenario}.{name}" + (f"[{key}]" if key is not None else "")
                missed.append(f"{where} = {_fmt(value)} (target {t['op']} {t['limit']:.3g})")
    return missed


def run_scenario(scenario: Callable[[Size], dict], size: Size, repeats: int, load_processes: int) -> dict:
    """The scenario run ``repeats`` times (once when its figures do not depend on timing) under the generated
    load; the result of the last run, with every run's targets and load average."""
    runs = []
    for _ in range(repeats):
        with generated_load(load_processes) as load_note:
            load0 = os.getloadavg()[0]
            result = scenario(size)
            result["load_average_1m"] = {"start": load0, "end": os.getloadavg()[0]}
        runs.append(result)
        if result.get("deterministic") or not result.get("targets"):  # no timing target: one run
            break
    result = dict(runs[-1])
    result["generated_load"] = load_note
    result["runs"] = len(runs)
    result["load_average_1m"] = [run["load_average_1m"] for run in runs]
    result["targets"] = evaluate_targets(runs)
    return result


def write_report(out: Path, scenario: str, result: dict, command: str, small: bool) -> tuple[Path, Path]:
    """``<out>/<scenario>.json`` and ``.md``: no date or path in them, so they change only with their figures."""
    result = {"scenario": scenario, "command": command, "small": small, "machine": machine(), **result}
    out.mkdir(parents=True, exist_ok=True)
    base = out / scenario
    base.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    base.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    return base.with_suffix(".json"), base.with_suffix(".md")


def markdown(result: dict) -> str:
    lines = [f"# Benchmark: {result['scenario']}", "", f"Command: `{result['command']}`", ""]
    lines += ["## Targets", ""]
    runs = result["runs"]
    if result.get("deterministic"):
        lines += ["Measured in 1 run (these figures do not depend on timing).", ""]
    else:
        lines += [f"Measured = median of {runs} run(s)." if runs > 1 else "Measured in 1 run.", ""]
    if result["targets"]:
        lines += ["| target | limit | measured | runs | met |", "| --- | --- | --- | --- | --- |"]
        for name, t in result["targets"].items():
            each = "; ".join(_fmt(v) for v in t["runs"])
            lines.append(
                f"| {name} | {t['op']} {t['limit']:.3g} | {_fmt(t['measured'])} | {each} | {'yes' if t['met'] else '**NO**'} |"
            )
    else:
        lines.append("No target (figures reported for comparison).")
    lines += ["", "## Load", ""]
    lines.append(f"- generated load: {result['generated_load']}")
    for i, load in enumerate(result["load_average_1m"], 1):
        lines.append(f"- run {i}: 1-minute load average {load['start']:.2f} at start, {load['end']:.2f} at end")
    lines += ["", "## Configuration", ""] + [f"- {k}: {v}" for k, v in result["config"].items()]
    lines += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in result["machine"].items()]
    lines += ["", "## Figures (last run)", "", "| figure | value |", "| --- | --- |"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in _flatten(result["figures"])]
    if result.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(lines) + "\n"


def _flatten(obj, prefix: str = ""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list) and obj and isinstance(obj[0], dict):
        for i, v in enumerate(obj):
            yield from _flatten(v, f"{prefix}[{v.get('pass', i)}]")
    else:
        yield prefix, obj


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return str(v)


def _targets_of(result: dict) -> dict:
    """A report's targets in this runner's form; also reads the embedded-model benchmark's (limits, its medians in figures)."""
    out = {}
    for name, target in result.get("targets", {}).items():
        if isinstance(target, dict):
            out[name] = target
        else:
            op, limit = target
            out[name] = {"op": op, "limit": limit, "measured": result["figures"].get(name), "met": result["targets_met"][name]}
    return out


def _loads_of(result: dict) -> list[float]:
    if "load_average_1m" in result:
        return [v for load in result["load_average_1m"] for v in (load["start"], load["end"])]
    machine = result.get("machine", {})
    return [*machine.get("load_average_at_start", []), *machine.get("load_average_at_end", [])]


def summary_table(folder: Path) -> str:
    """The README's performance tables, from the reports in ``folder``: every target, then the peers side by side
    and the prefix-cache figures."""
    reports = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}
    lines = [
        "| scenario | figure | target | measured | met | runs | load average (1 min) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, result in reports.items():
        loads = _loads_of(result)
        load = f"{min(loads):.1f}–{max(loads):.1f}" if loads else "?"
        runs = result["runs"] if isinstance(result.get("runs"), int) else result.get("config", {}).get("repeats", 1)
        for target, t in _targets_of(result).items():
            lines.append(
                f"| [{name}](reports/bench/{name}.md) | {target} | {t['op']} {t['limit']:.3g} | {_fmt(t['measured'])} | "
                f"{'yes' if t['met'] else '**no**'} | {runs} | {load} |"
            )
    if "peers" in reports:
        figures = reports["peers"]["figures"]
        lines += [
            "",
            "| grading of the Hard sample (peers) | wall time s | grader calls | grader input tokens | client CPU ms per call |",
        ]
        lines += ["| --- | --- | --- | --- | --- |"]
        for who in figures["wall_time_s"]:
            lines.append(
                f"| {who} | {figures['wall_time_s'][who]:.2f} | {figures['grader_calls'][who]} | "
                f"{figures['grader_input_tokens'][who]} | {figures['client_cpu_ms_per_call'][who]:.2f} |"
            )
    if "prefix_cache" in reports:
        rows = reports["prefix_cache"]["figures"]["by_configuration"]
        lines += [
            "",
            "| prefix cache: profile/mode/schedule | input tokens per example | uncached | block bound | uncached ÷ block bound "
            "| token bound | uncached ÷ token bound | wall ÷ latency bound |",
        ]
        lines += ["| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for config, r in rows.items():
            lines.append(
                f"| {config} | {r['input_tokens_per_example']:.0f} | {r['uncached_input_tokens_per_example']:.0f} | "
                f"{r['perfect_block_reuse_uncached_per_example']:.0f} | {r['uncached_over_perfect_block_reuse']:.3f} | "
                f"{r['perfect_reuse_uncached_per_example']:.0f} | {r['uncached_over_perfect_reuse']:.3f} | "
                f"{r['wall_time_over_latency_bound']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(
    argv: Sequence[str] | None = None,
    scenarios: dict[str, Callable[[Size], dict]] = SCENARIOS,
    prog: str = "python -m harness.tools.bench",
) -> int:
    """Run the named scenarios; a caller may pass more (the verl recipe adds its reward scenario)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("scenarios", nargs="*", default=list(scenarios), help=f"any of {', '.join(scenarios)} (default all)")
    parser.add_argument("--small", action="store_true", help="reduced size, a few seconds (CI)")
    parser.add_argument("--out", default="reports/bench", help="output folder (default reports/bench)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs per timed scenario, median reported (default 3; 1 with --small)"
    )
    parser.add_argument("--load", type=int, default=1, help="busy processes generated while measuring (default 1)")
    parser.add_argument("--check", action="store_true", help="exit 1 with one error line when a target is missed")
    parser.add_argument("--table", action="store_true", help="print the README tables from the reports in --out (runs nothing)")
    args = parser.parse_args(argv)
    if args.table:
        print(summary_table(Path(args.out)), end="")
        return 0
    for name in args.scenarios:
        if name not in scenarios:
            raise ArgumentError("scenario", name, list(scenarios))
    if args.repeats is not None and args.repeats < 1:
        raise ArgumentError("--repeats", str(args.repeats), "a positive number of runs")
    if args.load < 0:
        raise ArgumentError("--load", str(args.load), "a number of busy processes, 0 or more")
    size = SMALL if args.small else FULL
    repeats = args.repeats or size.repeats
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # this workplace's data, as the Makefile
    if not os.environ.get("M2BENCH_DATA_DIR") and shared.is_dir():
        os.environ["M2BENCH_DATA_DIR"] = str(shared)
    command = f"{prog} " + " ".join(sys.argv[1:] if argv is None else argv)
    missed = []
    for name in args.scenarios:
        t0 = time.perf_counter()
        result = run_scenario(scenarios[name], size, repeats, args.load)
        paths = write_report(Path(args.out), name, result, command.strip(), args.small)
        these = missed_targets(name, result["targets"])
        missed += these
        verdict = f"{len(these)} target value(s) missed" if these else ("targets met" if result["targets"] else "no target")
        print(f"{name}: {time.perf_counter() - t0:.1f}s, {verdict} -> {paths[1]}", flush=True)
    if missed and args.check:
        print(f"error: {len(missed)} benchmark target value(s) missed: " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
