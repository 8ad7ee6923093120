"""Each answer's head and body leave in one write (``security.timeouts.OneWrite``), intact."""

from __future__ import annotations

import asyncio
import base64
import socket
from pathlib import Path

import httpx
import orjson

from engagehub.security.timeouts import OneWrite
from tests.conftest import track
from tests.hardening.attacks.harness import ADMIN, attacked_server, connect


async def _pair() -> tuple[OneWrite, socket.socket, asyncio.Transport]:
    """A OneWrite over a real socket transport, and the socket at the other end."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
    return OneWrite(transport, loop), theirs, transport


def _pending(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return b""


def test_the_head_waits_for_the_body_and_both_go_out_together() -> None:
    async def run() -> None:
        one, theirs, transport = await _pair()
        one.hold_next()
        one.write(b"HTTP/1.1 200 OK\r\n\r\n")
        assert _pending(theirs) == b"", "the head is held for its body"
        one.write(b"body")
        assert _pending(theirs) == b"HTTP/1.1 200 OK\r\n\r\nbody"
        one.write(b"more")  # no head held: written as it comes
        assert _pending(theirs) == b"more"
        transport.close()
        theirs.close()

    asyncio.run(run())


def test_a_head_without_a_body_at_once_goes_out_on_the_next_loop_turn() -> None:
    """Streamed answers (server-sent events) and HEAD: the head never waits for a late body."""

    async def run() -> None:
        one, theirs, _ = await _pair()
        one.hold_next()
        one.write(b"HTTP/1.1 200 OK\r\n\r\n")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert _pending(theirs) == b"HTTP/1.1 200 OK\r\n\r\n"
        one.hold_next()
        one.write(b"head")
        one.close()  # closing writes what is held first
        await asyncio.sleep(0)
        assert _pending(theirs) == b"head"
        theirs.close()

    asyncio.run(run())


def _answers(sock: socket.socket, count: int) -> list[bytes]:
    """``count`` complete HTTP/1.1 answers (Content-Length framed) read from ``sock``."""
    sock.settimeout(10)
    data = b""
    out: list[bytes] = []
    while len(out) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if head.startswith(b"http/1.1 100"):
                length = 0
            end = head_end + 4 + length
            if len(data) >= end:
                out.append(data[:end])
                data = data[end:]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(out)} answers: {data!r}"
        data += chunk
    return out


def test_answers_over_real_http_are_whole_in_order_and_keep_alive(tmp_path: Path) -> None:
    """Pipelined requests, HEAD, ``Expect: 100-continue`` and an ingest POST on one connection."""
    with attacked_server(tmp_path) as server:
        made = httpx.post(
            server.url + "/api/sources", json={"name": "w", "kind": "segment"}, headers=ADMIN
        )
        auth = b"Authorization: Basic " + base64.b64encode(made.json()["write_key"].encode() + b":")
        sock = connect(server)
        try:
            sock.sendall(
                b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            get1, head, get2 = _answers(sock, 1) + _head_only(sock) + _answers(sock, 1)
            assert get1.startswith(b"HTTP/1.1 200")
            assert get1.endswith(b"}")
            assert head.startswith(b"HTTP/1.1 ")  # headers only, whatever the status
            assert get2 == get1.replace(_date(get1), _date(get2))
            body = orjson.dumps({"batch": [track("m1")]})
            sock.sendall(
                b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + auth
                + b"\r\nExpect: 100-continue\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
            )
            (cont,) = _answers(sock, 1)
            assert cont.startswith(b"HTTP/1.1 100")
            sock.sendall(body)
            (answer,) = _answers(sock, 1)
            assert answer.startswith(b"HTTP/1.1 200"), answer
            assert answer.endswith(b'{"success":true}')
            assert b"x-content-type-options: nosniff" in answer.lower()
        finally:
            sock.close()


def _head_only(sock: socket.socket) -> list[bytes]:
    """The answer to a HEAD: its head only (Content-Length names the GET's body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        assert chunk
        data += chunk
    return [data]


def _date(answer: bytes) -> bytes:
    for line in answer.split(b"\r\n"):
        if line.lower().startswith(b"date:"):
            return line
    return b""
