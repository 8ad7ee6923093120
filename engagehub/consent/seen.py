"""The per-import memory of which status each contact point got, on disk, not in the heap.

A million-row file carries about three million (contact, channel, group) keys; a Python dict of
them took ~400 MB. Keys are 64-bit hashes in a throwaway SQLite file with a small page cache,
checked and recorded a chunk at a time, so memory stays flat whatever the file's size.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterable

from engagehub.consent.model import STATUSES
from engagehub.storage.sqlin import chunks, marks

_STATUS_CODE = {s: i for i, s in enumerate(STATUSES)}


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

    def lookup(self, keys: Iterable[int]) -> dict[int, tuple[int, str]]:
        """(row number, status) already recorded for these keys."""
        wanted = list(set(keys))
        found: dict[int, tuple[int, str]] = {}
        for part in chunks(wanted):
            rows = self._db.execute(
                f"SELECT k, row, status FROM seen WHERE k IN ({marks(part)})",
                part,
            )
            for key, row, status in rows:
                found[key] = (row, STATUSES[status])
        return found

    def record(self, items: Iterable[tuple[int, int, str]]) -> None:
        """Remember (key, row number, status) unless the key is known (the first row wins)."""
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT OR IGNORE INTO seen (k, row, status) VALUES (?, ?, ?)",
            # In key order: each B-tree page is visited once per chunk, not once per key.
            sorted((k, row, _STATUS_CODE[status]) for k, row, status in items),
        )
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Drop the file."""
        self._db.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)
