"""How a CSV import is represented in the log: one small record per chunk, its rows aside.

A chunk of valid rows becomes ONE log event ("Subscriptions Imported", built-in source, dedup
key from the file's SHA-256 and the chunk's row range) and one ``import_batches`` row holding
the rows (normalized identifiers, traits, changes) as compressed JSON, written first in the
same writer. The consent processor turns a record into changes; the profiles processor into
identify calls; neither loads more than one chunk's rows at a time, whatever the window.
"""

from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson

from engagehub.consent.model import Change
from engagehub.model import IncomingEvent, StoredEvent, event_id_for
from engagehub.storage import events as log
from engagehub.storage.base import Connection, Database

IMPORTED = "Subscriptions Imported"
CONTACT_OF = {"email": "email", "sms": "phone", "whatsapp": "phone"}
"""Which identifier column holds the contact point of a channel's status column."""

Row = tuple[int, dict[str, str], dict[str, Any], list[tuple[str, str, str]]]
"""(row number, identifiers, traits, changes as (channel, status, group))."""


@dataclass(slots=True)
class Chunk:
    """One record and its rows, ready to store."""

    event: IncomingEvent
    import_key: str
    first_row: int
    last_row: int
    rows: int
    payload: bytes
    changes: bytes


def chunk(
    import_key: str,
    event_time: int,
    first_row: int,
    last_row: int,
    rows: Sequence[Row],
    allow_resubscribe: bool,
) -> Chunk:
    """The record of rows ``first_row..last_row`` of a file (its dedup key names the range)."""
    changes = sum(len(r[3]) for r in rows)
    summary = {
        "import": import_key,
        "first_row": first_row,
        "last_row": last_row,
        "rows": len(rows),
        "changes": changes,
        "reason": "csv",
        "allow_resubscribe": allow_resubscribe,
    }
    body = {"reason": "csv", "allow_resubscribe": allow_resubscribe, "rows": rows}
    event = IncomingEvent(
        dedup_key=f"csv:{import_key}:rows:{first_row}-{last_row}",
        event_time=event_time,
        raw=orjson.dumps(summary).decode(),
        type="track",
        vendor_event=IMPORTED,
        event=IMPORTED,
        properties=summary,
    )
    flat = _flat(rows)
    payload = zlib.compress(orjson.dumps(body), 1)
    return Chunk(
        event,
        import_key,
        first_row,
        last_row,
        len(rows),
        payload,
        zlib.compress(orjson.dumps(flat), 1),
    )


def _flat(rows: Sequence[Row]) -> list[tuple[str, str, str, str]]:
    """(contact, channel, group, status) of every change of ``rows``, in row order."""
    return [
        (ids[CONTACT_OF[channel]], channel, group, status)
        for _number, ids, _traits, row_changes in rows
        for channel, status, group in row_changes
    ]


def store(conn: Connection, source_id: int, item: Chunk, now: int) -> None:
    """Keep a chunk's rows (before its record is appended; a second upload keeps the first)."""
    conn.execute(
        "INSERT INTO import_batches (event_id, import_key, first_row, last_row, rows_count, "
        "payload, changes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (event_id) DO NOTHING",
        (
            event_id_for(source_id, item.event.dedup_key),
            item.import_key,
            item.first_row,
            item.last_row,
            item.rows,
            item.payload,
            item.changes,
            now,
        ),
    )


def append(conn: Connection, source_id: int, item: Chunk, now: int) -> int:
    """Store a chunk on a writer connection: its rows, then its record; 1 when it was new."""
    with conn.transaction():
        store(conn, source_id, item, now)
        (result,) = log.append(conn, [log.Batch(source_id, item.event.event_time, [item.event])])
    return result.inserted


class Appender:
    """Chunks stored by a thread of their own, so validation goes on while a processor round
    holds the write lock: ``with Appender(db, source) as a: a.put(chunk)``; ``stored`` counts
    the new ones once the ``with`` block is left (an error while storing is raised there)."""

    def __init__(self, db: Database, source_id: int, now: Callable[[], int], depth: int = 32):
        self._db, self._source, self._now = db, source_id, now
        self._queue: queue.Queue[Chunk | None] = queue.Queue(depth)
        self._thread = threading.Thread(target=self._run, name="import-appender", daemon=True)
        self._error: BaseException | None = None
        self.stored = 0

    def __enter__(self) -> Appender:
        self._thread.start()
        return self

    def put(self, item: Chunk) -> int:
        """Queue a chunk (waits while ``depth`` are queued); raises a storing error at once."""
        if self._error is not None:
            raise self._error
        self._queue.put(item)
        return 0

    def _run(self) -> None:
        try:
            with self._db.session() as conn:
                while (item := self._queue.get()) is not None:
                    self.stored += append(conn, self._source, item, self._now())
        except BaseException as exc:  # handed to the importing thread
            self._error = exc
            while self._queue.get() is not None:  # let put() return until the sentinel
                pass

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and exc is None:
            raise self._error


def _column(conn: Connection, ev: StoredEvent, column: str) -> bytes | None:
    blob = conn.scalar(f"SELECT {column} FROM import_batches WHERE event_id = ?", (ev.event_id,))
    return None if blob is None else zlib.decompress(bytes(blob))


def changes_json(conn: Connection, ev: StoredEvent) -> bytes | None:
    """A record's changes as JSON text, ``[[contact, channel, group, status], ...]``."""
    return _column(conn, ev, "changes")


def load(conn: Connection, ev: StoredEvent) -> tuple[bool, list[Row]]:
    """(allow_resubscribe, rows) of a record; no rows when they are gone (retention)."""
    text = _column(conn, ev, "payload")
    if text is None:
        return False, []
    found = orjson.loads(text)
    return bool(found.get("allow_resubscribe")), found["rows"]


def staged(conn: Connection, source: str) -> str:
    """SQL of (contact, channel, group_name, status) per change of the JSON ``source``."""
    if conn.dialect == "postgresql":
        items = f"json_array_elements(CAST({source} AS json)) c"
    else:
        items = f"json_each({source}) c"
    return "SELECT c.value ->> 0, c.value ->> 1, c.value ->> 2, c.value ->> 3 FROM " + items


def is_record(ev: StoredEvent, builtin_source_id: int) -> bool:
    """Whether ``ev`` is an import record (only engagehub itself writes them)."""
    return ev.event == IMPORTED and ev.source_id == builtin_source_id


def changes_of(conn: Connection, ev: StoredEvent) -> list[Change]:
    """The subscription changes a record carries, in row order."""
    text = changes_json(conn, ev)
    if text is None:
        return []
    reason = str(ev.properties.get("reason") or "csv")
    allow = bool(ev.properties.get("allow_resubscribe"))
    return [Change(c, ch, st, g, reason, allow) for c, ch, g, st in orjson.loads(text)]


def identify_props(ids: dict[str, str], traits: dict[str, Any]) -> dict[str, Any]:
    """The properties of a row's identify call: traits, custom identifiers, email, phone."""
    props: dict[str, Any] = dict(traits)
    custom = {k[3:]: v for k, v in ids.items() if k.startswith("id:")}
    if custom:
        props["identifiers"] = custom
    for name in ("email", "phone"):
        if name in ids:
            props[name] = ids[name]
    return props


def identify_event(ev: StoredEvent, row: Row) -> StoredEvent:
    """Row ``row`` of record ``ev`` as an identify call (every row has an identifier)."""
    number, ids, traits, _changes = row
    return StoredEvent(
        ev.seq,
        ev.event_id,
        ev.source_id,
        f"{ev.dedup_key}:{number}",
        "identify",
        IMPORTED,  # marks a row of an import record (``profiles.imports``)
        None,
        None,
        ids.get("user_id"),
        ids.get("anonymous_id"),
        ids.get("email") or ids.get("phone"),
        None,
        None,
        ev.event_time,
        ev.received_at,
        identify_props(ids, traits),
        "",
    )


def erase(conn: Connection, values: set[str], event_id: str | None = None) -> int:
    """Drop every import row naming one of ``values`` (erasure: an identifier, email or phone)
    from the stored rows and changes (of one record, or of all); returns how many rows went.
    Derived tables are the eraser's to clean; a reprocess afterwards no longer sees these rows."""
    if not values:
        return 0
    dropped = 0
    if event_id is None:
        found = conn.execute("SELECT event_id, payload FROM import_batches").fetchall()
    else:
        found = conn.execute(
            "SELECT event_id, payload FROM import_batches WHERE event_id = ?", (event_id,)
        ).fetchall()
    for found_id, payload in found:
        body = orjson.loads(zlib.decompress(bytes(payload)))
        keep = [r for r in body["rows"] if not values.intersection(r[1].values())]
        if len(keep) == len(body["rows"]):
            continue
        dropped += len(body["rows"]) - len(keep)
        body["rows"] = keep
        flat = _flat(keep)
        conn.execute(
            "UPDATE import_batches SET payload = ?, changes = ?, rows_count = ? WHERE event_id = ?",
            (
                zlib.compress(orjson.dumps(body), 1),
                zlib.compress(orjson.dumps(flat), 1),
                len(keep),
                found_id,
            ),
        )
    return dropped


def screen(conn: Connection, event_id: str, erased: Callable[[set[str]], set[str]]) -> int:
    """Drop the rows of one stored record that name an erased identifier (``erased`` says which
    values are); the suppression screen calls it for every import record it lets through."""
    blob = conn.scalar("SELECT payload FROM import_batches WHERE event_id = ?", (event_id,))
    if blob is None:
        return 0
    rows = orjson.loads(zlib.decompress(bytes(blob)))["rows"]
    gone = erased({str(v) for r in rows for v in r[1].values()})
    return erase(conn, gone, event_id) if gone else 0
