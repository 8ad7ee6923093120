"""``engagehub bench broadcast``: a broadcast through a local SMTP server (aiosmtpd, its own
process), against raw aiosmtplib sends of the same messages in the same run.

The broadcast path does everything a real one does: audience snapshot, consent check per
recipient, Liquid rendering, signed unsubscribe links, the two commits per wave (claim and the
SMTP point of no return), the result commit with the "Email Sent"/"Email Processed" events.
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosmtplib
import psutil

from engagehub.bench.ingest import free_port
from engagehub.errors import ConfigError
from engagehub.messaging import audiences, broadcasts, templates
from engagehub.messaging.service import MessagingService
from engagehub.settings import Settings
from engagehub.storage import migrate, open_database
from engagehub.timeutil import now_ms

TEMPLATE = templates.TemplateIn(
    name="bench",
    channel="email",
    subject="Hello {{ profile.first_name | default: 'friend' }}",
    html="<html><body><p>Our spring deals are here.</p></body></html>",
    text="Our spring deals are here.",
)


def template(links: int) -> templates.TemplateIn:
    """The bench template with ``links`` links in its HTML (each tracked when tracking is on)."""
    anchors = "".join(
        f'<p><a href="https://shop.example/deal/{i}?utm_source=mail&amp;utm_medium=email">'
        f"Deal {i}</a></p>"
        for i in range(links)
    )
    return TEMPLATE.model_copy(
        update={"html": f"<html><body><p>Our spring deals are here.</p>{anchors}</body></html>"}
    )


class Sink:
    """The counting SMTP server process."""

    def __init__(self) -> None:
        try:
            import aiosmtpd  # noqa: F401
        except ImportError:
            raise ConfigError(
                "the broadcast benchmark needs aiosmtpd: pip install 'engagehub[bench]'"
            ) from None
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engagehub.bench.smtp_sink", str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def counts(self) -> tuple[int, int]:
        """(messages, distinct Message-IDs) received so far."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("?\n")
        self.proc.stdin.flush()
        total, distinct = self.proc.stdout.readline().split()
        return int(total), int(distinct)

    def close(self) -> None:
        """Stop the server."""
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()


def _setup(settings: Settings, n: int, tpl: templates.TemplateIn = TEMPLATE) -> None:
    """N subscribed addresses, the template and an audience (not measured)."""
    db = open_database(settings.database_url, settings)
    now = now_ms()
    with db.session() as conn:
        migrate(conn)
        for start in range(0, n, 10_000):
            with conn.transaction():
                conn.executemany(
                    "INSERT INTO subscription_states (contact, channel, group_name, status, "
                    "event_time, seq, source, reason, own_action, updated_at) "
                    "VALUES (?, 'email', '', 'subscribed', ?, 0, 'bench', 'api', 0, ?)",
                    [
                        (f"r{i:07d}@example.com", now, now)
                        for i in range(start, min(n, start + 10_000))
                    ],
                )
        templates.save(conn, tpl)
        audiences.save(conn, audiences.AudienceIn(name="everyone", channel="email"))
        broadcasts.create(
            conn,
            broadcasts.BroadcastIn(
                name="bench", template="bench", audience="everyone", rate_per_second=100_000
            ),
        )
    db.close()


def _broadcast(settings: Settings, progress: Callable[[int], None]) -> dict[str, float]:
    """Start (snapshot) and send the broadcast; RSS sampled after every batch."""
    me = psutil.Process()
    db = open_database(settings.database_url, settings)
    started = time.perf_counter()
    with db.writer() as conn:
        info = broadcasts.start(conn, "bench")
    snapshot = time.perf_counter() - started
    peak = me.memory_info().rss
    service = MessagingService(settings)
    started = time.perf_counter()
    cpu = time.process_time()
    while True:
        service.run_once(db)
        with db.reader() as conn:
            info = broadcasts.status(conn, "bench")
        progress(info["counts"].get("sent", 0))
        peak = max(peak, me.memory_info().rss)
        if info["state"] == "done":
            break
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    db.close()
    return {
        "snapshot_s": snapshot,
        "send_s": elapsed,
        "cpu_s": cpu,
        "sent": info["counts"].get("sent", 0),
        "rss_mb": peak / 2**20,
    }


async def _raw(settings: Settings, n: int) -> float:
    """Baseline: the same messages through aiosmtplib, same connection count, no database."""
    from engagehub.messaging.providers.base import Outgoing
    from engagehub.messaging.providers.smtp import build

    rendered = templates.render(TEMPLATE, {"profile": {}}, footer=False)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=settings.smtp_port)
        await client.connect()
        while not queue.empty():
            i = queue.get_nowait()
            to = f"b{i:07d}@example.com"
            data = build(Outgoing(f"raw-{i}", "email", to, rendered), settings.email_from)
            await client.sendmail(settings.email_from, [to], data)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(settings.smtp_connections)))
    return time.perf_counter() - started


def run(
    n: int, baseline_n: int, progress: Callable[[int], None], links: int = 0, compare: bool = False
) -> dict[str, Any]:
    """Figures: broadcast msg/s and peak RSS, raw aiosmtplib msg/s, their ratio; with
    ``links`` (or ``compare``), the same broadcast first with click tracking off (the same-run
    baseline of tracking's cost: link rewriting, signing, the honeypot)."""
    sink = Sink()
    untracked: dict[str, float] | None = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                database_url=f"sqlite:///{Path(tmp) / 'bench.db'}",
                smtp_port=sink.port,
                public_base_url="https://hub.example",
                send_batch=1000,
                smtp_connections=32,
            )
            tpl = template(links) if links else TEMPLATE
            if (
                links or compare
            ):  # tracking off first: the page cache warms for neither run's benefit
                plain = settings.model_copy(
                    update={
                        "database_url": f"sqlite:///{Path(tmp) / 'plain.db'}",
                        "click_tracking": False,
                    }
                )
                _setup(plain, n, tpl)
                untracked = _broadcast(plain, progress)
            before = sink.counts()[0]
            _setup(settings, n, tpl)
            figures = _broadcast(settings, progress)
            rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            received, distinct = sink.counts()
            received -= before
            raw_s = asyncio.run(_raw(settings, baseline_n))
            raw_received = sink.counts()[0] - received - before
    finally:
        sink.close()
    rate = figures["sent"] / figures["send_s"]
    raw_rate = raw_received / raw_s
    out: dict[str, Any] = {
        "recipients": n,
        "sent": int(figures["sent"]),
        "received_by_smtp_server": received,
        "distinct_message_ids": distinct,
        "audience_snapshot_s": round(figures["snapshot_s"], 2),
        "broadcast_s": round(figures["send_s"], 2),
        "broadcast_msg_per_s": round(rate, 1),
        "broadcast_peak_rss_mb": round(figures["rss_mb"], 1),
        "process_max_rss_mb": round(rss_peak, 1),
        "baseline_raw_aiosmtplib_msgs": raw_received,
        "baseline_raw_aiosmtplib_msg_per_s": round(raw_rate, 1),
        "ratio_broadcast_vs_raw": round(rate / raw_rate, 3),
    }
    if untracked is not None:  # message ids derive from broadcast and contact: the same twice
        out["distinct_message_ids_both_runs"] = out.pop("distinct_message_ids")
        plain_rate = untracked["sent"] / untracked["send_s"]
        out["links_per_message"] = links
        out["untracked_broadcast_msg_per_s"] = round(plain_rate, 1)
        out["ratio_tracked_vs_untracked"] = round(rate / plain_rate, 3)
        # CPU per message (all threads of this process): robust on a loaded machine
        out["cpu_us_per_msg"] = round(figures["cpu_s"] / figures["sent"] * 1e6, 1)
        out["untracked_cpu_us_per_msg"] = round(untracked["cpu_s"] / untracked["sent"] * 1e6, 1)
    return out
