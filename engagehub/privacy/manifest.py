"""Deletion manifests: how erasures reach files an export already wrote.

Export files are immutable, so an erasure does not rewrite them; instead the next export run
of every target writes ``deletions/erasure-<id>.json`` next to the partitions, listing the
``event_id`` of every removed event (ids only: no identifier of the person). A warehouse job
deletes the rows with those ids (``DELETE ... WHERE id IN manifest.event_ids``) and then the
manifest's ``applied`` step is theirs. The erasure also makes the next run write a fresh
``subscription_states`` snapshot: only the newest snapshot is authoritative.
"""

from __future__ import annotations

import orjson
from fsspec import AbstractFileSystem

from engagehub.export import files
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts, now_ms

FORMAT = "engagehub.deletion-manifest/1"


def write_pending(conn: Connection, fs: AbstractFileSystem, root: str, target: str) -> list[str]:
    """Write the manifests this target does not hold yet; returns their paths."""
    rows = conn.all(
        "SELECT d.erasure_id, d.event_ids, d.created_at FROM privacy_deletions d "
        "WHERE NOT EXISTS (SELECT 1 FROM privacy_manifests m WHERE m.target = ? "
        "AND m.erasure_id = d.erasure_id) ORDER BY d.created_at, d.erasure_id",
        (target,),
    )
    written = []
    for row in rows:
        path = f"{root}/deletions/erasure-{row['erasure_id']}.json"
        body = {
            "format": FORMAT,
            "erasure_id": row["erasure_id"],
            "erased_at": format_ts(row["created_at"]),
            "delete_where": "id",  # the event id column of exported files
            "event_ids": orjson.loads(row["event_ids"]),
        }
        files.write_file(fs, path, orjson.dumps(body, option=orjson.OPT_INDENT_2))
        with conn.transaction():
            conn.execute(
                "INSERT INTO privacy_manifests (target, erasure_id, path, written_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (target, erasure_id) DO NOTHING",
                (target, row["erasure_id"], path, now_ms()),
            )
        written.append(path)
    return written
