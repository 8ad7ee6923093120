"""What every dashboard console test needs: a real server, a signed-in Chromium page, an
accessibility scan with axe-core (from npm), and screenshots kept under the test's tmp dir."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from engagehub.settings import Settings
from engagehub.storage import migrate, open_database
from tests.live import LiveServer, live_server
from tests.npm import BROWSER_ARGS, chromium, package_file

TOKEN = "console-admin-token-0123456789"
WIDE: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
_ERRORS: weakref.WeakKeyDictionary[Page, list[str]] = weakref.WeakKeyDictionary()


def watch(page: Page) -> Page:
    """Collect the page's console errors and uncaught exceptions (read them with ``errors``)."""
    found = _ERRORS.setdefault(page, [])
    page.on("console", lambda m: found.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: found.append(str(e)))
    return page


def errors(page: Page) -> list[str]:
    """What ``watch`` collected on this page so far (clear it to ignore the ones expected)."""
    return _ERRORS.setdefault(page, [])


def start_server(tmp: Path, env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    """A migrated SQLite database and ``engagehub serve`` on it."""
    url = f"sqlite:///{tmp}/engagehub.db"
    db = open_database(url, Settings(database_url=url))
    with db.session() as conn:
        migrate(conn)
    db.close()
    base = {"ENGAGEHUB_DATABASE_URL": url, "ENGAGEHUB_ADMIN_TOKEN": TOKEN}
    with live_server({**base, **(env or {})}) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium(), args=BROWSER_ARGS)
        yield launched
        launched.close()


def signed_in(browser: Browser, live: LiveServer, javascript: bool = True) -> Page:
    """A page of a fresh context, logged in with the admin token; collects errors.

    ``javascript=False`` is a browser with scripts off: every page must work without them."""
    context = browser.new_context(viewport=WIDE, java_script_enabled=javascript)
    page = watch(context.new_page())
    page.on("dialog", lambda d: d.accept())  # confirmations are answered yes
    page.goto(live.url + "/login")
    page.get_by_label("Admin token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live.url + "/")
    return page


def api(live: LiveServer, path: str, method: str = "GET", **kw: Any) -> Any:
    """The management API's answer (the numbers the page must show)."""
    r = httpx.request(
        method, live.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30, **kw
    )
    assert r.status_code < 300, r.text
    return r.json()


def audit(page: Page, shots: Path, name: str) -> None:
    """No console error, no axe-core violation (WCAG 2 A/AA), no sideways scroll at phone
    width; a screenshot at both widths."""
    axe = package_file("axe-core", "axe.min.js").read_text()
    page.evaluate(axe + "\n;0")  # evaluated by DevTools: the page's CSP still forbids inline code
    found = page.evaluate(
        """async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'best-practice']}))
             .violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"""
    )
    assert found == [], (name, found)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / f"{name}-1280.png"), full_page=True)
    page.set_viewport_size(PHONE)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    page.screenshot(path=str(shots / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(WIDE)
    assert overflow <= 0, (name, "wider than a phone screen by", overflow)
    assert errors(page) == [], (name, errors(page))


_CONTROLS = (
    "main a[href], main button, main input:not([type=hidden]), main select, main textarea, "
    "main summary"
)


def keyboard_reaches(page: Page) -> int:
    """Tab alone reaches every visible control of the page's main part (no mouse-only
    widgets, no focus traps); returns how many there are."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.evaluate(
        f"""() => document.querySelectorAll({_CONTROLS!r}).forEach((e, i) => {{
               if (e.checkVisibility()) e.setAttribute('data-kb', String(i)); }})"""
    )
    wanted = set(page.eval_on_selector_all("[data-kb]", "es => es.map(e => e.dataset.kb)"))
    seen: set[str] = set()
    for _ in range(len(wanted) + 60):  # the header's links and forms come first
        page.keyboard.press("Tab")
        got = page.evaluate("document.activeElement && document.activeElement.dataset.kb")
        if got is not None:
            seen.add(got)
        if seen >= wanted:
            break
    missing = page.eval_on_selector_all(
        "[data-kb]",
        """(es, seen) => es.filter(e => !seen.includes(e.dataset.kb))
                           .map(e => e.outerHTML.slice(0, 120))""",
        sorted(seen),
    )
    assert missing == [], ("not reachable with Tab", missing)
    return len(wanted)


def press_on(page: Page, name: str) -> None:
    """Tab to the control whose accessible name starts with ``name`` and press Enter."""
    for _ in range(400):
        page.keyboard.press("Tab")
        label = page.evaluate(
            """() => { const e = document.activeElement; if (!e) return '';
                 return e.getAttribute('aria-label') || e.textContent.trim() || e.value || ''; }"""
        )
        if label.startswith(name):
            with page.expect_navigation():
                page.keyboard.press("Enter")
            return
    raise AssertionError(f"no control named {name!r} reachable with Tab")
