"""The one live-server harness: a real ``engagehub serve`` process on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from engagehub.bench.ingest import free_port
from tests.waiting import eventually


@dataclass
class LiveServer:
    """A running server process."""

    url: str
    proc: subprocess.Popen[bytes]
    env: dict[str, str]

    def kill(self) -> None:
        """kill -9: no shutdown handler runs."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


def wait_ready(
    url: str, proc: subprocess.Popen[bytes] | None, timeout: float, log: Path | None
) -> None:
    """Until ``/readyz`` answers 200; fails at once (with the server's last output) if it died."""

    def ready() -> bool:
        if proc is not None and proc.poll() is not None:
            if log is not None:
                err = log.read_text(errors="replace")
            else:
                err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"server exited {proc.returncode}: {err[-2000:]}")
        return httpx.get(url + "/readyz", timeout=1).status_code == 200

    eventually(ready, timeout, what="server ready", ignoring=(httpx.HTTPError,))


@contextmanager
def live_server(
    env: dict[str, str],
    timeout: float = 30,
    args: Sequence[str] = ("--log-level", "warning"),
    log: Path | None = None,
    ready: bool = True,
) -> Iterator[LiveServer]:
    """Start ``python -m engagehub serve *args`` with ``env``; stop it (if still alive) on exit.

    ``log``: the server's stdout and stderr go to that file (read it after the block; an
    undrained pipe would block a chatty server); otherwise stdout is dropped and stderr kept
    for the error of a server that dies. ``ready=False`` returns without waiting for /readyz.
    """
    port = free_port()
    full_env = {**os.environ, **env, "ENGAGEHUB_PORT": str(port), "ENGAGEHUB_HOST": "127.0.0.1"}
    sink: Any = log.open("wb") if log is not None else nullcontext()
    with sink as out:
        stdout: IO[bytes] | int = out if log is not None else subprocess.DEVNULL
        stderr: IO[bytes] | int = out if log is not None else subprocess.PIPE
        proc = subprocess.Popen(
            [sys.executable, "-m", "engagehub", "serve", *args],
            env=full_env,
            stdout=stdout,
            stderr=stderr,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        if ready:
            wait_ready(url, proc, timeout, log)
        yield LiveServer(url, proc, full_env)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stderr:
            proc.stderr.close()
