"""One round's slice of the log, read once for every processor of the round.

Processors get a ``Window`` instead of a list of events. Set-based processors put
``window.bounds()`` into their own SQL (``INSERT ... SELECT ... FROM events WHERE <bounds>
GROUP BY ... ON CONFLICT DO UPDATE``) and never see a row in Python; state machines ask for the
few columns (``rows``) or the few decoded events (``events``) they need. Decoded events are cached
per window, so a payload is parsed at most once per round however many processors read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engagehub.model import StoredEvent
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import chunks, where_in

__all__ = ["Shard", "Window"]


class Shard:
    """Part ``index`` of ``count`` of the log, split by a key expression (per-key order kept)."""

    __slots__ = ("count", "index", "key")

    def __init__(self, key: str, count: int, index: int) -> None:
        if not 0 <= index < count:
            raise ValueError(f"shard index {index} outside 0..{count - 1}")
        self.key, self.count, self.index = key, count, index

    def predicate(self, conn: Connection, alias: str) -> str:
        """SQL that is true for the events of this shard (same key -> same shard, always)."""
        if self.count == 1:
            return "1 = 1"
        prefix = f"{alias}." if alias else ""
        key = f"COALESCE(CAST({self.key.replace('@', prefix)} AS TEXT), '')"
        if conn.dialect == "postgresql":
            return f"mod(abs(hashtext({key})::bigint), {self.count}) = {self.index}"
        return f"(eh_hash({key}) % {self.count}) = {self.index}"


class _Cache:
    """Decoded events of one (after, upto) range, shared by the views of a round."""

    def __init__(self) -> None:
        self.full: dict[int, StoredEvent] = {}
        self.light: dict[int, StoredEvent] = {}


class Window:
    """Log positions ``after < seq <= upto`` (optionally one shard), in the round's transaction."""

    def __init__(
        self,
        conn: Connection,
        after: int,
        upto: int,
        shard: Shard | None = None,
        _cache: _Cache | None = None,
    ) -> None:
        self.conn = conn
        self.after = after
        self.upto = upto
        self.shard = shard
        self._cache = _cache or _Cache()

    def __len__(self) -> int:
        """Positions the window spans (not all need be this shard's or match a filter)."""
        return max(0, self.upto - self.after)

    def view(self, after: int, shard: Shard | None = None) -> Window:
        """The same round from a later cursor (or for one shard), sharing decoded events."""
        return Window(self.conn, max(after, self.after), self.upto, shard, self._cache)

    def bounds(self, alias: str = "") -> tuple[str, list[Any]]:
        """SQL condition and parameters selecting this window's events (use in your own SQL).

        ``alias`` is the table alias of ``events`` in the caller's statement, if any.
        """
        seq = f"{alias}.seq" if alias else "seq"
        sql = f"{seq} > ? AND {seq} <= ?"
        if self.shard is not None and self.shard.count > 1:
            sql += " AND " + self.shard.predicate(self.conn, alias)
        return sql, [self.after, self.upto]

    def table(self, alias: str = "") -> str:
        """``events`` for a FROM clause that the window's ``seq`` range must drive.

        On SQLite it is ``events NOT INDEXED``: the rowid range is still used, but no other
        index. Without it a filter such as ``source_id IN (...) AND dedup_key LIKE 'doi:%'``
        made SQLite (no statistics on a fresh database) walk the ``(source_id, dedup_key)``
        index over the whole source instead of the window's few thousand positions.
        PostgreSQL's log has no index but ``seq``'s.
        """
        named = f"events AS {alias}" if alias else "events"
        return f"{named} NOT INDEXED" if self.conn.dialect == "sqlite" else named

    def select(
        self, columns: str, where: str | None = None, params: Sequence[Any] = ()
    ) -> tuple[str, list[Any]]:
        """The statement ``rows`` runs: ``columns`` of the window's events matching ``where``."""
        cond, args = self.bounds()
        sql = f"SELECT {columns} FROM {self.table()} WHERE {cond}"
        if where:
            sql += f" AND ({where})"
            args = [*args, *params]
        return sql + " ORDER BY seq", args

    def rows(
        self, columns: str, where: str | None = None, params: Sequence[Any] = ()
    ) -> list[tuple[Any, ...]]:
        """Plain tuples of ``columns`` (SQL expressions over ``events``) in log order;
        ``params`` fill the ``?`` of ``where``."""
        sql, args = self.select(columns, where, params)
        return list(self.conn.execute(sql, args).fetchall())

    def seqs(self, where: str | None = None, params: Sequence[Any] = ()) -> list[int]:
        """Positions of the window's events matching ``where``, in log order."""
        return [int(r[0]) for r in self.rows("seq", where, params)]

    def events(
        self, where: str | None = None, payload: bool = True, params: Sequence[Any] = ()
    ) -> list[StoredEvent]:
        """Events matching ``where`` in log order; ``payload=False`` leaves properties/raw empty.

        Read-only: the same objects go to every processor of the round.
        """
        full, light = self._cache.full, self._cache.light
        into = full if payload else light
        if not full and (payload or not light):
            # First reader of the round: one query, straight into the cache.
            columns = log.COLUMNS if payload else log.LIGHT_COLUMNS
            found = [log.from_row(r) for r in self.rows(columns, where, params)]
            for ev in found:
                into[ev.seq] = ev
            return found

        def cached(seq: int) -> StoredEvent | None:
            return full.get(seq) or (None if payload else light.get(seq))

        wanted = self.seqs(where, params)
        missing = [s for s in wanted if cached(s) is None]
        columns = log.COLUMNS if payload else log.LIGHT_COLUMNS
        for part in chunks(missing):
            rows = self.conn.execute(
                f"SELECT {columns} FROM events WHERE {where_in('seq', part)}", part
            ).fetchall()
            for r in rows:
                ev = log.from_row(r)
                into[ev.seq] = ev
        return [e for s in wanted if (e := cached(s)) is not None]
