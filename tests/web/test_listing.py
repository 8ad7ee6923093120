"""The one filter and pager of every dashboard list: case-insensitive text filter, pages from 1,
links that keep the other lists' parameters and drop one-time notices."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from engagehub.web.listing import fields, listing, page_number


def _request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/x", "query_string": query.encode()})


ROWS = [{"name": f"tpl-{i:02d}", "channel": "sms" if i % 3 == 0 else "email"} for i in range(60)]


def test_pages_and_filter() -> None:
    first = listing(_request(""), "t", ROWS, fields("name", "channel"))
    assert [r["name"] for r in first.rows] == [f"tpl-{i:02d}" for i in range(25)]
    assert (first.page, first.pages, first.total, first.first, first.last) == (1, 3, 60, 1, 25)
    last = listing(_request("t_page=3"), "t", ROWS, fields("name", "channel"))
    assert [r["name"] for r in last.rows] == [f"tpl-{i:02d}" for i in range(50, 60)]
    assert (last.first, last.last) == (51, 60)
    sms = listing(_request("t_q=SMS&t_page=2"), "t", ROWS, fields("name", "channel"))
    assert sms.total == 20
    assert sms.everything == 60
    assert sms.page == 1  # 20 matches fit on one page: page 2 shows the last page
    assert sms.rows == [r for r in ROWS if r["channel"] == "sms"]
    none = listing(_request("t_q=nothing"), "t", ROWS, fields("name"))
    assert (none.rows, none.total, none.pages, none.first) == ([], 0, 1, 0)


def test_links_keep_the_other_lists_and_drop_the_notice() -> None:
    request = _request("a_q=x&a_page=2&t_q=e+m&t_page=9&notice=saved")
    shown = listing(request, "t", ROWS, fields("channel"))
    assert shown.q == "e m"
    assert shown.total == 0  # "e m" is in no channel
    link = shown.link(2)
    query, anchor = link[1:].split("#")
    assert anchor == "t-filter"
    assert parse_qsl(query) == [("a_q", "x"), ("a_page", "2"), ("t_q", "e m"), ("t_page", "2")]
    assert parse_qsl(shown.link(1, filtered=False)[1:].split("#")[0]) == [
        ("a_q", "x"),
        ("a_page", "2"),
        ("t_page", "1"),
    ]


def test_page_numbers_are_forgiving() -> None:
    assert [page_number(t) for t in (None, "", "0", "2", "-1", "x", "²", "9" * 12)] == [
        1,
        1,
        1,
        2,
        1,
        1,
        1,
        1,
    ]
