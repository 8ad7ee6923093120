"""The dashboard's suppression page: list, add and remove through CSRF-checked forms."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.web.test_pages import login


def test_page_lists_adds_and_removes(client: TestClient) -> None:
    assert client.get("/suppressions", follow_redirects=False).status_code == 303
    csrf = login(client)
    page = client.get("/suppressions")
    assert page.status_code == 200
    assert "Nothing is suppressed." in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]

    form = {
        "csrf": csrf,
        "action": "add",
        "contact": "Ann@Example.com",
        "channel": "email",
        "reason": "spam_complaint",
        "detail": "<b>called us</b>",
    }
    r = client.post("/suppressions", data=form, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert "Suppressed ann@example.com (email)." in page.text
    assert "<td>spam_complaint</td>" in page.text
    assert "&lt;b&gt;called us&lt;/b&gt;" in page.text  # escaped

    bad = client.post("/suppressions", data={**form, "contact": "nope"}, follow_redirects=False)
    assert "notice=" in bad.headers["location"]
    forged = client.post("/suppressions", data={**form, "csrf": "forged"})
    assert forged.status_code == 400
    assert "ann@example.com" in client.get("/suppressions", params={"channel": "email"}).text
    assert "ann@example.com" not in client.get("/suppressions", params={"channel": "sms"}).text

    gone = {"csrf": csrf, "action": "remove", "contact": "ann@example.com", "channel": "email"}
    r = client.post("/suppressions", data=gone, follow_redirects=True)
    assert "Removed ann@example.com (email)." in r.text
    assert "Nothing is suppressed." in r.text
