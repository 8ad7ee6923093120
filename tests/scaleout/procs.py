"""Real ``engagehub worker`` processes and database polling for the scale-out tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from engagehub.storage import Database
from engagehub.storage import events as log
from tests.waiting import eventually


@contextmanager
def worker_process(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``python -m engagehub worker``; SIGTERM it on exit (it must stop cleanly)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "engagehub", "worker"],
        env={**os.environ, "ENGAGEHUB_WORKER_POLL_INTERVAL": "0.05", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stderr:
            proc.stderr.close()


def wait_caught_up(db: Database, names: list[str], timeout: float = 60) -> int:
    """Wait until every named processor's durable cursor reached the log head; returns it."""

    def reached() -> tuple[int] | None:  # a tuple: head 0 is an answer too
        with db.session() as conn:
            head = log.head(conn)
            offsets = {
                row["name"]: row["seq"]
                for row in conn.all("SELECT name, seq FROM processor_offsets")
            }
        return (head,) if all(offsets.get(n, -1) >= head for n in names) else None

    (head,) = eventually(reached, timeout, what=f"{names} caught up with the head")
    return head
