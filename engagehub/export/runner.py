"""Incremental export runs: a cursor per target, a write-ahead range, files before the cursor."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import fsspec
import pyarrow as pa
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from engagehub.destinations import patterns
from engagehub.errors import PayloadError
from engagehub.export import currents, files, schema
from engagehub.storage import events as log
from engagehub.storage import followers, logread
from engagehub.storage.base import Connection
from engagehub.timeutil import now_ms

Format = Literal["parquet", "avro"]
FORMATS = ("parquet", "avro")
LAYOUTS = ("canonical", "currents")
"""``canonical``: folders per canonical (else vendor) name, one engagehub schema; ``currents``:
Braze's own types and records (``export.currents``)."""
ENCODERS = min(4, os.cpu_count() or 1)
"""Partitions encoded at once (threads: the encoders run outside the GIL)."""
READ_PIECE = 50_000
"""Log positions from which a range is read in parallel pieces."""
DEFAULT_LAYOUT = "currents"
"""The layout of a new export target when none is asked for (an existing target keeps its own)."""
CHUNK = 200_000
"""Log positions per write-ahead range (bounds memory and the work a crash repeats)."""


@dataclass(slots=True)
class ExportResult:
    """What one run did."""

    target: str
    after: int
    upto: int
    events: int = 0
    files: list[str] = field(default_factory=list)
    snapshot: str | None = None
    layout: str = "canonical"


def open_output(out: str) -> tuple[AbstractFileSystem, str]:
    """The filesystem and root path of OUT_DIR (a local path or any fsspec URL, e.g. s3://)."""
    try:
        fs, root = fsspec.core.url_to_fs(out)
    except (ValueError, ImportError) as exc:
        raise PayloadError(
            f"cannot open export target {out!r}: {exc}", field="out", value=out
        ) from None
    if isinstance(fs, LocalFileSystem):
        root = os.path.abspath(root)
    return fs, root.rstrip("/")


def target_name(fs: AbstractFileSystem, root: str, fmt: str, events: str | None) -> str:
    """The cursor key of an export target: where, which format, which events."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return f"{fmt}:{protocol}://{root}:{events or '*'}"


def layout_name(base: str, layout: str) -> str:
    """The cursor key of a target in ``layout`` (canonical targets keep the unsuffixed key)."""
    return base + (":currents" if layout == "currents" else "")


def stored_layout(conn: Connection, base: str) -> str | None:
    """The layout an existing target was written in, or None for a new target.

    A canonical cursor wins when both exist: runs without ``--layout`` wrote canonical before
    the default changed, so such a target goes on writing what it wrote."""
    names = {layout_name(base, layout): layout for layout in LAYOUTS}
    rows = conn.all("SELECT name FROM export_targets WHERE name IN (?, ?)", tuple(names))
    found = {names[str(r["name"])] for r in rows}
    for layout in LAYOUTS:
        if layout in found:
            return layout
    return None


def _target(conn: Connection, name: str) -> dict[str, Any]:
    conn.execute(
        "INSERT INTO export_targets (name, seq, updated_at) VALUES (?, 0, ?) "
        "ON CONFLICT (name) DO NOTHING",
        (name, now_ms()),
    )
    row = conn.one(
        "SELECT seq, pending_upto, snapshot_seq FROM export_targets WHERE name = ?", (name,)
    )
    assert row is not None
    followers.advance(conn, "export", name, int(row["seq"]))  # retention keeps what it needs
    return row


def file_path(root: str, event: str, date: str, after: int, upto: int, fmt: str) -> str:
    """Deterministic name for one partition's file of one seq range (a rerun overwrites it)."""
    return f"{root}/event_type={event}/date={date}/seq-{after + 1:012d}-{upto:012d}.{fmt}"


def read_range(conn: Connection, events: str | None, after: int, upto: int) -> pa.Table:
    """The log rows of ``after < seq <= upto`` matching ``events``, as Arrow, in log order.

    A long range is read as up to ``ENCODERS`` consecutive pieces at once
    (``logread.arrow_between``).
    """
    where, params = patterns.sql(events)
    pieces = max(1, min(ENCODERS, (upto - after) // READ_PIECE))
    return logread.arrow_between(
        conn, schema.LOG_SQL, schema.READ_SCHEMA, after, upto, where, params, pieces
    )


def export_range(
    conn: Connection,
    fs: AbstractFileSystem,
    root: str,
    fmt: Format,
    events: str | None,
    after: int,
    upto: int,
    layout: str = "canonical",
) -> tuple[int, list[str]]:
    """Write every partition file of ``after < seq <= upto``; returns (events, paths)."""
    table = read_range(conn, events, after, upto)
    if events:
        keep = [
            patterns.matches(events, e, v)
            for e, v in zip(
                table.column("event").to_pylist(),
                table.column("vendor_event").to_pylist(),
                strict=True,
            )
        ]
        table = table.filter(pa.array(keep, pa.bool_()))
    if table.num_rows == 0:
        return 0, []
    names = None
    from_braze: dict[int, tuple[str, str]] = {}
    if layout == "currents":
        from_braze = currents.braze_rows(conn, after, upto)
        names = currents.folder_names(table, from_braze)

    count = table.num_rows
    ranged = files.SortedRange(table, names, ENCODERS)
    del table  # the sorted copy is all the encoders need
    jobs = [
        (
            file_path(root, event, date, after, upto, fmt),
            index,
            event,
            schema.metadata(event, after, upto),
        )
        for index, (event, date) in enumerate(ranged.keys)
    ]

    staging = files.Staging(fs)

    def encode(job: tuple[str, int, str, dict[str, str]]) -> None:
        path, index, event, meta = job
        part, parsed = ranged.part(index)
        staging.put(path, _encode(part, parsed, event, fmt, meta, layout, from_braze))

    # Arrow's column builders and Parquet encoder release the GIL: partitions encode in
    # parallel, and each is on disk while the others encode.
    try:
        with ThreadPoolExecutor(ENCODERS) as pool:
            list(pool.map(encode, jobs))
        staging.publish()
    except BaseException:
        staging.discard()
        raise
    return count, [path for path, *_ in jobs]


def _encode(
    part: pa.Table,
    parsed: pa.Table | None,
    event: str,
    fmt: Format,
    meta: dict[str, str],
    layout: str,
    from_braze: dict[int, tuple[str, str]],
) -> bytes:
    """One partition's file contents in the layout and format asked for (``parsed``: its
    properties as parsed with the range's, or None to parse them here)."""
    if layout == "currents" and currents.is_braze_type(event):
        if fmt == "parquet":
            table = currents.arrow_table(part, event, from_braze, parsed)
            return currents.parquet_bytes(table, meta)
        return currents.avro_file(part, event, from_braze, meta, parsed)
    if parsed is None:
        parsed = files.parse_properties(part.column("properties"))
    part = files.build_table(part, parsed)
    if fmt == "parquet":
        return files.parquet_bytes(part, meta)
    shaped = currents.canonical_avro(part, event, meta, parsed) if layout == "canonical" else None
    return shaped if shaped is not None else files.avro_bytes(part, event, meta)


def run(
    conn: Connection,
    out: str,
    fmt: Format = "parquet",
    since: int | None = None,
    events: str | None = None,
    chunk: int = CHUNK,
    upto: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    layout: str | None = "canonical",
) -> ExportResult:
    """Export everything after the target's cursor (or ``since``) up to the current log head.

    ``layout`` None: the layout the target was written in, ``DEFAULT_LAYOUT`` for a new one.

    Each range is first recorded as pending, then its files are written and renamed, and only
    then the cursor moves: a crash leaves the range pending and the next run rewrites the same
    files before going on, so there are no duplicates and no gaps.
    """
    if fmt not in FORMATS:
        raise PayloadError(f"unknown format {fmt!r}; expected parquet or avro", field="format")
    if layout is not None and layout not in LAYOUTS:
        raise PayloadError(
            f"unknown layout {layout!r}; expected canonical or currents",
            field="layout",
            value=layout,
        )
    patterns.split(events)
    fs, root = open_output(out)
    base = target_name(fs, root, fmt, events)
    if layout is None:
        layout = stored_layout(conn, base) or DEFAULT_LAYOUT
    name = layout_name(base, layout)
    with conn.transaction():
        target = _target(conn, name)
        if since is not None:
            conn.execute(
                "UPDATE export_targets SET seq = ?, pending_upto = NULL WHERE name = ?",
                (since, name),
            )
            followers.advance(conn, "export", name, since)
            target["seq"], target["pending_upto"] = since, None
        head = log.head(conn) if upto is None else min(upto, log.head(conn))
    cursor = int(target["seq"])
    result = ExportResult(name, cursor, cursor, layout=layout)
    pending = target["pending_upto"]
    while True:
        end = int(pending) if pending is not None else min(head, cursor + chunk)
        if end <= cursor:
            break
        with conn.transaction():
            conn.execute(
                "UPDATE export_targets SET pending_upto = ?, updated_at = ? WHERE name = ?",
                (end, now_ms(), name),
            )
        count, paths = export_range(conn, fs, root, fmt, events, cursor, end, layout)
        with conn.transaction():
            conn.execute(
                "UPDATE export_targets SET seq = ?, pending_upto = NULL, files = files + ?, "
                "events = events + ?, updated_at = ? WHERE name = ?",
                (end, len(paths), count, now_ms(), name),
            )
            followers.advance(conn, "export", name, end)
        result.events += count
        result.files.extend(paths)
        result.upto = cursor = end
        pending = None
        if progress is not None:
            progress(cursor, head)
    from engagehub.privacy import manifest

    result.files.extend(manifest.write_pending(conn, fs, root, name))  # erasures since last run
    target["snapshot_seq"] = conn.scalar(
        "SELECT snapshot_seq FROM export_targets WHERE name = ?", (name,)
    )
    result.snapshot = snapshot(conn, fs, root, fmt, name, int(target["snapshot_seq"]))
    return result


def snapshot(
    conn: Connection, fs: AbstractFileSystem, root: str, fmt: Format, name: str, last: int
) -> str | None:
    """Write the subscription states table when it changed since the last snapshot."""
    seq = int(conn.scalar("SELECT COALESCE(MAX(seq), 0) FROM subscription_states") or 0)
    if seq <= last:
        return None
    rows = conn.execute(
        "SELECT contact, channel, group_name, status, reason, source, event_time, seq, "
        "updated_at FROM subscription_states ORDER BY contact, channel, group_name"
    ).fetchall()
    cols = list(zip(*rows, strict=True))
    arrays = [
        pa.array(values, pa.int64()).cast(f.type)
        if f.type == schema.TS
        else pa.array(values, f.type)
        for f, values in zip(schema.SUBSCRIPTION_SCHEMA, cols, strict=True)
    ]
    table = pa.Table.from_arrays(arrays, schema=schema.SUBSCRIPTION_SCHEMA)
    meta = {
        "engagehub.schema_version": str(schema.SCHEMA_VERSION),
        "engagehub.snapshot_seq": str(seq),
    }
    path = f"{root}/subscription_states/snapshot-{seq:012d}.{fmt}"
    if fmt == "parquet":
        data = files.parquet_bytes(table, meta)
    else:
        data = files.snapshot_avro(table, meta)
    files.write_file(fs, path, data)
    with conn.transaction():
        conn.execute("UPDATE export_targets SET snapshot_seq = ? WHERE name = ?", (seq, name))
    return path
