"""A window of the log staged for the fold: work tables, message events, touched messages.

The fold's temporary work tables are made once per connection; each round the window's
message events are read once into ``a_w`` (milestone, dimensions, URL and reason taken from
``properties`` in SQL, provider ids resolved through known aliases), and the messages the
window, the alias merges and the new goal events touch are listed in ``a_touched``: everything
after (``contributions``, ``fold``, ``rollups``) works on those sets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engagehub.analytics.lifecycle import (
    FLAGGED,
    METRICS,
    MILESTONE_OF_ACTION,
    NO_URL,
    REASON_MILESTONES,
    UNIQUE_METRICS,
)
from engagehub.storage.base import Connection
from engagehub.taxonomy import MESSAGE_CHANNELS, get_taxonomy

_TEMP = {
    "a_ms": "event TEXT PRIMARY KEY, milestone TEXT",
    "a_w": "mid TEXT NOT NULL, seq BIGINT NOT NULL, milestone TEXT, t BIGINT NOT NULL, "
    "campaign_id TEXT, campaign_name TEXT, channel TEXT, variation TEXT, step TEXT, "
    "user_id TEXT, contact TEXT, url TEXT, reason TEXT, PRIMARY KEY (mid, seq)",
    "a_touched": "mid TEXT PRIMARY KEY",
    "a_merge": "alias TEXT PRIMARY KEY, target TEXT NOT NULL",
    "a_goal": "campaign_id TEXT NOT NULL, user_id TEXT, contact TEXT, message_id TEXT",
    "a_m": "mid TEXT PRIMARY KEY, campaign_id TEXT, channel TEXT, variation TEXT, step TEXT, "
    + ", ".join(f"{m} BIGINT" for m in UNIQUE_METRICS)
    + ", reason_at BIGINT, reason TEXT, goal_id BIGINT, b0 BIGINT",
    "a_d": "campaign_id TEXT, bucket BIGINT, channel TEXT, variation TEXT, step TEXT, "
    + ", ".join(f"{m} BIGINT" for m in METRICS)
    + ", PRIMARY KEY (campaign_id, bucket, channel, variation, step)",
    "a_dd": "campaign_id TEXT, bucket BIGINT, channel TEXT, variation TEXT, step TEXT, "
    "kind TEXT, detail TEXT, uniques BIGINT, total BIGINT, "
    "PRIMARY KEY (campaign_id, bucket, channel, variation, step, kind, detail)",
    "a_conv": "mid TEXT, t BIGINT, goal_id BIGINT, PRIMARY KEY (mid, t, goal_id)",
}


def prepare(conn: Connection) -> None:
    """Empty work tables for this fold (temporary: per connection, never written to disk).

    Created and filled once per connection (one catalog probe a round, not nine CREATEs and
    the milestone rows again: rounds during ingest are small, so fixed costs count); a rolled
    back first round takes them away again, and the probe then finds none.
    """
    if conn.scalar(_EXISTS[conn.dialect]) is None:
        # SQLite keeps keyed work tables in key order (a GROUP BY over them needs no sort).
        clustered = " WITHOUT ROWID" if conn.dialect == "sqlite" else ""
        for name, columns in _TEMP.items():
            keyed = clustered if "PRIMARY KEY" in columns else ""
            conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({columns}){keyed}")
            conn.execute(f"DELETE FROM {name}")
        conn.executemany("INSERT INTO a_ms (event, milestone) VALUES (?, ?)", _milestones())
        return
    for name in _TEMP:
        if name != "a_ms":
            conn.execute(f"DELETE FROM {name}")


_EXISTS = {
    "sqlite": "SELECT 1 FROM temp.sqlite_master WHERE type = 'table' AND name = 'a_ms'",
    "postgresql": "SELECT to_regclass('pg_temp.a_ms')",
}


def _milestones() -> list[tuple[str, str | None]]:
    """Canonical message events -> milestone (None: the event only adds dimensions)."""
    channels = MESSAGE_CHANNELS | {"message"}
    return sorted(
        (name, MILESTONE_OF_ACTION.get(ev.action))
        for name, ev in get_taxonomy().events.items()
        if ev.channel in channels
    )


def prop(conn: Connection, key: str) -> str:
    """A property of ``e`` (see ``stage``) as text, NULL when missing or empty."""
    if conn.dialect == "sqlite":
        # No instr() pre-check: SQLite keeps a statement's last parses of a JSON text, so a
        # row's properties are parsed once for all its keys, while each instr() scanned the
        # whole text again (stage: 2.96 -> 2.28 ms per 1,000-event window of bench e2e).
        return f"NULLIF(CAST(json_extract(e.pj, '$.{key}') AS TEXT), '')"
    return f"NULLIF(e.pj ->> '{key}', '')"


def _flag(conn: Connection, key: str) -> str:
    """SQL: the property is true (JSON true, the string "true" or 1)."""
    if conn.dialect == "sqlite":
        return f"CAST(json_extract(e.pj, '$.{key}') AS TEXT) IN ('1', 'true')"
    return f"(e.pj -> '{key}') IN ('true'::jsonb, '\"true\"'::jsonb, '1'::jsonb)"


def window_source(conn: Connection, bounds: str, where: str = "1 = 1") -> str:
    """The window's events as ``e`` with parsed properties ``pj`` (parsed once on PostgreSQL).

    PostgreSQL: ``OFFSET 0`` keeps the subquery from being pulled up into the statement, which
    would put ``properties::jsonb`` in place of each ``pj`` and parse a row's text once per
    property read (a dozen in ``stage``).
    """
    if conn.dialect == "sqlite":
        return f"(SELECT e.*, e.properties AS pj FROM events e WHERE {bounds} AND ({where})) e"
    return (
        f"(SELECT e.*, e.properties::jsonb AS pj FROM events e WHERE {bounds} AND ({where}) "
        "OFFSET 0) e"
    )


def stage(conn: Connection, bounds: str, params: list[Any]) -> None:
    """The window's message events into ``a_w``, provider ids resolved through known aliases."""
    flagged = " ".join(
        f"WHEN ms.milestone = '{m}' AND {_flag(conn, key)} THEN '{other}'"
        for m, (key, other) in FLAGGED.items()
    )
    error = (
        f"COALESCE({prop(conn, 'error_message')}, {prop(conn, 'drop_reason')}, "
        f"{prop(conn, 'error_code')})"
    )
    reasons = ", ".join(f"'{m}'" for m in REASON_MILESTONES)
    conn.execute(
        "INSERT INTO a_w (mid, seq, milestone, t, campaign_id, campaign_name, channel, "
        "variation, step, user_id, contact, url, reason) SELECT "
        "COALESCE(a.message_id, e.message_id), e.seq, "
        f"CASE {flagged} ELSE ms.milestone END, e.event_time, "
        f"COALESCE(NULLIF(e.campaign_id, ''), {prop(conn, 'journey_id')}), "
        f"COALESCE({prop(conn, 'campaign_name')}, {prop(conn, 'journey_name')}), "
        "CASE WHEN e.channel <> 'message' THEN NULLIF(e.channel, '') END, "
        f"COALESCE({prop(conn, 'variation_id')}, {prop(conn, 'journey_variation_id')}), "
        f"{prop(conn, 'step_id')}, e.user_id, e.contact, "
        f"CASE WHEN ms.milestone = 'clicked' THEN COALESCE({prop(conn, 'url')}, '{NO_URL}') END, "
        f"CASE WHEN ms.milestone IN ({reasons}) THEN "
        f"substr(COALESCE({prop(conn, 'bounce_reason')}, {error}), 1, 200) END "
        f"FROM {window_source(conn, bounds, 'e.message_id IS NOT NULL')} "
        "JOIN a_ms ms ON ms.event = e.event "
        "LEFT JOIN analytics_message_aliases a ON a.alias = e.message_id",
        params,
    )


def touch_window(conn: Connection) -> None:
    """Messages the staged window, the merges and the new goal events touch."""
    conn.execute("INSERT INTO a_touched (mid) SELECT DISTINCT mid FROM a_w WHERE true")
    for column in ("alias", "target"):
        conn.execute(
            f"INSERT INTO a_touched (mid) SELECT DISTINCT {column} FROM a_merge WHERE true "
            "ON CONFLICT (mid) DO NOTHING"
        )
    if conn.scalar("SELECT 1 FROM a_goal LIMIT 1") is None:
        return
    for column in RECIPIENT_KEYS:
        conn.execute(recipients_sql(column))


RECIPIENT_KEYS = ("user_id", "contact", "message_id")
"""How a goal event names the messages it may convert (its recipient, or the message)."""


def recipients_sql(column: str) -> str:
    """Touch the messages of the goal events' recipients (by ``column``) in their campaigns.

    CROSS JOIN: SQLite walks the few goal events and looks recipients up by index; with no
    statistics on the temporary table it used to scan every lifecycle, every window.
    """
    return (
        "INSERT INTO a_touched (mid) SELECT DISTINCT m.message_id FROM a_goal g "
        f"CROSS JOIN analytics_messages m WHERE m.{column} = g.{column} "
        "AND m.campaign_id = g.campaign_id ON CONFLICT (mid) DO NOTHING"
    )


def lock_touched(conn: Connection) -> None:
    """PostgreSQL: lock the touched lifecycles in key order before their contributions are read
    (shards run side by side, and a message resolved through an alias can be another shard's)."""
    if conn.dialect == "postgresql":
        conn.execute(
            "SELECT message_id FROM analytics_messages WHERE message_id IN "
            "(SELECT mid FROM a_touched) ORDER BY message_id FOR NO KEY UPDATE"
        )


def touch(conn: Connection, ids: Iterable[str]) -> None:
    """Add these messages to the touched set (goal changes)."""
    conn.executemany(
        "INSERT INTO a_touched (mid) VALUES (?) ON CONFLICT (mid) DO NOTHING",
        [(i,) for i in sorted(set(ids))],
    )
