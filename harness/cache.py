"""On-disk grading cache (SQLite), so verdicts survive restarts and repeated rewards are free.

The key covers everything that changes a verdict: grader model, a fingerprint of what the grader
profile sends (templates, rendering, settings: ``harness.grading.prompt_fingerprint``, so editing a
prompt never returns stale verdicts), grading mode, conversation, response, criterion (text, points,
tags) and, when given, the epoch (repeated epochs are graded afresh unless they share verdicts).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
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

    @staticmethod
    def key(
        grader_id: str,
        prompt_fingerprint: str,
        mode: str,
        conversation: Sequence[dict[str, str]],
        response: str,
        item: RubricItem,
        epoch: int | None = None,
    ) -> str:
        parts = [grader_id, prompt_fingerprint, mode, list(conversation), response, item.to_dict()]
        payload = json.dumps(parts + ([] if epoch is None else [epoch]), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def get(self, key: str) -> tuple[bool, str] | None:
        with self._lock:
            row = self._db.execute("SELECT met, explanation FROM verdicts WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
            return bool(row[0]), row[1]

    def put(self, key: str, met: bool, explanation: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?)", (key, int(met), explanation))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0]


def default_cache() -> GradingCache | None:
    """The shared on-disk cache (``<cache dir>/grading.sqlite``), or None when ``$M2BENCH_GRADING_CACHE=0``."""
    if os.environ.get(CACHE_ENV, "1") == "0":
        return None
    return GradingCache(cache_dir() / "grading.sqlite")
