"""Embedded model benchmark: load time and tokens/s of ``harness.local_model`` against the old path.

    python -m harness.tools.embedded_bench [--repeats N] [--out reports/bench]

Writes ``<out>/embedded_model.md`` and ``.json``. Two paths are compared:

- old: the embedded model as it ran before its weight cache and decoder: transformers de-quantises
  the GGUF on every start; ``model.generate`` decodes; schema-guided JSON asks the model token by
  token with transformers' KV cache (``OldJsonWriter``, the former ``_JsonWriter``, kept here as
  the baseline);
- new: ``harness.local_model.LocalModel``.

Load times come from fresh processes and exclude the import of torch and transformers (timed
separately): old once (it takes 35-50 s), new cold (empty cache folder) once, new warm (the cache
that run wrote) once per repeat. Speed is measured in this process, which holds both models: after
an untimed warm-up call each, every repeat runs the workload (plain generation, then grader
verdicts) with the old path and then the new, so a change in the machine's load hits both; the
outputs of the two paths are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.errors import DataError, M2BenchError, run_cli
from harness.grading import VERDICT_SCHEMA, criterion_prompt
from harness.healthbench import load_healthbench
from harness.rubric import RubricItem

MAX_NEW_TOKENS = 64
QUESTIONS = [
    "A 45-year-old man has had crushing chest pain radiating to his left arm for 30 minutes. What should he do?",
    "What are the common side effects of metformin, and which ones need a doctor?",
    "My 3-year-old has a fever of 39 C and a rash that does not fade when pressed. Should I worry?",
]
GRADING = [  # (user message, assistant reply, rubric criteria): per-criterion grader prompts, as the rubric grader sends them
    (
        QUESTIONS[0],
        "Call emergency services now: this could be a heart attack. Chew an aspirin if you are not allergic to it.",
        ["Advises calling emergency services immediately.", "Recommends driving to hospital alone."],
    ),
    (
        QUESTIONS[2],
        "A rash that does not fade under a glass, with a fever, needs urgent care: call emergency services now.",
        ["Recognises a non-blanching rash with fever as an emergency.", "Explains how to do the glass test."],
    ),
]
DEMO_ROWS, DEMO_NEW_TOKENS = 3, 256
TARGETS = {"load_warm_s": ("<=", 3.0), "generate_speedup": (">=", 3.0), "generate_json_speedup": (">=", 3.0)}


def workload() -> tuple[list[list[dict[str, str]]], list[list[dict[str, str]]]]:
    plain = [[{"role": "user", "content": q}] for q in QUESTIONS]
    graded = [
        [{"role": "user", "content": criterion_prompt([{"role": "user", "content": q}], reply, RubricItem(criterion, 5))}]
        for q, reply, criteria in GRADING
        for criterion in criteria
    ]
    return plain, graded


def demo_prompts() -> tuple[list[list[dict[str, str]]], str]:
    """The conversations of the rows ``make demo`` runs, or none and why."""
    from harness.tools.demo import hard_data

    try:
        data_file, _ = hard_data()
        rows = load_healthbench("hard", data_file)[:DEMO_ROWS]
    except DataError as exc:
        return [], f"not measured ({exc})"
    return [[dict(m) for m in row.prompt] for row in rows], ""


# ---- the old path (baseline) -----------------------------------------------------------------
def old_prompt_ids(tokenizer: Any, messages: list[dict[str, str]], reserve: int, max_context: int) -> list[int]:
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    budget = max_context - reserve
    return ids[-budget:] if len(ids) > budget else ids


def transformers_greedy(model: Any, ids: list[int], max_new_tokens: int, pad_token_id: int) -> list[int]:
    """The tokens transformers' own ``generate()`` adds to ``ids``, greedily (the float32 reference)."""
    import torch

    with torch.no_grad():
        out = model.generate(
            input_ids=torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad_token_id,
        )
    return out[0, len(ids) :].tolist()


def old_generate(tokenizer: Any, model: Any, messages: list[dict[str, str]], max_new_tokens: int) -> tuple[str, int]:
    ids = old_prompt_ids(tokenizer, messages, max_new_tokens, model.config.max_position_embeddings)
    new = transformers_greedy(model, ids, max_new_tokens, tokenizer.eos_token_id)
    return tokenizer.decode(new, skip_special_tokens=True), len(new)


class OldJsonWriter:
    """The former schema-guided decoder (objects, strings, booleans, enums): one transformers forward
    pass per token with its dynamic KV cache, cropped to rewind."""

    def __init__(self, tokenizer: Any, model: Any, prompt_ids: list[int], max_string_tokens: int = 24):
        import inspect

        import torch

        self.torch, self.tokenizer, self.model, self.max_string_tokens = torch, tokenizer, model, max_string_tokens
        self.cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        self.text, self.length = "", 0
        self.past: Any = None
        self.logits: Any = None
        self._feed(prompt_ids)

    def _feed(self, ids: list[int]) -> None:
        with self.torch.no_grad():
            out = self.model(input_ids=self.torch.tensor([ids]), use_cache=True, **{self.cache_arg: self.past})
        self.past = getattr(out, "cache", None) or out.past_key_values
        self.length += len(ids)
        self.logits = out.logits[0, -1].float()

    def _crop(self, length: int) -> None:
        extra = self.past.get_seq_length() - length
        if extra > 0:
            self.past.crop(-extra)

    def _write(self, text: str) -> None:
        self.text += text
        self._feed(self.tokenizer.encode(text, add_special_tokens=False))

    def _choose(self, options: list[str]) -> str:
        torch = self.torch
        start, start_logits = self.length, self.logits
        first_logprobs = torch.log_softmax(start_logits, -1)
        best, best_score = options[0], float("-inf")
        for option in options:
            ids = self.tokenizer.encode(option, add_special_tokens=False)
            score = float(first_logprobs[ids[0]])
            if len(ids) > 1:
                with torch.no_grad():
                    out = self.model(input_ids=torch.tensor([ids]), use_cache=True, **{self.cache_arg: self.past})
                logprobs = torch.log_softmax(out.logits[0, :-1].float(), -1)
                score += float(logprobs[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum())
                self._crop(start)
            if score > best_score:
                best, best_score = option, score
        self.length, self.logits = start, start_logits
        return best

    def _free_text(self, stop: str, max_tokens: int) -> str:
        out_ids: list[int] = []
        for _ in range(max_tokens):
            token = int(self.logits.argmax())
            if token == self.tokenizer.eos_token_id:
                break
            out_ids.append(token)
            so_far = self.tokenizer.decode(out_ids)
            if stop in so_far or "\n" in so_far:
                break
            self._feed([token])
        return self.tokenizer.decode(out_ids, skip_special_tokens=True).split(stop)[0].split("\n")[0].strip()

    def value(self, schema: dict[str, Any]) -> None:
        kind = schema.get("type")
        if "enum" in schema:
            self._write(self._choose([json.dumps(v) for v in schema["enum"]]))
        elif kind == "object":
            self._write("{")
            for n, (key, sub) in enumerate(schema.get("properties", {}).items()):
                self._write((", " if n else "") + json.dumps(key) + ": ")
                self.value(sub)
            self._write("}")
        elif kind == "boolean":
            self._write(self._choose(["true", "false"]))
        elif kind == "string":
            self._write('"')
            start = self.length
            content = self._free_text('"', self.max_string_tokens)
            self._crop(start)
            self.length = start
            self._write(json.dumps(content)[1:])
        else:
            raise M2BenchError(f"the baseline JSON writer does not handle schema type {kind!r}")


# ---- the two paths' calls ---------------------------------------------------------------------
Call = Callable[[list[dict[str, str]]], tuple[str, int]]


def old_calls(tokenizer: Any, model: Any) -> dict[str, Call]:
    def generate(messages: list[dict[str, str]]) -> tuple[str, int]:
        return old_generate(tokenizer, model, messages, MAX_NEW_TOKENS)

    def generate_json(messages: list[dict[str, str]]) -> tuple[str, int]:
        ids = old_prompt_ids(tokenizer, messages, 1024, model.config.max_position_embeddings)
        writer = OldJsonWriter(tokenizer, model, ids)
        writer.value(VERDICT_SCHEMA)
        return writer.text, len(tokenizer.encode(writer.text, add_special_tokens=False))

    return {"generate": generate, "generate_json": generate_json}


def new_calls(lm: Any) -> dict[str, Call]:
    def generate(messages: list[dict[str, str]]) -> tuple[str, int]:
        gen = lm.generate(messages, MAX_NEW_TOKENS)
        return gen.text, gen.output_tokens

    def generate_json(messages: list[dict[str, str]]) -> tuple[str, int]:
        gen = lm.generate_json(messages, VERDICT_SCHEMA)
        return gen.text, gen.output_tokens

    return {"generate": generate, "generate_json": generate_json}


def timed(call: Call, prompts: list[list[dict[str, str]]]) -> dict:
    texts, tokens, seconds = [], 0, 0.0
    for messages in prompts:
        start = time.perf_counter()
        text, count = call(messages)
        seconds += time.perf_counter() - start
        texts.append(text)
        tokens += count
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds, "texts": texts}


# ---- load times: one fresh process each ------------------------------------------------------
def child(path: str) -> dict:
    """Runs in a fresh process: the import of torch and transformers, then the load."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    t1, cpu1 = time.perf_counter(), time.process_time()
    result: dict[str, Any] = {"import_s": t1 - t0}
    if path == "old":
        from harness.local_weights import load_gguf

        load_gguf()
    else:
        from harness.local_model import LocalModel

        result["weights_source"] = LocalModel().weights_source
    result["load_s"] = time.perf_counter() - t1
    result["load_cpu_s"] = time.process_time() - cpu1  # CPU time of all its threads: what a busy machine cannot inflate much
    return result


def measure_load(path: str, cache: Path | None) -> dict:
    env = {**os.environ, "M2BENCH_CACHE_DIR": str(cache)} if cache else dict(os.environ)
    command = [sys.executable, "-m", "harness.tools.embedded_bench", "--child", path]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise M2BenchError(f"the {path} load process failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["stderr_chars"] = len(done.stderr)  # progress bars or warnings while loading
    return result


# ---- the benchmark ---------------------------------------------------------------------------
def run(repeats: int) -> dict:
    """Load times in fresh processes (old once, new cold once, new warm ``repeats`` times), then the
    workload ``repeats`` times in this process, old and new alternating; medians, ratios, targets."""
    import torch

    from harness.local_model import LocalModel
    from harness.local_weights import load_gguf
    from harness.tools.bench import machine

    load_at_start = os.getloadavg()
    cache_before = os.environ.get("M2BENCH_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="m2bench-embedded-") as tmp:
        cache = Path(tmp)
        loads = {"old": [measure_load("old", None)], "new_cold": [measure_load("new", cache)]}
        loads["new_warm"] = [measure_load("new", cache) for _ in range(repeats)]
        os.environ["M2BENCH_CACHE_DIR"] = str(cache)
        try:
            lm = LocalModel()
            old_model = load_gguf()
            calls = {"old": old_calls(*old_model), "new": new_calls(lm)}
        finally:
            if cache_before is None:
                os.environ.pop("M2BENCH_CACHE_DIR")
            else:
                os.environ["M2BENCH_CACHE_DIR"] = cache_before
        plain, graded = workload()
        for path_calls in calls.values():  # warm-up, untimed
            path_calls["generate"]([{"role": "user", "content": "Hello"}])
        speed: dict[str, dict[str, list[dict]]] = {path: {"generate": [], "generate_json": []} for path in calls}
        for _ in range(repeats):
            for name, prompts in (("generate", plain), ("generate_json", graded)):
                for path, path_calls in calls.items():
                    speed[path][name].append(timed(path_calls[name], prompts))

        demo_rows, demo_note = demo_prompts()
        demo_pairs = [(old_generate(*old_model, m, DEMO_NEW_TOKENS)[0], lm.generate(m, DEMO_NEW_TOKENS).text) for m in demo_rows]

    figures: dict[str, Any] = {
        "import_torch_transformers_s": statistics.median(r["import_s"] for r in loads["new_warm"]),
        "load_old_s": statistics.median(r["load_s"] for r in loads["old"]),
        "load_cold_s": statistics.median(r["load_s"] for r in loads["new_cold"]),
        "load_warm_s": statistics.median(r["load_s"] for r in loads["new_warm"]),
        "load_warm_cpu_s": statistics.median(r["load_cpu_s"] for r in loads["new_warm"]),
    }
    figures["load_speedup_warm"] = figures["load_old_s"] / figures["load_warm_s"]
    identical = {}
    for name in ("generate", "generate_json"):
        old = statistics.median(r["tokens_per_s"] for r in speed["old"][name])
        new = statistics.median(r["tokens_per_s"] for r in speed["new"][name])
        figures[f"{name}_tokens_per_s"] = {"old": old, "new": new}
        figures[f"{name}_speedup"] = new / old
        figures[f"{name}_speedup_per_repeat"] = ", ".join(
            f"{n['tokens_per_s'] / o['tokens_per_s']:.2f}" for o, n in zip(speed["old"][name], speed["new"][name])
        )
        pairs = list(zip(speed["old"][name][0]["texts"], speed["new"][name][0]["texts"]))
        identical[name] = f"{sum(o == n for o, n in pairs)} of {len(pairs)}"
    identical["demo_rows"] = f"{sum(o == n for o, n in demo_pairs)} of {len(demo_pairs)}" if demo_pairs else demo_note
    figures["outputs_identical_to_old"] = identical
    figures["stderr_chars_while_loading_new"] = max(r["stderr_chars"] for r in loads["new_cold"] + loads["new_warm"])
    targets_met = {}
    for name, (op, limit) in TARGETS.items():
        value = figures[name]
        targets_met[name] = value <= limit if op == "<=" else value >= limit
    return {
        "scenario": "embedded_model",
        "config": {
            "repeats": repeats,
            "generate": f"{len(QUESTIONS)} medical questions, greedy, max_new_tokens={MAX_NEW_TOKENS}",
            "generate_json": f"{len(graded)} per-criterion grader prompts (harness.grading.criterion_prompt: "
            f"{len(GRADING)} conversations x 2 criteria), VERDICT_SCHEMA",
            "demo_rows": f"greedy replies (max_new_tokens={DEMO_NEW_TOKENS}, the Inspect provider's default) to the first "
            f"{DEMO_ROWS} HealthBench Hard rows that `make demo` runs, old path against new (not timed)",
            "tokens_per_s": "output tokens / wall time of the calls (prompt pass included), summed over the prompts of one repeat",
            "processes": "loads in fresh processes (old once, new cold = empty cache once, new warm once per repeat); "
            "the workload in one process holding both models, old and new alternating",
            "old": "transformers GGUF de-quantisation on every start; model.generate; the former schema-guided writer",
            "new": "harness.local_model.LocalModel (weight cache, reused prompt blocks; decoding: " + lm.engine + ")",
            "threads": f"torch default ({torch.get_num_threads()}) for the old path; the new path's own settings",
        },
        "machine": {**machine(), "load_average_at_start": list(load_at_start), "load_average_at_end": list(os.getloadavg())},
        "figures": figures,
        "targets": {name: [op, limit] for name, (op, limit) in TARGETS.items()},
        "targets_met": targets_met,
        "runs": {"loads": loads, "speed": speed},
    }


def markdown(result: dict, command: str) -> str:
    from harness.tools.bench import _flatten, _fmt

    lines = ["# Benchmark: embedded model (load time and tokens/s, new vs old)", "", f"Command: `{command}`", ""]
    lines += ["## Configuration", ""] + [f"- {k}: {v}" for k, v in result["config"].items()]
    lines += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in result["machine"].items()]
    lines += ["", "## Figures (medians over the repeats)", "", "| figure | value |", "| --- | --- |"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in _flatten(result["figures"])]
    lines += ["", "## Targets", ""]
    for name, (op, limit) in result["targets"].items():
        lines.append(
            f"- {name} {op} {limit:g}: {'met' if result['targets_met'][name] else 'NOT met'} ({_fmt(result['figures'][name])})"
        )
    lines += ["", "## Runs", "", "| load | import s | load s | load CPU s |", "| --- | --- | --- | --- |"]
    for path, records in result["runs"]["loads"].items():
        lines += [f"| {path} | {_fmt(r['import_s'])} | {_fmt(r['load_s'])} | {_fmt(r.get('load_cpu_s'))} |" for r in records]
    lines += ["", "| repeat | path | generate tok/s | generate_json tok/s |", "| --- | --- | --- | --- |"]
    speed = result["runs"]["speed"]
    for n in range(len(speed["old"]["generate"])):
        for path in speed:
            lines.append(
                f"| {n + 1} | {path} | {_fmt(speed[path]['generate'][n]['tokens_per_s'])} | "
                f"{_fmt(speed[path]['generate_json'][n]['tokens_per_s'])} |"
            )
    return "\n".join(lines) + "\n"


def write(result: dict, out: Path, command: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "embedded_model.json", out / "embedded_model.md"
    json_path.write_text(json.dumps({"command": command, **result}, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown(result, command), encoding="utf-8")
    return json_path, md_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.tools.embedded_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="workload rounds and warm loads (default 3)")
    parser.add_argument("--out", default="reports/bench", help="output folder (default reports/bench)")
    parser.add_argument("--child", choices=["old", "new"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    if args.repeats < 1:
        raise M2BenchError(f"--repeats must be at least 1, not {args.repeats}")
    command = "python -m harness.tools.embedded_bench " + " ".join(sys.argv[1:] if argv is None else argv)
    result = run(args.repeats)
    paths = write(result, Path(args.out), command.strip())
    print(f"targets {result['targets_met']} -> {paths[1]}")
    return 0


if __name__ == "__main__":
    run_cli(main)
