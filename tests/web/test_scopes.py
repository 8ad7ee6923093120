"""Every dashboard action respects the session's token scope (issue 19): each POST route of
every page module refuses a read session with a 403 naming the scope, except navigation and
draft previews; a write session gets past the scope check on all of them."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from engagehub.web import routers
from engagehub.web.common import navigation
from tests.access.test_tokens import _login, new_token

OPEN = {"/login"}  # posted before there is a session


def _actions() -> list[str]:
    """Every POST path of the dashboard, path parameters filled in."""
    paths = {
        re.sub(r"\{[^}]+\}", "1", route.path)
        for router in routers()
        for route in router.routes
        if isinstance(route, APIRoute) and "POST" in route.methods and route.path not in OPEN
    }
    return sorted(paths)


def _csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text)
    assert found
    return found.group(1)


def test_the_dashboard_has_actions_to_check() -> None:
    actions = _actions()
    assert "/sources/1/test" in actions
    assert "/messaging/broadcasts/1/1" in actions
    assert "/messaging/goals/1" in actions
    assert "/messaging/templates/1/preview" in actions
    assert [a for a in actions if navigation(a)] == [
        "/campaigns/1/filter",
        "/logout",
        "/lookup",
        "/messaging/templates/1/preview",
    ]


@pytest.mark.parametrize("scope", ["read", "write"])
def test_page_actions_need_a_write_session(
    scope: str, client: TestClient, admin: dict[str, str]
) -> None:
    _login(client, new_token(client, admin, f"who-{scope}", scope))
    csrf = _csrf(client)
    for path in _actions():
        if path == "/logout":
            continue
        r = client.post(path, data={"csrf": csrf}, follow_redirects=False)
        refused = r.status_code == 403 and "needs &#39;write&#39;" in r.text
        if scope == "read" and not navigation(path):
            assert refused, (path, r.status_code, r.text[:300])
        else:
            assert r.status_code != 403, (path, r.status_code, r.text[:300])
    # the session is still there: nothing above logged it out
    assert client.get("/", follow_redirects=False).status_code == 200
