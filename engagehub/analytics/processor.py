"""The analytics processor: message lifecycles, campaign rollups and conversions from the log.

Set-based: each window is folded by SQL inside the database (``analytics/staging.py`` stages it,
``fold.py`` upserts lifecycles, ``contributions.py`` and ``rollups.py`` move the campaign counts),
in the transaction that moves the cursor, so it applies exactly once. Python sees only the few rows
that need Python: goal events (their ``--where`` language) and provider-id links.

Sharded by message id (``ENGAGEHUB_PROCESSOR_SHARDS``, see ``processing/shards.py``): each shard
folds its messages' events; goal events and provider-id links, which cross messages, are the
cross-shard pass (``apply_cross``), which never runs beside a shard.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from engagehub.analytics import contributions, fold, rollups, staging
from engagehub.analytics import goals as goal_store
from engagehub.model import StoredEvent
from engagehub.storage import events as log
from engagehub.storage.base import Connection
from engagehub.storage.sqlin import chunks, marks

DERIVED_TABLES = (
    "analytics_messages",
    "analytics_message_hours",
    "analytics_rollups",
    "analytics_rollup_details",
    "analytics_campaign_names",
    "analytics_goal_events",
    "analytics_message_aliases",
)


class AnalyticsProcessor:
    """Derived tables ``analytics_*`` (lifecycles, rollups, campaign totals, goal events)."""

    name = "analytics"
    shard_key = "@message_id"  # a provider id's events hash by it: shards resolve aliases
    # The per-event contract (until every runner hands out windows): the events read are
    # only used for the window's bounds, so they are read without payload.
    where: str | None = "message_id IS NOT NULL OR type = 'track'"
    payload = False

    def apply_window(self, window: Any) -> None:
        """Fold a window of the log (``processing.Window``: bounds usable in SQL)."""
        bounds, params = window.bounds("e")
        sharded = window.shard is not None and window.shard.count > 1
        apply_range(window.conn, bounds, list(params), "shard" if sharded else "all")

    def apply_cross(self, window: Any) -> None:
        """The cross-shard pass: goal events and provider-id links of the whole window."""
        bounds, params = window.bounds("e")
        apply_range(window.conn, bounds, list(params), "cross")

    def cross_pending(self, window: Any) -> bool:
        """Whether the window may hold work for the cross-shard pass: a goal candidate, or a
        provider id not linked yet (a cheap over-estimate; nothing else needs the pass)."""
        bounds, params = window.bounds("e")
        conn = window.conn
        link = staging.prop(conn, "provider_message_id")
        unlinked = conn.scalar(
            f"SELECT 1 FROM {staging.window_source(conn, bounds, _MAY_LINK)} "
            f"WHERE {link} <> e.message_id "
            "AND NOT EXISTS (SELECT 1 FROM analytics_message_aliases a "
            f"WHERE a.alias = {link}) LIMIT 1",
            params,
        )
        names = _goal_names(conn)
        named = marks(names)
        return (
            unlinked is not None
            or conn.scalar(
                f"SELECT 1 FROM events e WHERE {bounds} AND e.type = 'track' "
                f"AND (e.event IN ({named}) OR e.vendor_event IN ({named})) LIMIT 1",
                [*params, *names, *names],
            )
            is not None
        )

    def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        """Fold the positions these events span (the same filter holds in SQL)."""
        if events:
            apply_range(conn, "e.seq >= ? AND e.seq <= ?", [events[0].seq, events[-1].seq])

    def reset(self, conn: Connection) -> None:
        """Forget lifecycles, rollups and goal events (goal definitions stay)."""
        for table in DERIVED_TABLES:
            conn.execute(f"DELETE FROM {table}")


def apply_range(conn: Connection, bounds: str, params: list[Any], part: str = "all") -> None:
    """Fold the events matching ``bounds`` (SQL over ``events e``) into every analytics table.

    ``part``: "all" (one cursor), "shard" (message events only: links and goal events are the
    cross pass's; the touched lifecycles are locked first, as another shard may write one through
    an alias) or "cross" (links and goal events only).
    """
    staging.prepare(conn)
    if part != "shard":
        _learn_aliases(conn, bounds, params)
        _goal_events(conn, bounds, params)
    if part != "cross":
        staging.stage(conn, bounds, params)
    staging.touch_window(conn)
    if part == "shard":
        staging.lock_touched(conn)
    if part == "cross" and conn.scalar("SELECT 1 FROM a_touched LIMIT 1") is None:
        return  # most windows: no link, no goal event (the settle's ~30 statements would run empty)

    def change() -> None:
        fold.merge_aliases(conn)
        fold.fold_window(conn)

    settle(conn, change)


def settle(conn: Connection, change: Callable[[], object]) -> None:
    """Around ``change()``: contributions out, conversions redone, contributions back in."""
    contributions.add(conn, -1)
    change()
    fold.convert(conn)
    contributions.add(conn, 1)
    rollups.write_deltas(conn)


_MAY_LINK = "e.message_id IS NOT NULL AND e.properties LIKE '%provider_message_id%'"
"""Events that may link a provider id (filtered before the properties are parsed)."""


def _learn_aliases(conn: Connection, bounds: str, params: list[Any]) -> None:
    """Provider ids (SendGrid sg_message_id, Twilio MessageSid) linked to our message ids.

    The first link learnt wins; a lifecycle already started under the provider id is merged
    (``a_merge``), and links that pointed at it now point at the message.
    """
    rows = conn.execute(
        f"SELECT e.message_id, {staging.prop(conn, 'provider_message_id')} "
        f"FROM {staging.window_source(conn, bounds, _MAY_LINK)} "
        "JOIN a_ms ms ON ms.event = e.event ORDER BY e.seq",
        params,
    ).fetchall()
    pairs = [(str(m), str(p)) for m, p in rows if p and str(p) != str(m)]
    if not pairs:
        return
    keys = sorted({k for pair in pairs for k in pair})
    known: dict[str, str] = {}
    for part in chunks(keys):
        known.update(
            (str(a), str(m))
            for a, m in conn.execute(
                "SELECT alias, message_id FROM analytics_message_aliases WHERE alias IN "
                f"({marks(part)})",
                part,
            ).fetchall()
        )
    fresh: dict[str, str] = {}
    for mid, provider in pairs:
        if provider not in known and mid not in known:
            known[provider] = fresh[provider] = mid
    links = sorted(fresh.items())
    conn.executemany(
        "INSERT INTO analytics_message_aliases (alias, message_id) VALUES (?, ?) "
        "ON CONFLICT (alias) DO NOTHING",
        links,
    )
    conn.executemany("UPDATE analytics_message_aliases SET message_id = ? WHERE message_id = ?",
                     [(m, a) for a, m in links])  # fmt: skip
    conn.executemany("INSERT INTO a_merge (alias, target) VALUES (?, ?)", links)
    fold.placeholders(conn, [a for a, _ in links])
    conn.execute(
        "DELETE FROM a_merge WHERE alias NOT IN (SELECT message_id FROM analytics_messages "
        "WHERE message_id IN (SELECT alias FROM a_merge))"
    )


def _goal_events(conn: Connection, bounds: str, params: list[Any]) -> None:
    """Goal events of the window kept (and listed in ``a_goal`` so their recipients settle)."""
    goals = goal_store.load(conn)
    names = _goal_names(conn, goals)
    named = marks(names)
    rows = conn.execute(
        f"SELECT {log.COLUMNS} FROM events e WHERE {bounds} AND e.type = 'track' "
        f"AND (e.event IN ({named}) OR e.vendor_event IN ({named})) ORDER BY e.seq",
        [*params, *names, *names],
    ).fetchall()
    if not rows:
        return
    matcher = goal_store.matcher(tuple(goals))
    found = [r for row in rows for r in matcher.rows(log.from_row(row))]
    store_goal_rows(conn, found)


def _goal_names(conn: Connection, goals: list[goal_store.Goal] | None = None) -> list[str]:
    """Event names that can be goal events (every goal's, and the vendors' conversions)."""
    found = goal_store.load(conn) if goals is None else goals
    return sorted(goal_store.VENDOR_CONVERSIONS | {g.event for g in found})


def store_goal_rows(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Keep goal events and list them in ``a_goal`` (their recipients' messages settle)."""
    goal_store.store_rows(conn, rows)
    conn.executemany(
        "INSERT INTO a_goal (campaign_id, user_id, contact, message_id) VALUES (?, ?, ?, ?)",
        [(r[2], r[3], r[4], r[5]) for r in rows],
    )
