"""Finding data files: local directory, user cache, or the official URL.

Search order for ``<dataset>/<name>``:
1. ``$M2BENCH_DATA_DIR/<dataset>/<name>`` (tests and CI point this at ``../shared/data``);
2. the user cache (``$M2BENCH_CACHE_DIR`` or the platform cache dir), filled by earlier downloads;
3. the official URL, downloaded into the cache (atomic rename, so no half files).

A file registered with a sha256 is checked against it wherever it was found, and a download is
checked before it is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import DataError
from harness.evalsets import DataFile

DATA_DIR_ENV = "M2BENCH_DATA_DIR"
CACHE_DIR_ENV = "M2BENCH_CACHE_DIR"
MAX_LINE_BYTES = 64 * 1024 * 1024  # one JSONL row; a longer line is reported, not loaded


def cache_dir() -> Path:
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    import platformdirs

    return Path(platformdirs.user_cache_dir("m2bench"))


def local_data_dir() -> Path | None:
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value) if value else None


def resolve_file(dataset: str, name: str, url: str | None = None, sha256: str | None = None) -> Path:
    """Return a local path for ``dataset/name``, downloading it if needed (checked against ``sha256`` if given)."""
    candidates = []
    if (root := local_data_dir()) is not None:
        candidates.append(root / dataset / name)
    cached = cache_dir() / dataset / name
    candidates.append(cached)
    for path in candidates:
        if path.is_file():
            if sha256 is not None and (actual := file_sha256(path)) != sha256:
                raise DataError(path, f"sha256 {actual} differs from the pinned {sha256}; replace it with the file from {url}")
            return path
    if url is None:
        raise DataError(candidates[0], f"not found; put the file there or set ${DATA_DIR_ENV}")
    try:
        _download(url, cached)
    except OSError as exc:
        looked = ", ".join(str(p) for p in candidates)
        raise DataError(
            cached,
            f"not found locally (looked in {looked}) and download of {url} failed ({exc}); "
            f"place the file under ${DATA_DIR_ENV}/{dataset}/{name}",
        ) from exc
    if sha256 is not None and (actual := file_sha256(cached)) != sha256:
        cached.unlink()
        raise DataError(url, f"downloaded content has sha256 {actual}, not the pinned {sha256}; not kept")
    return cached


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def resolve(file: DataFile) -> Path:
    """A local path for a registered data file: found, downloaded, or a DataError saying where to get it."""
    if file.url is not None or not file.source:
        return resolve_file(file.dataset, file.name, file.url, file.sha256)
    try:
        return resolve_file(file.dataset, file.name, None)
    except DataError as exc:
        raise DataError(
            exc.path,
            f"{file.dataset} file {file.name!r} not found. It has no direct download URL: get it from {file.source} "
            f"and put it at ${DATA_DIR_ENV}/{file.dataset}/{file.name} (or in the cache folder {file.dataset}/).",
        ) from None


def find_local(file: DataFile) -> Path | None:
    """A registered data file from ``$M2BENCH_DATA_DIR`` or the cache, never downloaded; None when absent."""
    roots = [r for r in (local_data_dir(), cache_dir()) if r is not None]
    return next((r / file.dataset / file.name for r in roots if (r / file.dataset / file.name).is_file()), None)


def custom_data_label(path: str | Path) -> str:
    """How a results table names a user-given data file: ``custom:<file name>@<sha256 prefix>``
    (without the hash when the file is no longer there to hash)."""
    path = Path(path)
    return f"custom:{path.name}@{file_sha256(path)[:12]}" if path.is_file() else f"custom:{path.name}"


def shown_path(path: str | Path) -> str:
    """A path as output meant to be kept shows it: under ``$M2BENCH_DATA_DIR`` as ``$M2BENCH_DATA_DIR/...``,
    under the working directory relative to it, otherwise as given (no machine-specific prefix churns)."""
    path = Path(path).absolute()
    for root, shown in ((local_data_dir(), f"${DATA_DIR_ENV}"), (Path.cwd(), None)):
        if root is not None and path.is_relative_to(root.absolute()):
            relative = path.relative_to(root.absolute()).as_posix()
            return f"{shown}/{relative}" if shown else relative
    return str(path)


def user_path(path: str | Path) -> Path:
    """A path given by the user, relative to the directory they ran the command in.

    ``inspect eval`` changes into the task's folder while building a task, so a relative
    path is first resolved against ``$PWD`` (the shell's directory), then the current one.
    """
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    shell_dir = os.environ.get("PWD")
    if shell_dir and (Path(shell_dir) / path).exists():
        return (Path(shell_dir) / path).resolve()
    return path.resolve()


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; bad lines raise DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    with path.open("rb") as f:
        lineno = 0
        while raw := f.readline(MAX_LINE_BYTES + 1):
            lineno += 1
            if len(raw.rstrip(b"\r\n")) > MAX_LINE_BYTES:
                raise DataError(path, f"line longer than {MAX_LINE_BYTES} bytes", lineno)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(path, f"not valid UTF-8 ({exc.reason} at byte {exc.start})", lineno) from None
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(path, f"invalid JSON ({exc.msg} at column {exc.colno})", lineno) from None
            except (ValueError, RecursionError) as exc:  # e.g. a 5000-digit number, or nesting too deep
                raise DataError(path, f"invalid JSON ({type(exc).__name__}: {str(exc)[:100]})", lineno) from None
            if not isinstance(obj, dict):
                raise DataError(path, f"expected a JSON object, got {type(obj).__name__}", lineno)
            yield lineno, obj


class Row:
    """Typed field access on one parsed row, raising DataError with file:line:field."""

    def __init__(self, obj: dict[str, Any], path: str | Path, line: int | None):
        self.obj, self.path, self.line = obj, path, line

    def error(self, field: str, message: str) -> DataError:
        return DataError(self.path, message, self.line, field)

    def get(self, field: str, kind: type | tuple[type, ...], *, required: bool = True, default: Any = None) -> Any:
        if field not in self.obj or self.obj[field] is None:
            if required:
                raise self.error(field, "missing")
            return default
        value = self.obj[field]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.error(field, f"expected {_kind_name(kind)}, got bool")
        if not isinstance(value, kind):
            raise self.error(field, f"expected {_kind_name(kind)}, got {type(value).__name__}")
        return value

    def text(self, field: str, *, required: bool = True, allow_empty: bool = False) -> str:
        value = self.get(field, str, required=required, default="")
        if required and not allow_empty and not value.strip():
            raise self.error(field, "empty")
        return value

    def number(self, field: str) -> float:
        return float(self.get(field, (int, float)))

    def sub(self, field: str) -> Row:
        return Row(self.get(field, dict), self.path, self.line)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {"str": "string", "dict": "object", "list": "array", "int": "number", "float": "number"}
    return " or ".join(dict.fromkeys(names.get(k.__name__, k.__name__) for k in kinds))
