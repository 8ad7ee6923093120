"""The one keyset-page rule: show ``limit`` of the ``limit + 1`` rows read; continue after the
last shown only when there was more."""

from __future__ import annotations

from engagehub.storage.keyset import page


def test_a_full_page_continues_after_its_last_row() -> None:
    assert page([1, 2, 3, 4], 3) == ([1, 2, 3], 3)


def test_the_last_page_has_no_cursor_even_when_exactly_full() -> None:
    assert page([1, 2, 3], 3) == ([1, 2, 3], None)
    assert page([1], 3) == ([1], None)
    assert page([], 3) == ([], None)
