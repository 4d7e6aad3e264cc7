"""On-disk grading cache (SQLite), so verdicts survive restarts and repeated rewards are free.

The key covers everything that changes a verdict: grader model, a fingerprint of what the grader
profile sends (templates, rendering, settings: ``harness.grading.prompt_fingerprint``, so editing a
prompt never returns stale verdicts), grading mode, conversation, response, criterion (text, points,
tags) and, when given, the epoch (repeated epochs are graded afresh unless they share verdicts).
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import hashlib
import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path

from harness.data import cache_dir
from harness.rubric import RubricItem

CACHE_ENV = "M2BENCH_GRADING_CACHE"  # "0" turns the on-disk cache off


class GradingCache:
    def __init__(self, path: str | Path | None = None):
        """``path=None`` keeps the cache in memory."""
        self.path = str(path) if path else ":memory:"
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=MEMORY")
        # no fsync per commit (WAL stays consistent; a power loss may drop the last verdicts):
        # with the default FULL each put took ~5 ms and blocked the event loop (harness.tools.bench)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, met INTEGER, explanation TEXT)")
        self.hits = 0
        self.misses = 0
        self._pending: dict[str, tuple[int, str]] = {}  # verdicts stored but not yet written (see put_many)
        self._flush_loop: asyncio.AbstractEventLoop | None = None  # the loop where a write is scheduled
        _OPEN.add(self)

    @staticmethod
    def example_key(
        grader_id: str,
        prompt_fingerprint: str,
        mode: str,
        conversation: Sequence[dict[str, str]],
        response: str,
        epoch: int | None = None,
    ) -> str:
        """The part of the key shared by every criterion of one graded response (hashed once per example)."""
        parts = [grader_id, prompt_fingerprint, mode, list(conversation), response]
        payload = json.dumps(parts + ([] if epoch is None else [epoch]), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    @staticmethod
    def item_key(example_key: str, item: RubricItem) -> str:
        """The key of one criterion of an example (``example_key``)."""
        return hashlib.sha256(example_key.encode() + _criterion_bytes(item.criterion, repr(item.points), item.tags)).hexdigest()

    @classmethod
    def key(
        cls,
        grader_id: str,
        prompt_fingerprint: str,
        mode: str,
        conversation: Sequence[dict[str, str]],
        response: str,
        item: RubricItem,
        epoch: int | None = None,
    ) -> str:
        return cls.item_key(cls.example_key(grader_id, prompt_fingerprint, mode, conversation, response, epoch), item)

    def get(self, key: str) -> tuple[bool, str] | None:
        return self.get_many([key])[0]

    def get_many(self, keys: Sequence[str]) -> list[tuple[bool, str] | None]:
        """The cached verdicts of ``keys`` (None where missing), read in one query per 500 keys."""
        found: dict[str, tuple[bool, str]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = [k for k in keys[start : start + 500] if k not in self._pending]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, met, explanation FROM verdicts WHERE key IN ({marks})", chunk)
                found.update((key, (bool(met), explanation)) for key, met, explanation in rows)
            pending = {k: (bool(m), e) for k in keys if (hit := self._pending.get(k)) is not None for m, e in [hit]}
            out = [found.get(key) or pending.get(key) for key in keys]
            hits = sum(v is not None for v in out)
            self.hits += hits
            self.misses += len(keys) - hits
        return out

    def put_many(self, entries: Sequence[tuple[str, bool, str]], within_s: float = 0.0) -> None:
        """Store (key, met, explanation) verdicts. Readers see them at once. Inside an event loop they are written
        in one transaction with every verdict stored meanwhile: at the loop's next turn, or within ``within_s``
        seconds (fewer, larger transactions; the caller then calls ``flush`` when it stops storing, since a
        write still waiting when the loop closes happens only at ``flush`` or at exit). Outside a loop, at once."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._pending.update((k, (int(m), e)) for k, m, e in entries)
            schedule = loop is not None and self._flush_loop is not loop  # none scheduled in this loop yet
            if schedule:
                self._flush_loop = loop
        if loop is None:
            self.flush()
        elif schedule and within_s > 0:
            loop.call_later(within_s, self.flush)
        elif schedule:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write the verdicts stored since the last write, in one transaction."""
        with self._lock:
            self._flush_loop = None
            if not self._pending:
                return
            rows = [(k, m, e) for k, (m, e) in self._pending.items()]
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?)", rows)
            self._pending.clear()

    def __len__(self) -> int:
        self.flush()
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]


@functools.lru_cache(maxsize=65536)
def _criterion_bytes(criterion: str, points: str, tags: tuple[str, ...]) -> bytes:
    """A criterion's part of its keys (text, points as written: 5 and 5.0 differ, tags), length-prefixed so no two
    items share it; built once per item, since every response to a prompt is graded against the same items."""
    fields = [criterion, points, *tags]
    return "".join(f"{len(f)}:{f}" for f in fields).encode("utf-8", "surrogatepass")


_OPEN: weakref.WeakSet[GradingCache] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    for cache in list(_OPEN):
        cache.flush()


def default_cache() -> GradingCache | None:
    """The shared on-disk cache (``<cache dir>/grading.sqlite``), or None when ``$M2BENCH_GRADING_CACHE=0``."""
    if os.environ.get(CACHE_ENV, "1") == "0":
        return None
    return GradingCache(cache_dir() / "grading.sqlite")
