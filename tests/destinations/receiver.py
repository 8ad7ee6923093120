"""A real HTTP receiver on a free loopback port whose answers a test scripts one by one."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from tests.waiting import eventually


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """Answers with the scripted behaviours in order, then ``ok`` forever."""

    url: str
    script: list[str | tuple[str, Any]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self) -> str | tuple[str, Any]:
        with self.lock:
            return self.script.pop(0) if self.script else "ok"

    def bodies(self) -> list[Any]:
        return [r.json() for r in self.received]

    def wait_for(self, count: int, timeout: float = 10) -> None:
        eventually(lambda: len(self.received) >= count, timeout, 0.01, what=f"{count} requests")


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            action = receiver.next()
            name, arg = action if isinstance(action, tuple) else (action, None)
            length = int(self.headers.get("content-length", "0"))
            if name == "hangup":  # read part of the batch, then drop the connection
                self.rfile.read(min(length, 10))
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            body = self.rfile.read(length)
            if name == "garbage":  # not HTTP at all
                self.wfile.write(b"\x00\x13garbage\xff\r\n\r\n")
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            status = int(arg) if name == "status" else 200
            if status < 300:  # a slow answer still counts as received (at-least-once)
                receiver.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            if name == "sleep":
                time.sleep(float(arg))
            if name == "hold":  # answer once the test sets the event (at most 30 s)
                arg.wait(30)
            try:
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "30")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
            except OSError:  # the client gave up waiting
                self.close_connection = True

    return Handler


@contextmanager
def receiver() -> Iterator[Receiver]:
    """Start a threaded receiver; stop it on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Receiver("")))
    port = server.server_address[1]
    rec = Receiver(f"http://127.0.0.1:{port}/hook")
    server.RequestHandlerClass = _handler(rec)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
