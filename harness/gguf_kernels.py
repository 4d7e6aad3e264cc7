"""Matrix products on the GGUF file's own 4- and 8-bit blocks, compiled here on first use.

The embedded model's decoding reads every weight once per token, so the bytes per weight set its
speed: the GGUF holds 0.6 (Q4_1) and 1.06 (Q8_0) bytes per weight, against 2 for float16 copies.
``gguf_kernels.c`` multiplies float32 activations by those blocks directly (see its header for the
layout); the weights are exactly the de-quantised values, so nothing is re-quantised. It also runs
a whole one-token pass of a Llama decoder in one call (``LlamaStep``), where tensor operations from
Python would each cost more than the arithmetic they do.

The C file ships with the package and is compiled with the system's C compiler into the user cache
(``<cache>/kernels/<hash>.so``, the hash naming source, flags, compiler and machine), once. Where
that cannot be done (no compiler, a CPU without AVX2/FMA/F16C) ``kernels()`` returns None with the
reason, and the caller keeps its float16 path; ``unavailable_reason()`` says why.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("gguf_kernels.c")
FLAGS = ["-O3", "-mavx2", "-mfma", "-mf16c", "-shared", "-fPIC"]
BLOCK_BYTES = {"Q4_1": 20, "Q8_0": 34}  # bytes per 32 weights
CPU_FEATURES = ("avx2", "fma", "f16c")


def _missing_cpu_features() -> list[str]:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return [f"an x86-64 CPU (this is {platform.machine()})"]
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return ["/proc/cpuinfo to confirm " + ", ".join(CPU_FEATURES)]
    return [f for f in CPU_FEATURES if f not in flags]


def _compiler() -> str | None:
    configured = (sysconfig.get_config_var("CC") or "").split()
    for candidate in [os.environ.get("CC", ""), *configured[:1], "cc", "gcc", "clang"]:
        if candidate and shutil.which(candidate):
            return candidate
    return None


class Kernels:
    """``matmul(x, blocks, kind)``: ``x @ W.T`` for float32 ``x`` [n, K] and ``W`` given as the uint8
    rows of its blocks [N, K / 32 * BLOCK_BYTES[kind]]."""

    def __init__(self, library: Path) -> None:
        import torch

        self.torch = torch
        lib = ctypes.CDLL(str(library))
        args = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
        self._functions = {}
        for kind, name in (("Q4_1", "q4_1_matmul"), ("Q8_0", "q8_0_matmul")):
            function = getattr(lib, name)
            function.argtypes, function.restype = args, None
            self._functions[kind] = function
        self.step_function = lib.llama_step
        self.step_function.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self.step_function.restype = ctypes.c_int

    def matmul(self, x: Any, blocks: Any, kind: str) -> Any:
        n, width = x.shape
        rows, row_bytes = blocks.shape
        if width % 32 or row_bytes != width // 32 * BLOCK_BYTES[kind] or x.dtype != self.torch.float32:
            raise ValueError(f"{kind} blocks of shape {tuple(blocks.shape)} do not fit float32 input of width {width}")
        x = x.contiguous()
        out = self.torch.empty(n, rows)
        self._functions[kind](x.data_ptr(), n, width, blocks.data_ptr(), rows, out.data_ptr())
        return out


class _Llama(ctypes.Structure):  # struct llama in gguf_kernels.c
    _fields_ = [
        *((name, ctypes.c_int64) for name in ("layers", "hidden", "inter", "heads", "kv_heads", "head_dim", "capacity")),
        ("eps", ctypes.c_float),
        ("attention_scale", ctypes.c_float),
        ("embed", ctypes.c_void_p),
        ("rope", ctypes.c_void_p),
        ("norms", ctypes.POINTER(ctypes.c_void_p)),
        ("matrices", ctypes.POINTER(ctypes.c_void_p)),
        ("kinds", ctypes.POINTER(ctypes.c_int)),
        ("vocab", ctypes.c_int64),
    ]


class LlamaStep:
    """One token through a whole Llama decoder in one call (``llama_step`` in the C file): the
    matrices are GGUF blocks, everything else float32. Holds references to every tensor it points to."""

    def __init__(self, kernels: Kernels, shape: dict[str, Any], embed: Any, rope: Any, norms: list, matrices: list) -> None:
        """``shape``: layers, hidden, inter, heads, kv_heads, head_dim, eps, vocab; ``rope``: float32
        [position, head_dim / 2, 2] (cos, sin); ``norms``: per layer the attention and MLP norm
        weights, then the final one; ``matrices``: per layer (blocks, kind) of qkv, out, gate_up and
        down, then the head's."""
        torch = kernels.torch
        if any(shape[name] % 8 for name in ("hidden", "inter", "head_dim")):
            raise ValueError(f"the step kernel needs hidden, intermediate and head sizes that are multiples of 8: {shape}")
        self.torch, self._function = torch, kernels.step_function
        embed, rope = embed.contiguous(), rope.contiguous()
        norms = [t.contiguous() for t in norms]
        blocks = [b.contiguous() for b, _ in matrices]
        self._keep = (embed, rope, norms, blocks)  # the C struct points into these
        self._norms = (ctypes.c_void_p * len(norms))(*(t.data_ptr() for t in norms))
        self._matrices = (ctypes.c_void_p * len(blocks))(*(t.data_ptr() for t in blocks))
        self._kinds = (ctypes.c_int * len(matrices))(*(1 if kind == "Q4_1" else 0 for _, kind in matrices))
        self.vocab, self.tokens = int(shape["vocab"]), embed.shape[0]
        self.model = _Llama(
            **{name: int(shape[name]) for name in ("layers", "hidden", "inter", "heads", "kv_heads", "head_dim")},
            capacity=0,
            eps=float(shape["eps"]),
            attention_scale=float(shape["head_dim"]) ** -0.5,
            embed=embed.data_ptr(),
            rope=rope.data_ptr(),
            norms=self._norms,
            matrices=self._matrices,
            kinds=self._kinds,
            vocab=self.vocab,
        )

    def __call__(self, token: int, position: int, keys: Any, values: Any) -> Any:
        """The logits after ``token`` at ``position``; writes its key and value into the caches
        (float32, contiguous: keys [layer, kv head, dim, capacity], values [layer, kv head, capacity, dim])."""
        if not 0 <= token < self.tokens or not 0 <= position < keys.shape[-1]:
            raise IndexError(f"token {token} at position {position} is outside the model or its cache")
        self.model.capacity = keys.shape[-1]
        logits = self.torch.empty(self.vocab)
        if self._function(ctypes.byref(self.model), token, position, keys.data_ptr(), values.data_ptr(), logits.data_ptr()):
            raise MemoryError("the step kernel could not allocate its buffers")
        return logits


def _build(folder: Path, compiler: str) -> Path:
    source = SOURCE.read_bytes()
    key = hashlib.sha256(repr((source, FLAGS, compiler, platform.machine(), sys.platform)).encode()).hexdigest()[:24]
    library = folder / f"gguf_kernels-{key}.so"
    if library.is_file():
        return library
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".build-", suffix=".so")
    os.close(fd)
    try:
        run = subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", tmp], capture_output=True, text=True, timeout=120)
        if run.returncode != 0:
            raise OSError(f"{compiler} failed: {run.stderr.strip()[-500:]}")
        os.replace(tmp, library)  # atomic: another process sees the whole library or none
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return library


@functools.lru_cache(maxsize=1)
def _load() -> tuple[Kernels | None, str]:
    missing = _missing_cpu_features()
    if missing:
        return None, "the CPU lacks " + ", ".join(missing)
    compiler = _compiler()
    if compiler is None:
        return None, "no C compiler (cc, gcc or clang) was found"
    from harness.data import cache_dir

    try:
        return Kernels(_build(cache_dir() / "kernels", compiler)), ""
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"the kernels could not be built: {exc}"


def kernels() -> Kernels | None:
    """The compiled kernels, or None where they cannot run here (``unavailable_reason()`` says why)."""
    return _load()[0]


def unavailable_reason() -> str:
    return _load()[1]
