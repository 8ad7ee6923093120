"""Every follower of the log — processor, destination, export target — has one cursor row here.

Processors' rows are named after the processor (``log_index``, ``analytics``...); destinations
and export targets are ``destination:NAME`` and ``export:NAME``. A follower moves its row in the
same transaction as its own state, so retention (which never drops what a follower has not
passed) and ``/metrics`` (``engagehub_lag_events{kind, name}``) see one truth.
"""

from __future__ import annotations

from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

KINDS = ("processor", "destination", "export")


def key(kind: str, name: str) -> str:
    """The row name of a follower (processors keep their bare names)."""
    if kind not in KINDS:
        raise ValueError(f"unknown follower kind {kind!r}")
    return name if kind == "processor" else f"{kind}:{name}"


def advance(conn: Connection, kind: str, name: str, seq: int) -> None:
    """Set a follower's position (creates its row)."""
    conn.execute(
        "INSERT INTO processor_offsets (name, seq, updated_at, kind) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
        (key(kind, name), seq, now_ms(), kind),
    )


def position(conn: Connection, kind: str, name: str) -> int | None:
    """A follower's position, or None when it has none."""
    value = conn.scalar("SELECT seq FROM processor_offsets WHERE name = ?", (key(kind, name),))
    return None if value is None else int(value)


def remove(conn: Connection, kind: str, name: str) -> None:
    """Forget a follower (a deleted destination no longer holds retention back)."""
    conn.execute("DELETE FROM processor_offsets WHERE name = ?", (key(kind, name),))


def positions(conn: Connection) -> dict[tuple[str, str], int]:
    """Every follower: (kind, name as shown) -> position."""
    out: dict[tuple[str, str], int] = {}
    for name, kind, seq in conn.execute(
        "SELECT name, kind, seq FROM processor_offsets ORDER BY name"
    ).fetchall():
        shown = name if kind == "processor" else str(name).split(":", 1)[1]
        out[(str(kind), shown)] = int(seq)
    return out


def slowest(conn: Connection) -> int | None:
    """The lowest position of any follower (None without followers): retention keeps what
    follows it, and what a destination's queued dead-letter replays still need."""
    low = conn.scalar("SELECT MIN(seq) FROM processor_offsets")
    replay = conn.scalar("SELECT MIN(after_seq) FROM dead_letters WHERE status = 'replay'")
    values = [int(v) for v in (low, replay) if v is not None]
    return min(values) if values else None
