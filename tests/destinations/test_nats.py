"""NATS JetStream delivery against a real ``nats-server -js``."""

from __future__ import annotations

import asyncio

import nats
import orjson

from engagehub.destinations import store
from engagehub.destinations.service import DeliveryService
from engagehub.settings import Settings
from engagehub.storage import Database
from tests.destinations.conftest import add_events


async def _stream(url: str, create: bool) -> list[dict[str, object]]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        if create:
            await js.add_stream(name="ENGAGE", subjects=["engage.events"])
            return []
        sub = await js.pull_subscribe("engage.events", durable=None)
        info = await js.stream_info("ENGAGE")
        msgs = await sub.fetch(int(info.state.messages), timeout=2) if info.state.messages else []
        return [orjson.loads(m.data) for m in msgs]
    finally:
        await nc.close()


def drain(settings: Settings, db: Database) -> None:
    service = DeliveryService(settings)
    try:
        service.drain(db)
    finally:
        service.close()


def test_jetstream_delivery_dedupes_replays(
    settings: Settings, db: Database, nats_url: str
) -> None:
    asyncio.run(_stream(nats_url, create=True))
    with db.session() as conn:
        store.create(conn, "bus", "nats", nats_url, subject="engage.events", start=0)
    add_events(db, 5)
    drain(settings, db)
    got = asyncio.run(_stream(nats_url, create=False))
    assert [m["seq"] for m in got] == [1, 2, 3, 4, 5]
    assert got[0]["event"] == "Email Delivered"
    with db.session() as conn:
        store.replay(conn, "bus")  # at-least-once resend: JetStream drops the duplicates
    drain(settings, db)
    assert len(asyncio.run(_stream(nats_url, create=False))) == 5


def test_nats_down_is_transient(settings: Settings, db: Database) -> None:
    from tests.destinations.conftest import free_port

    with db.session() as conn:
        store.create(conn, "bus", "nats", f"nats://127.0.0.1:{free_port()}", subject="x", start=0)
    add_events(db, 1)
    service = DeliveryService(settings)
    try:
        service.run_once(db)
    finally:
        service.close()
    with db.session() as conn:
        dest = store.get(conn, "bus")
    assert dest.cursor == 0
    assert dest.failures == 1
    assert "NATS" in (dest.last_error or "")
