"""A real ``engagehub serve`` process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from engagehub.bench.ingest import free_port


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


@contextmanager
def live_server(env: dict[str, str], timeout: float = 30) -> Iterator[LiveServer]:
    """Start ``python -m engagehub serve`` with ``env``; stop it (if still alive) on exit."""
    port = free_port()
    full_env = {**os.environ, **env, "ENGAGEHUB_PORT": str(port), "ENGAGEHUB_HOST": "127.0.0.1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "engagehub", "serve", "--log-level", "warning"],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"server exited {proc.returncode}: {err[-2000:]}")
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.05)
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
