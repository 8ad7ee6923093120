"""CSV validation in columns: a block of rows is checked column by column, and only the rows
the fast path cannot decide go through the per-row reference (``CsvImport.plan``).

The fast path accepts a row only when every cell is one it decides exactly as the reference
would: trimmed by the same ``str.strip``, apostrophes undone by the same ``unneutralize``,
statuses read by the same ``status_of`` (once per distinct value), phone numbers by the same
``contact_for``, and e-mail addresses either by a vectorised check (pyarrow compute: ASCII,
the plain-address pattern and the limits of ``contacts._plain``, so the normal form is the
lowercase text) or, for the rest, by ``contact_for`` itself. A row with any problem (a bad
value, a missing identifier, a status without its contact point, the wrong number of cells)
is handed to the reference whole, so its errors are the reference's, in its order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from email_validator import SPECIAL_USE_DOMAIN_NAMES

from engagehub.consent.batches import CONTACT_OF
from engagehub.consent.model import Change, contact_for
from engagehub.csvsafe import unneutralize
from engagehub.errors import PayloadError

SKIP, CONTACT, ID, STATUS, TRAIT = range(5)
"""What a header column is (``ColumnPlan`` kinds)."""
ColumnPlan = tuple[int, str, str, str]
"""(kind, name, channel, group) of one header column, decided once per file."""

# contacts._PLAIN_EMAIL, anchored (RE2 searches; Python's fullmatch anchors).
_PLAIN = (
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)

Planned = tuple[Any, list[Any]]
"""What ``CsvImport.plan`` returns for one row: (the row or None, its errors)."""


@cache
def _special(names: tuple[str, ...]) -> str:
    """A pattern matching addresses whose last label is a special-use name."""
    return r"\.(?:" + "|".join(re.escape(n) for n in names) + r")$"


def plain_emails(values: Sequence[str]) -> list[str | None]:
    """The normal form of each value the plain-address rule decides (``contacts._plain``:
    its lowercase text), None for the values only ``email_validator`` can judge."""
    if not values:
        return []
    text = pa.array(values, pa.string())
    low = pc.ascii_lower(text)
    ok = pc.and_(pc.string_is_ascii(text), pc.match_substring_regex(low, _PLAIN))
    ok = pc.and_(ok, pc.less_equal(pc.binary_length(text), 254))
    ok = pc.and_(ok, pc.less_equal(pc.find_substring(low, "@"), 64))
    ok = pc.and_(ok, pc.invert(pc.match_substring_regex(low, "@.*--")))
    special = _special(tuple(SPECIAL_USE_DOMAIN_NAMES))
    ok = pc.and_(ok, pc.invert(pc.match_substring_regex(low, special)))
    return pc.if_else(ok, low, pa.scalar(None, pa.string())).to_pylist()  # type: ignore[no-any-return]


def plan_block(
    columns: Sequence[ColumnPlan],
    block: Sequence[tuple[int, list[str]]],
    region: str,
    allow: bool,
    status: Callable[[str, str], str | PayloadError],
    reference: Callable[[int, list[str]], Planned],
    make_row: Callable[[int, list[str], list[Change], dict[str, str], dict[str, Any]], Any],
) -> list[Planned]:
    """``[reference(number, cells) for number, cells in block]``, computed in columns."""
    width = len(columns)
    out: list[Planned | None] = [None] * len(block)
    index = [k for k, (_n, cells) in enumerate(block) if len(cells) == width]
    slow = [False] * len(index)
    values: list[list[Any] | None] = [None] * width
    if index:
        for j, column in enumerate(zip(*(block[k][1] for k in index), strict=True)):
            values[j] = _cells(columns[j], column, slow, region, status)
    none: list[Any] = [None] * len(index)

    def rows_of(kinds: tuple[int, ...]) -> tuple[list[str], Any]:
        """Names of the columns of these kinds, and their values row by row."""
        chosen = [(c[1], v) for c, v in zip(columns, values, strict=True) if c[0] in kinds]
        return [n for n, _ in chosen], zip(none, *(v for _, v in chosen), strict=True)

    id_names, id_rows = rows_of((CONTACT, ID))
    trait_names, trait_rows = rows_of((TRAIT,))
    _, status_rows = rows_of((STATUS,))
    kinds = [(c[2], c[3], CONTACT_OF[c[2]]) for c in columns if c[0] == STATUS]
    for at, k, id_values, trait_values, status_values in zip(
        range(len(index)), index, id_rows, trait_rows, status_rows, strict=True
    ):
        if slow[at]:
            continue
        ids = {n: v for n, v in zip(id_names, id_values[1:], strict=True) if v is not None}
        if not ids:
            continue  # "no identifier": the reference reports it
        changes = []
        for (channel, group, contact_column), value in zip(kinds, status_values[1:], strict=True):
            if value is None:
                continue
            contact = ids.get(contact_column)
            if contact is None:
                break  # the reference names the missing contact column
            changes.append(Change(contact, channel, value, group, "csv", allow))
        else:
            traits = {
                n: v for n, v in zip(trait_names, trait_values[1:], strict=True) if v is not None
            }
            number, cells = block[k]
            out[k] = (make_row(number, cells, changes, ids, traits), [])
    return [found if found is not None else reference(*block[k]) for k, found in enumerate(out)]


def _cells(
    plan: ColumnPlan,
    column: Sequence[str],
    slow: list[bool],
    region: str,
    status: Callable[[str, str], str | PayloadError],
) -> list[Any] | None:
    """One column's decided values (None = empty cell); marks rows it cannot decide in
    ``slow``; None for a column the rows ignore."""
    kind, name, channel, _group = plan
    if kind == SKIP:
        return None
    cells: list[Any] = [
        (unneutralize(v) if v[0] == "'" else v) if v else None for v in map(str.strip, column)
    ]
    if kind == STATUS:
        for at, value in enumerate(cells):
            if value is not None:
                found = status(value, name)
                if isinstance(found, PayloadError):
                    slow[at] = True
                else:
                    cells[at] = found
    elif kind == CONTACT:
        present = [at for at, v in enumerate(cells) if v is not None]
        plain = plain_emails([cells[at] for at in present]) if channel == "email" else []
        for n, at in enumerate(present):
            if plain and plain[n] is not None:
                cells[at] = plain[n]
                continue
            try:
                cells[at] = contact_for(channel, cells[at], region)
            except PayloadError:
                slow[at] = True
    return cells
