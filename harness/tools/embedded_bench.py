"""Embedded model benchmark: load time and tokens/s of ``harness.local_model`` against the old path.

    python -m harness.tools.embedded_bench [--repeats N] [--out reports/bench]

Writes ``<out>/embedded_model.md`` and ``.json``. Every load runs in a fresh Python process, in
this order per repeat (so a change in the machine's load hits both paths):

- old: the embedded model as it ran before its weight cache and decoder: transformers de-quantises
  the GGUF on every start; ``model.generate`` decodes; schema-guided JSON asks the model token by
  token with transformers' KV cache (``OldJsonWriter``, the former ``_JsonWriter``, kept here as
  the baseline);
- new, cold: ``LocalModel()`` with an empty cache folder (de-quantises and writes the cache);
- new, warm: ``LocalModel()`` with that cache present.

Load times exclude importing torch and transformers (timed separately, in the same process). The
old and the warm new process then run the same workload (plain generation and grader verdicts),
after one untimed warm-up call, and the outputs are compared.
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import M2BenchError, run_cli
from harness.grading import VERDICT_SCHEMA, criterion_prompt
from harness.rubric import RubricItem

MAX_NEW_TOKENS = 96
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
TARGETS = {"load_warm_s": ("<=", 3.0), "generate_speedup": (">=", 3.0), "generate_json_speedup": (">=", 3.0)}


def workload() -> tuple[list[list[dict[str, str]]], list[list[dict[str, str]]]]:
    plain = [[{"role": "user", "content": q}] for q in QUESTIONS]
    graded = [
        [{"role": "user", "content": criterion_prompt([{"role": "user", "content": q}], reply, RubricItem(criterion, 5))}]
        for q, reply, criteria in GRADING
        for criterion in criteria
    ]
    return plain, graded


# ---- the old path (baseline) -----------------------------------------------------------------
def old_prompt_ids(tokenizer: Any, messages: list[dict[str, str]], reserve: int, max_context: int) -> list[int]:
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    budget = max_context - reserve
    return ids[-budget:] if len(ids) > budget else ids


def old_generate(tokenizer: Any, model: Any, messages: list[dict[str, str]], max_new_tokens: int) -> tuple[str, int]:
    import torch

    ids = old_prompt_ids(tokenizer, messages, max_new_tokens, model.config.max_position_embeddings)
    with torch.no_grad():
        out = model.generate(
            input_ids=torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id,
        )
    new = out[0][len(ids) :].tolist()
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


# ---- one measured process --------------------------------------------------------------------
def child(path: str, run_workload: bool) -> dict:
    """Runs in a fresh process: import time, load time, then (optionally) the workload."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    t1 = time.perf_counter()
    result: dict[str, Any] = {"import_s": t1 - t0}
    if path == "old":
        from harness.local_weights import load_gguf

        tokenizer, model = load_gguf()
        result["load_s"] = time.perf_counter() - t1

        def generate(messages: list[dict[str, str]], max_new_tokens: int = MAX_NEW_TOKENS) -> tuple[str, int]:
            return old_generate(tokenizer, model, messages, max_new_tokens)

        def generate_json(messages: list[dict[str, str]]) -> tuple[str, int]:
            ids = old_prompt_ids(tokenizer, messages, 1024, model.config.max_position_embeddings)
            writer = OldJsonWriter(tokenizer, model, ids)
            writer.value(VERDICT_SCHEMA)
            return writer.text, len(tokenizer.encode(writer.text, add_special_tokens=False))
    else:
        from harness.local_model import LocalModel

        lm = LocalModel()
        result["load_s"] = time.perf_counter() - t1
        result["weights_source"] = lm.weights_source

        def generate(messages: list[dict[str, str]], max_new_tokens: int = MAX_NEW_TOKENS) -> tuple[str, int]:
            gen = lm.generate(messages, max_new_tokens)
            return gen.text, gen.output_tokens

        def generate_json(messages: list[dict[str, str]]) -> tuple[str, int]:
            gen = lm.generate_json(messages, VERDICT_SCHEMA)
            return gen.text, gen.output_tokens

    if run_workload:
        plain, graded = workload()
        generate([{"role": "user", "content": "Hello"}], 8)  # warm-up, untimed
        for name, call, prompts in (("generate", generate, plain), ("generate_json", generate_json, graded)):
            texts, tokens, seconds = [], 0, 0.0
            for messages in prompts:
                start = time.perf_counter()
                text, count = call(messages)
                seconds += time.perf_counter() - start
                texts.append(text)
                tokens += count
            result[name] = {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds, "texts": texts}
    return result


def measure(path: str, cache: Path | None, run_workload: bool) -> dict:
    env = {**os.environ, "M2BENCH_CACHE_DIR": str(cache)} if cache else dict(os.environ)
    command = [sys.executable, "-m", "harness.tools.embedded_bench", "--child", path] + (["--workload"] if run_workload else [])
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise M2BenchError(f"the {path} benchmark process failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["stderr_chars"] = len(done.stderr)  # progress bars or warnings while loading and generating
    return result


# ---- the benchmark ---------------------------------------------------------------------------
def run(repeats: int) -> dict:
    """Measure ``repeats`` times (old, new cold, new warm per round); medians, ratios and targets."""
    from harness.tools.bench import machine

    load_at_start = os.getloadavg()
    runs: dict[str, list[dict]] = {"old": [], "new_cold": [], "new_warm": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="m2bench-embedded-") as cache:
            runs["old"].append(measure("old", None, run_workload=True))
            runs["new_cold"].append(measure("new", Path(cache), run_workload=False))
            runs["new_warm"].append(measure("new", Path(cache), run_workload=True))

    def median(path: str, *keys: str) -> float:
        values = []
        for record in runs[path]:
            value: Any = record
            for key in keys:
                value = value[key]
            values.append(float(value))
        return statistics.median(values)

    figures: dict[str, Any] = {
        "import_torch_transformers_s": median("new_warm", "import_s"),
        "load_old_s": median("old", "load_s"),
        "load_cold_s": median("new_cold", "load_s"),
        "load_warm_s": median("new_warm", "load_s"),
        "load_speedup_warm": median("old", "load_s") / median("new_warm", "load_s"),
    }
    identical = {}
    for name in ("generate", "generate_json"):
        old, new = median("old", name, "tokens_per_s"), median("new_warm", name, "tokens_per_s")
        figures[f"{name}_tokens_per_s"] = {"old": old, "new": new}
        figures[f"{name}_speedup"] = new / old
        pairs = [
            (o, n)
            for r_old, r_new in zip(runs["old"], runs["new_warm"])
            for o, n in zip(r_old[name]["texts"], r_new[name]["texts"])
        ]
        identical[name] = f"{sum(o == n for o, n in pairs)} of {len(pairs)}"
    figures["outputs_identical_to_old"] = identical
    figures["stderr_chars_new_load"] = max(r["stderr_chars"] for r in runs["new_cold"] + runs["new_warm"])
    for name, record in runs["new_warm"][0].items():
        if isinstance(record, dict):
            figures[f"{name}_tokens_per_run"] = record["tokens"]
    targets_met = {}
    for name, (op, limit) in TARGETS.items():
        value = figures[name]
        targets_met[name] = value <= limit if op == "<=" else value >= limit
    return {
        "scenario": "embedded_model",
        "config": {
            "repeats": repeats,
            "generate": f"{len(QUESTIONS)} medical questions, greedy, max_new_tokens={MAX_NEW_TOKENS}",
            "generate_json": f"{sum(len(c) for _, _, c in GRADING)} per-criterion grader prompts (harness.grading.criterion_prompt: "
            f"{len(GRADING)} conversations x 2 criteria), VERDICT_SCHEMA",
            "tokens_per_s": "output tokens / wall time of the calls (prompt pass included), summed over the prompts of one process",
            "old": "transformers GGUF de-quantisation on every start; model.generate; the former schema-guided writer",
            "new": "harness.local_model.LocalModel (weight cache, fp16 decoder)",
            "threads": f"torch default ({os.cpu_count()} here) for the old path; the new path's own settings",
        },
        "machine": {**machine(), "load_average_at_start": list(load_at_start), "load_average_at_end": list(os.getloadavg())},
        "figures": figures,
        "targets": {name: [op, limit] for name, (op, limit) in TARGETS.items()},
        "targets_met": targets_met,
        "runs": runs,
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
    lines += [
        "",
        "## Runs",
        "",
        "| path | import s | load s | generate tok/s | generate_json tok/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for path, records in result["runs"].items():
        for r in records:
            speeds = [_fmt(r[name]["tokens_per_s"]) if name in r else "" for name in ("generate", "generate_json")]
            lines.append(f"| {path} | {_fmt(r['import_s'])} | {_fmt(r['load_s'])} | {speeds[0]} | {speeds[1]} |")
    return "\n".join(lines) + "\n"


def write(result: dict, out: Path, command: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "embedded_model.json", out / "embedded_model.md"
    json_path.write_text(json.dumps({"command": command, **result}, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown(result, command), encoding="utf-8")
    return json_path, md_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.tools.embedded_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="measurements per path (default 3; each old load takes ~40 s)")
    parser.add_argument("--out", default="reports/bench", help="output folder (default reports/bench)")
    parser.add_argument("--child", choices=["old", "new"], help=argparse.SUPPRESS)
    parser.add_argument("--workload", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.workload)))
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
