"""``engagehub serve --demo``: once the server answers ``/readyz``, send it the demo week."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import httpx
from rich.console import Console

from engagehub.demo import report, run, week
from engagehub.settings import Settings
from engagehub.storage import migrate, open_database


def wait_ready(client: httpx.Client, timeout: float = 60.0) -> None:
    """Poll ``/readyz`` until the server is up (it migrates the schema first)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server at {client.base_url} did not get ready")
        time.sleep(0.2)


def send_demo(settings: Settings, seed: int, console: Console) -> None:
    """Sources and Braze files through the database, every vendor request over HTTP."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
    base = f"http://{host}:{settings.port}"
    plan = week.build(seed)
    with httpx.Client(base_url=base, timeout=30) as client:
        wait_ready(client)
        db = open_database(settings.database_url, settings)
        try:
            with db.session() as conn:
                migrate(conn)
            out = Path(tempfile.mkdtemp(prefix="engagehub-demo-"))
            result = run.run(client, plan, out, db=db, region=settings.default_region)
        finally:
            db.close()
    report.summary(console, plan, result, base)


def start_demo_thread(settings: Settings, seed: int) -> threading.Thread:
    """Run :func:`send_demo` beside the server; a failure is printed, the server keeps running."""
    console = Console(stderr=True)

    def target() -> None:
        try:
            send_demo(settings, seed, console)
        except Exception as exc:  # the demo is a convenience: never take the server down
            console.print(f"[bold red]demo failed[/]: {exc}", highlight=False)

    thread = threading.Thread(target=target, name="engagehub-demo", daemon=True)
    thread.start()
    return thread
