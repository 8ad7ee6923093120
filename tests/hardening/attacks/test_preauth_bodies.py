"""Attack 1: large bodies sent without a credential are refused before anything is read."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.hardening.attacks.harness import MB, attacked_server, connect, read_response, rss_mb
from tests.live import LiveServer

UPLOAD = 400 * MB
SENT = 64 * MB  # the most each attacker pushes before it expects an answer


def _post_unauthenticated(server: LiveServer, path: str, content_type: str) -> int:
    sock = connect(server)
    try:
        boundary = "x" * 16
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {UPLOAD}\r\n"
            f"Content-Type: {content_type}; boundary={boundary}\r\n\r\n".encode()
        )
        chunk = b"a" * MB
        sent = 0
        try:
            while sent < SENT:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the server may close the connection once it has answered: that is the point
        status, _, _ = read_response(sock)
        return status
    finally:
        sock.close()


def _dir_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def test_unauthenticated_uploads_are_refused_before_the_body_is_read(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    with attacked_server(tmp_path, {"TMPDIR": str(temp)}) as server:
        before = rss_mb(server)
        targets = [("/api/sources", "multipart/form-data")] * 4 + [
            ("/api/imports", "multipart/form-data")
        ] * 2
        with ThreadPoolExecutor(len(targets)) as pool:
            statuses = list(pool.map(lambda t: _post_unauthenticated(server, *t), targets))
        after = rss_mb(server)
        spooled = _dir_bytes(temp)
        print(f"\npre-auth uploads: RSS {before:.0f} -> {after:.0f} MB, temp files {spooled} B")
    assert statuses == [401] * len(targets)
    assert after - before < 50, (before, after)
    assert spooled < MB, spooled


def test_chunked_bodies_without_credentials_stop_at_the_anonymous_limit(tmp_path: Path) -> None:
    with attacked_server(tmp_path) as server:
        sock = connect(server)
        try:
            sock.sendall(
                b"POST /api/sources HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
            )
            piece = b"a" * 65536
            try:
                for _ in range(64):  # 4 MB at most
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            except OSError:
                pass
            status, _, body = read_response(sock)
        except (TimeoutError, ConnectionError):
            status, body = 0, b""
        finally:
            sock.close()
    assert status in (401, 413), (status, body[:200])
