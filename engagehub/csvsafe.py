"""CSV written for people: cells a spreadsheet would run as formulas are neutralised.

Every CSV engagehub writes (import error reports, exports) goes through ``writer`` or
``neutralize``, so a value such as ``=HYPERLINK(...)`` sent by anyone on the internet is shown
as text, never executed, when an operator opens the file (OWASP "CSV injection"). A leading
apostrophe is what spreadsheets themselves use to mark text; ``unneutralize`` removes exactly
the apostrophe ``neutralize`` added, so a report can be fixed and uploaded again unchanged.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

__all__ = ["FORMULA_STARTERS", "SafeWriter", "needs_quote", "neutralize", "unneutralize", "writer"]

# ASCII starters (OWASP list), their full-width forms (some spreadsheets fold them) and the
# control characters that make a spreadsheet start a new cell or line.
FORMULA_STARTERS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def needs_quote(text: str) -> bool:
    """Whether ``text`` would be read as a formula, or already looks like a quoted one."""
    while text.startswith("'"):
        text = text[1:]
        if not text:
            return False
        if text.startswith(FORMULA_STARTERS):
            return True
    return text.startswith(FORMULA_STARTERS)


def neutralize(cell: object) -> str:
    """The cell as safe text: a formula starter gets a leading apostrophe."""
    text = "" if cell is None else str(cell)
    return "'" + text if needs_quote(text) else text


def unneutralize(cell: str) -> str:
    """Undo ``neutralize``: ``unneutralize(neutralize(x)) == x`` for every string ``x``."""
    return cell[1:] if cell.startswith("'") and needs_quote(cell[1:]) else cell


class SafeWriter:
    """A ``csv.writer`` whose every cell, header included, is neutralised."""

    def __init__(self, fh: IO[str], **fmtparams: Any) -> None:
        self._writer = csv.writer(fh, **fmtparams)

    def writerow(self, row: Iterable[object]) -> Any:
        """Write one row."""
        return self._writer.writerow([neutralize(c) for c in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        """Write many rows."""
        for row in rows:
            self.writerow(row)


def writer(fh: IO[str], **fmtparams: Any) -> SafeWriter:
    """The CSV writer to use for any file a person may open."""
    return SafeWriter(fh, **fmtparams)
