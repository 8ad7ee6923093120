"""The per-import memory of which status each contact point got: sorted numpy runs, then disk.

A million-row file carries about three million (contact, channel, group) keys; a Python dict of
them took ~400 MB. Keys are 64-bit hashes kept in sorted numpy runs (8 bytes of key and 4 of
row number and status each: ~35 MB for a 1M-row file), merged while of similar size (a key is
copied a few times, never more than ``RUN`` keys at once) and searched with ``searchsorted``;
no per-key Python object, no per-key SQL. Past ``MEMORY`` keys (a file of several million
rows) they go, sorted, to a throwaway SQLite table, so memory stays bounded whatever the
file's size; a Bloom filter over the keys written there (8 MB of bits, three probes per key)
answers "never seen" for nearly every key, so only its few hits are looked up in the table.
(Until session 7 every key went to the table in batches of 100,000: its ``executemany``, about
7 µs of the importer's CPU per CSV row, was the largest part of the check.)
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
RUN = 1 << 19
"""Runs are merged up to this many keys (a merge's temporary arrays stay ~12 MB)."""
MEMORY = 6_000_000
"""Keys kept in runs before they are written to the table (~72 MB)."""

Run = tuple[np.ndarray, np.ndarray]
"""Sorted keys (int64) and, per key, ``row << 2 | status`` (uint32)."""


def seen_key(contact: str, channel: str, group: str) -> int:
    """A 64-bit key for one subscription (collisions are ~1e-7 likely at 10 million keys)."""
    return hash((contact, channel, group))


def _merge(a: Run, b: Run) -> Run:
    """One sorted run of two, ``a`` the older (a key in both: ``a``'s first, so it wins)."""
    at = np.searchsorted(a[0], b[0], side="right") + np.arange(len(b[0]))
    keys = np.empty(len(a[0]) + len(b[0]), dtype=np.int64)
    values = np.empty(len(keys), dtype=np.uint32)
    rest = np.ones(len(keys), dtype=bool)
    rest[at] = False
    keys[at], values[at] = b
    keys[rest], values[rest] = a
    return keys, values


class SeenStatuses:
    """First row and status per subscription key within one import."""

    def __init__(self) -> None:
        self._runs: list[Run] = []
        self._held = 0
        self._db: sqlite3.Connection | None = None  # the table, made at the first spill
        self._path = ""
        self._filter = np.zeros(0, dtype=np.uint8)

    @staticmethod
    def _probes(keys: np.ndarray) -> list[np.ndarray]:
        """The filter's three bit positions of each key (slices of its 64-bit hash)."""
        hashed = keys.view(np.uint64)
        return [(hashed >> shift) & _MASK for shift in _SHIFTS]

    def _maybe(self, keys: np.ndarray) -> np.ndarray:
        """The keys the filter may have seen (all the others certainly are not in the table)."""
        hit = np.ones(len(keys), dtype=bool)
        for bit in self._probes(keys):
            hit &= ((self._filter[bit >> np.uint64(3)] >> (bit & np.uint64(7))) & 1).astype(bool)
        return keys[hit]

    def lookup(self, keys: Iterable[int]) -> dict[int, tuple[int, str]]:
        """(row number, status) already recorded for these keys."""
        wanted = np.unique(np.fromiter(keys, dtype=np.int64))
        found: dict[int, tuple[int, str]] = {}
        if not len(wanted):
            return found
        missing = np.ones(len(wanted), dtype=bool)
        for run_keys, run_values in self._runs:
            at = np.minimum(np.searchsorted(run_keys, wanted), len(run_keys) - 1)
            hit = (run_keys[at] == wanted) & missing  # runs oldest first: the first row wins
            if hit.any():
                for key, value in zip(
                    wanted[hit].tolist(), run_values[at[hit]].tolist(), strict=True
                ):
                    found[key] = (value >> 2, STATUSES[value & 3])
                missing &= ~hit
        if self._db is not None:
            maybe = self._maybe(wanted[missing]).tolist()
            for part in chunks(maybe):
                rows = self._db.execute(
                    f"SELECT k, row, status FROM seen WHERE k IN ({marks(part)})", part
                )
                for key, row, status in rows:
                    found[key] = (row, STATUSES[status])
        return found

    def record(self, items: Iterable[tuple[int, int, str]]) -> None:
        """Remember (key, row number, status) of keys not recorded yet (``lookup`` said so;
        within ``items`` each key once)."""
        listed = list(items)
        if not listed:
            return
        keys = np.fromiter((k for k, _row, _status in listed), dtype=np.int64, count=len(listed))
        values = np.fromiter(
            (row << 2 | _STATUS_CODE[status] for _k, row, status in listed),
            dtype=np.uint32,
            count=len(listed),
        )
        order = np.argsort(keys, kind="stable")
        self._runs.append((keys[order], values[order]))
        self._held += len(listed)
        runs = self._runs
        while (
            len(runs) > 1
            and len(runs[-2][0]) <= 2 * len(runs[-1][0])
            and len(runs[-2][0]) + len(runs[-1][0]) <= RUN
        ):
            last = runs.pop()
            runs[-1] = _merge(runs[-1], last)
        if self._held >= MEMORY:
            self._spill()

    def _spill(self) -> None:
        """Write the runs' keys to the table in key order (each page visited once)."""
        if self._db is None:
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
        keys = np.concatenate([k for k, _v in self._runs])
        values = np.concatenate([v for _k, v in self._runs])
        order = np.argsort(keys, kind="stable")
        keys, values = keys[order], values[order]
        for bit in self._probes(keys):
            np.bitwise_or.at(
                self._filter,
                bit >> np.uint64(3),
                np.left_shift(1, bit & np.uint64(7)).astype(np.uint8),
            )
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT OR IGNORE INTO seen (k, row, status) VALUES (?, ?, ?)",
            zip(keys.tolist(), (values >> 2).tolist(), (values & 3).tolist(), strict=True),
        )
        self._db.execute("COMMIT")
        self._runs, self._held = [], 0

    def close(self) -> None:
        """Drop the table's file, if any."""
        self._runs = []
        if self._db is not None:
            self._db.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)
