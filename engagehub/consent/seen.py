"""The per-import memory of which status each contact point got, on disk, not in the heap.

A million-row file carries about three million (contact, channel, group) keys; a Python dict of
them took ~400 MB. Keys are 64-bit hashes in a throwaway SQLite file with a small page cache,
checked and recorded a chunk at a time, so memory stays flat whatever the file's size. A Bloom
filter in front of it (8 MB of bits, three probes per key) answers "never seen" for nearly every
key of a file without duplicates, so only the few keys it may have seen are looked up there.
Recorded keys wait in memory (``PENDING`` of them at most) and go to the table in one sorted
batch: random keys a chunk at a time touched a page of the table per key (a miss past the
small cache), a batch of ~16 chunks touches each page about once.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterable

import numpy as np

from engagehub.consent.model import STATUSES
from engagehub.storage.sqlin import chunks, marks

_STATUS_CODE = {s: i for i, s in enumerate(STATUSES)}
_BITS = 26
"""The filter has 2**26 bits (8 MB): about 1% false positives at 6 million keys."""
_MASK = np.uint64((1 << _BITS) - 1)
_SHIFTS = (np.uint64(0), np.uint64(19), np.uint64(38))
PENDING = 100_000
"""Recorded keys kept in memory before they are written to the table (~15 MB)."""


def seen_key(contact: str, channel: str, group: str) -> int:
    """A 64-bit key for one subscription (collisions are ~1e-7 likely at 10 million keys)."""
    return hash((contact, channel, group))


class SeenStatuses:
    """First row and status per subscription key within one import."""

    def __init__(self) -> None:
        handle, self._path = tempfile.mkstemp(prefix="engagehub-seen-", suffix=".db")
        os.close(handle)
        self._db = sqlite3.connect(self._path, isolation_level=None)
        for pragma in (
            "PRAGMA journal_mode=OFF",
            "PRAGMA synchronous=OFF",
            "PRAGMA cache_size=-8192",
        ):
            self._db.execute(pragma)
        self._db.execute(
            "CREATE TABLE seen (k INTEGER PRIMARY KEY, row INTEGER NOT NULL, status INTEGER)"
        )
        self._filter = np.zeros(1 << (_BITS - 3), dtype=np.uint8)
        self._pending: dict[int, tuple[int, int]] = {}

    @staticmethod
    def _probes(keys: list[int]) -> list[np.ndarray]:
        """The filter's three bit positions of each key (slices of its 64-bit hash)."""
        hashed = np.array(keys, dtype=np.int64).view(np.uint64)
        return [(hashed >> shift) & _MASK for shift in _SHIFTS]

    def _maybe(self, keys: list[int]) -> list[int]:
        """The keys the filter may have seen (all the others certainly were not recorded)."""
        if not keys:
            return []
        hit = np.ones(len(keys), dtype=bool)
        for bit in self._probes(keys):
            hit &= ((self._filter[bit >> np.uint64(3)] >> (bit & np.uint64(7))) & 1).astype(bool)
        return [k for k, h in zip(keys, hit.tolist(), strict=True) if h]

    def lookup(self, keys: Iterable[int]) -> dict[int, tuple[int, str]]:
        """(row number, status) already recorded for these keys."""
        wanted = self._maybe(list(set(keys)))
        found: dict[int, tuple[int, str]] = {}
        pending = self._pending
        for key in wanted:
            waiting = pending.get(key)
            if waiting is not None:
                found[key] = (waiting[0], STATUSES[waiting[1]])
        for part in chunks([k for k in wanted if k not in found]):
            rows = self._db.execute(
                f"SELECT k, row, status FROM seen WHERE k IN ({marks(part)})",
                part,
            )
            for key, row, status in rows:
                found[key] = (row, STATUSES[status])
        return found

    def record(self, items: Iterable[tuple[int, int, str]]) -> None:
        """Remember (key, row number, status) unless the key is known (the first row wins)."""
        rows = sorted((k, row, _STATUS_CODE[status]) for k, row, status in items)
        if not rows:
            return
        for bit in self._probes([r[0] for r in rows]):
            np.bitwise_or.at(
                self._filter,
                bit >> np.uint64(3),
                np.left_shift(1, bit & np.uint64(7)).astype(np.uint8),
            )
        pending = self._pending
        for k, row, status in rows:
            pending.setdefault(k, (row, status))
        if len(pending) >= PENDING:
            self._flush()

    def _flush(self) -> None:
        """Write the waiting keys to the table in key order (each page visited once)."""
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT OR IGNORE INTO seen (k, row, status) VALUES (?, ?, ?)",
            sorted((k, row, status) for k, (row, status) in self._pending.items()),
        )
        self._db.execute("COMMIT")
        self._pending.clear()

    def close(self) -> None:
        """Drop the file."""
        self._db.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)
