"""CSV upload of profiles and subscription states: streamed, validated row by row.

Columns: identifiers ``user_id``, ``anonymous_id``, ``email``, ``phone`` and ``id:<kind>``
(custom identifiers); ``email_subscription_status``, ``sms_subscription_status``,
``whatsapp_subscription_status`` (subscribed | unsubscribed | did-not-subscribe | blank =
unchanged); groups ``<channel>_group:<name>``; any other column is a custom trait. A row with
any error is rejected whole and reported (row number, column, value, reason, the original row);
the report's extra columns are ignored on re-upload, so a fixed report can be uploaded as is.
Each chunk of valid rows becomes one log record with its rows aside (``consent.batches``); its
dedup key comes from the file's SHA-256 and the chunk's row range: the same file uploaded again
changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from engagehub import csvsafe
from engagehub.consent import batches
from engagehub.consent.batches import CONTACT_OF
from engagehub.consent.csv_columns import CONTACT, ID, SKIP, STATUS, TRAIT, ColumnPlan, plan_block
from engagehub.consent.model import Change, contact_for, resubscribe_refused, status_of
from engagehub.consent.seen import SeenStatuses, seen_key
from engagehub.csvsafe import unneutralize
from engagehub.errors import PayloadError

STATUS_COLUMNS = {
    "email_subscription_status": "email",
    "sms_subscription_status": "sms",
    "whatsapp_subscription_status": "whatsapp",
}
GROUP_PREFIXES = {"email_group:": "email", "sms_group:": "sms", "whatsapp_group:": "whatsapp"}
IDENTIFIERS = ("user_id", "anonymous_id", "email", "phone")
REPORT_COLUMNS = ("row_number", "column", "value", "reason")
TEMPLATE = (
    "user_id",
    "anonymous_id",
    "email",
    "phone",
    "email_subscription_status",
    "sms_subscription_status",
    "whatsapp_subscription_status",
    "email_group:newsletter",
    "first_name",
    "last_name",
)
BLOCK = 1024
"""Rows validated together in columns (``csv_columns``)."""
ERASED_REASON = "not imported: an identifier of this row belongs to an erased person"
"""An erased person's row is reported by number only: the report keeps none of its values."""


@dataclass(slots=True)
class RowError:
    """One problem with one row (a row may have several)."""

    row_number: int
    column: str
    value: str
    reason: str
    original: Sequence[str]


class ErrorSink(Protocol):
    """Where rejected rows go (a CSV file, the imports table)."""

    def start(self, header: list[str]) -> None:
        """Called once with the file's header, before the first error."""

    def add(self, error: RowError) -> None:
        """Record one error."""


@dataclass(slots=True)
class ImportReport:
    """What an import did."""

    rows_read: int = 0
    rows_applied: int = 0
    rows_rejected: int = 0
    changes: int = 0
    stored: int = 0
    """Log records newly stored, one per chunk (a re-upload of the same file stores none)."""
    header: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Row:
    number: int
    cells: list[str]
    changes: list[Change]
    ids: dict[str, str]
    traits: dict[str, Any]


def file_digest(path: Path) -> str:
    """SHA-256 of the file: part of every dedup key of its events."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class CsvImport:
    """Turns rows into validated changes and events; the caller stores them."""

    columns = True
    """Validate blocks of rows in columns (``csv_columns``); False: row by row (the reference
    the column path is tested against)."""

    def __init__(
        self, digest: str, event_time: int, region: str = "US", allow_resubscribe: bool = False
    ) -> None:
        self.key = digest[:20]
        self.event_time = event_time
        self.region = region
        self.allow = allow_resubscribe
        self.header: list[str] = []
        self.seen = SeenStatuses()
        self._columns: list[ColumnPlan] = []
        self._statuses: dict[tuple[str, str], str | PayloadError] = {}

    def read(self, binary: IO[bytes]) -> Iterator[tuple[int, list[str]]]:
        """(row number, cells) from a UTF-8 CSV (BOM, CRLF and quoted newlines handled)."""
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="", errors="strict")
        reader = csv.reader(text)
        try:
            header = next(reader, None)
            if header is None:
                raise PayloadError("the file is empty; the first row must be the header")
            self.header = self._check_header(header)
            self._columns = [_column_plan(name) for name in self.header]
            for number, cells in enumerate(reader, start=2):  # spreadsheet row numbers
                if cells:
                    yield number, cells
        except UnicodeDecodeError as exc:
            raise PayloadError(
                f"the file is not UTF-8: {exc.reason} at byte {exc.start} of a block",
                encoding="utf-8",
            ) from None
        except csv.Error as exc:
            raise PayloadError(f"malformed CSV: {exc}", line=reader.line_num) from None
        finally:
            text.detach()  # the caller owns the binary file; do not close it with the wrapper

    def _check_header(self, header: list[str]) -> list[str]:
        header = [unneutralize(h.strip()) for h in header]
        names = [
            h.strip().lower()
            if h.strip().lower() in STATUS_COLUMNS or h.strip().lower() in IDENTIFIERS
            else h.strip()
            for h in header
        ]
        if any(not n for n in names):
            raise PayloadError("the header has an empty column name", header=header)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise PayloadError(f"duplicate columns: {', '.join(dupes)}", columns=dupes)
        if not any(n in IDENTIFIERS or n.startswith("id:") for n in names):
            raise PayloadError(
                "the header has no identifier column (user_id, anonymous_id, "
                "email, phone or id:<kind>)",
                header=names,
            )
        return names

    def plan(self, number: int, cells: list[str]) -> tuple[_Row | None, list[RowError]]:
        """Validate one row completely; either its changes or every error it has."""
        errors: list[RowError] = []

        def fail(column: str, value: str, reason: str) -> None:
            errors.append(RowError(number, column, value, reason, cells))

        if len(cells) != len(self.header):
            fail("", "", f"expected {len(self.header)} columns, found {len(cells)}")
            return None, errors
        ids: dict[str, str] = {}
        traits: dict[str, Any] = {}
        statuses: list[tuple[str, str, str, str]] = []  # channel, group, value, column
        for (kind, name, channel, group), raw in zip(self._columns, cells, strict=True):
            value = raw.strip()
            if not value or kind == SKIP:
                continue
            if value[0] == "'":
                value = unneutralize(value)
            if kind == CONTACT:
                try:
                    ids[name] = contact_for(channel, value, self.region)
                except PayloadError as exc:
                    fail(name, value, exc.message)
            elif kind == ID:
                ids[name] = value
            elif kind == STATUS:
                statuses.append((channel, group, value, name))
            else:
                traits[name] = value
        if not ids:
            fail("", "", "no identifier: fill user_id, anonymous_id, email, phone or id:<kind>")
        changes: list[Change] = []
        for channel, group, value, column in statuses:
            status = self._status(value, column)
            if isinstance(status, PayloadError):
                fail(column, value, status.message)
                continue
            contact = ids.get(CONTACT_OF[channel])
            if contact is None:
                if CONTACT_OF[channel] not in (e.column for e in errors):
                    fail(
                        column,
                        value,
                        f"{column} needs a value in the {CONTACT_OF[channel]} column",
                    )
                continue
            changes.append(Change(contact, channel, status, group, "csv", self.allow))
        if errors:
            return None, errors
        return _Row(number, cells, changes, ids, traits), []

    def plan_many(
        self, block: list[tuple[int, list[str]]]
    ) -> list[tuple[_Row | None, list[RowError]]]:
        """``[self.plan(n, cells) for n, cells in block]``, validated in columns."""
        if not self.columns:
            return [self.plan(number, cells) for number, cells in block]
        return plan_block(
            self._columns, block, self.region, self.allow, self._status, self.plan, _Row
        )

    def _status(self, value: str, column: str) -> str | PayloadError:
        """``status_of`` remembered per (value, column): a file repeats a handful of values
        millions of times (bounded: a file of many distinct bad values is not kept)."""
        key = (value, column)
        found = self._statuses.get(key)
        if found is None:
            try:
                found = status_of(value, column)
            except PayloadError as exc:
                found = exc
            if len(self._statuses) < _STATUS_CACHE:
                self._statuses[key] = found
        return found

    def conflicts(self, rows: list[_Row]) -> dict[int, list[RowError]]:
        """Rows (by index) giving a contact point another status than an earlier row did; the
        others are remembered, so the first row for a key wins across the whole file."""
        keyed = [[seen_key(c.contact, c.channel, c.group) for c in r.changes] for r in rows]
        earlier = self.seen.lookup(k for keys in keyed for k in keys)
        new: dict[int, tuple[int, str]] = {}
        out: dict[int, list[RowError]] = {}
        for index, (row, keys) in enumerate(zip(rows, keyed, strict=True)):
            errors = []
            for k, c in zip(keys, row.changes, strict=True):
                first = earlier.get(k) or new.get(k)
                if first is not None and first[1] != c.status:
                    errors.append(
                        RowError(
                            row.number,
                            _column(c),
                            c.status,
                            f"conflicts with row {first[0]} ({first[1]}) for the same contact",
                            row.cells,
                        )
                    )
            if errors:
                out[index] = errors
                continue
            for k, c in zip(keys, row.changes, strict=True):
                if k not in earlier:
                    new.setdefault(k, (row.number, c.status))
        self.seen.record((k, number, status) for k, (number, status) in new.items())
        return out

    def close(self) -> None:
        """Release the per-import duplicate check."""
        self.seen.close()

    def chunk(self, first_row: int, last_row: int, rows: list[_Row]) -> batches.Chunk:
        """The log record (and its rows) of the valid rows of file rows ``first_row..last_row``."""
        return batches.chunk(
            self.key,
            self.event_time,
            first_row,
            last_row,
            [
                (r.number, r.ids, r.traits, [(c.channel, c.status, c.group) for c in r.changes])
                for r in rows
            ],
            self.allow,
        )


_STATUS_CACHE = 1024


def _column_plan(name: str) -> ColumnPlan:
    """What a header column is, decided once per file: (kind, name, channel, group)."""
    if name in REPORT_COLUMNS:
        return SKIP, name, "", ""
    if name in ("email", "phone"):
        return CONTACT, name, "email" if name == "email" else "sms", ""
    if name in IDENTIFIERS or name.startswith("id:"):
        return ID, name, "", ""
    if name in STATUS_COLUMNS:
        return STATUS, name, STATUS_COLUMNS[name], ""
    if name.startswith(tuple(GROUP_PREFIXES)):
        prefix, group = name.split(":", 1)
        return STATUS, name, GROUP_PREFIXES[prefix + ":"], group
    return TRAIT, name, "", ""


def _column(c: Change) -> str:
    """The CSV column a change came from."""
    return f"{c.channel}_subscription_status" if not c.group else f"{c.channel}_group:{c.group}"


def refused_indexes(
    changes: list[Change],
    load: Callable[[list[tuple[str, str, str]]], dict[tuple[str, str, str], dict[str, Any]]],
) -> set[int]:
    """Indexes of changes that would resubscribe someone who unsubscribed themselves; only the
    states of changes the rule could refuse are loaded (``load``: keys -> current states)."""
    maybe = [
        i
        for i, c in enumerate(changes)
        if resubscribe_refused(_OWN_UNSUBSCRIBE, c)  # refused by such a state: look it up
    ]
    if not maybe:
        return set()
    current = load([(changes[i].contact, changes[i].channel, changes[i].group) for i in maybe])
    return {
        i
        for i in maybe
        if resubscribe_refused(
            current.get((changes[i].contact, changes[i].channel, changes[i].group)), changes[i]
        )
    }


_OWN_UNSUBSCRIBE = {"status": "unsubscribed", "own_action": 1}
"""The one state that refuses anything: a change it does not refuse is never refused."""


def run_import(
    binary: IO[bytes],
    job: CsvImport,
    refused: Callable[[list[Change]], set[int]],
    sink: Callable[[batches.Chunk], int] | None,
    errors: ErrorSink,
    progress: Callable[[], None] | None = None,
    chunk: int = 2000,
    erased: Callable[[set[str]], set[str]] | None = None,
) -> ImportReport:
    """Stream the file; ``refused`` names changes the own-action rule forbids (by index in the
    list it is given); ``sink`` stores a chunk's record and says whether it was new (None = dry
    run); ``erased`` names the identifier values of erased people among those it is given (their
    rows are rejected as erased, quoting nothing of them). Chunks end after ``chunk`` valid
    rows, so their row ranges depend on the file only."""
    report = ImportReport()
    rows: list[_Row] = []
    started = False
    span = [0, 0]  # first and last file row of the current chunk

    pending: list[RowError] = []

    def add_error(error: RowError) -> None:
        pending.append(error)

    def write_errors() -> None:
        """Errors of a chunk go out in row order, whichever check found them."""
        nonlocal started
        if pending and not started:
            errors.start(job.header)
            started = True
        for error in sorted(pending, key=lambda e: e.row_number):
            errors.add(error)
        pending.clear()

    def flush() -> None:
        if erased is not None and rows:
            gone = erased({v for r in rows for v in r.ids.values()})
            for index in [i for i, r in enumerate(rows) if gone.intersection(r.ids.values())]:
                report.rows_rejected += 1
                add_error(RowError(rows[index].number, "", "", ERASED_REASON, ()))
            rows[:] = [r for r in rows if not gone.intersection(r.ids.values())]
        duplicates = job.conflicts(rows)
        for index in sorted(duplicates, reverse=True):
            report.rows_rejected += 1
            for error in duplicates[index]:
                add_error(error)
            del rows[index]
        flat = [c for r in rows for c in r.changes]
        blocked = refused(flat) if flat else set()
        out: list[_Row] = []
        index = 0
        for row in rows:
            bad = [c for i, c in enumerate(row.changes, index) if i in blocked]
            index += len(row.changes)
            if bad:
                report.rows_rejected += 1
                for c in bad:
                    add_error(
                        RowError(
                            row.number,
                            _column(c),
                            c.status,
                            f"{c.contact} unsubscribed by their own action; "
                            "use --allow-resubscribe to override",
                            row.cells,
                        )
                    )
                continue
            report.rows_applied += 1
            report.changes += len(row.changes)
            out.append(row)
        if sink is not None and out:
            report.stored += sink(job.chunk(span[0], span[1], out))
        write_errors()
        rows.clear()
        span[0] = 0
        if progress:
            progress()

    block: list[tuple[int, list[str]]] = []

    def validate() -> None:
        for (number, _cells), (planned, row_errors) in zip(
            block, job.plan_many(block), strict=True
        ):
            report.rows_read += 1
            span[0] = span[0] or number
            span[1] = number
            if planned is None:
                report.rows_rejected += 1
                for error in row_errors:
                    add_error(error)
            else:
                rows.append(planned)
            if len(rows) >= chunk:
                flush()
        block.clear()

    for item in job.read(binary):
        block.append(item)
        if len(block) >= BLOCK:
            validate()
    validate()
    flush()
    report.header = job.header
    return report


class CsvErrorReport:
    """An error report CSV file: row number, column, value, reason, then the original row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._fh: IO[str] | None = None
        self._writer: Any = None
        self.header: list[str] = []

    def start(self, header: list[str]) -> None:
        """Open the file and write the report's header."""
        self.header = header
        self._fh = self.path.open("w", newline="", encoding="utf-8")
        self._writer = csvsafe.writer(self._fh)
        self._writer.writerow([*REPORT_COLUMNS, *[c for c in header if c not in REPORT_COLUMNS]])

    def add(self, error: RowError) -> None:
        """Write one error line."""
        original = [
            c for h, c in zip(self.header, error.original, strict=False) if h not in REPORT_COLUMNS
        ]
        self._writer.writerow(
            (error.row_number, error.column, error.value, error.reason, *original)
        )
        self.count += 1

    def close(self) -> None:
        """Flush and close the file."""
        if self._fh is not None:
            self._fh.close()
