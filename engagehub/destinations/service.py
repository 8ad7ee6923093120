"""The delivery service: every due destination gets its own worker, so none waits on another."""

from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

from engagehub.destinations import store
from engagehub.destinations.errors import (
    DeliveryError,
    TerminalDeliveryError,
    TransientDeliveryError,
)
from engagehub.destinations.senders import HttpSender, NatsSender
from engagehub.model import StoredEvent
from engagehub.settings import Settings
from engagehub.storage import Database
from engagehub.storage.base import Connection

logger = logging.getLogger(__name__)
_MAX_RETRY_AFTER = 3600.0


class Sender(Protocol):
    """Delivers one batch or raises a classified DeliveryError."""

    def send(self, dest: store.Destination, msg_id: str, events: list[StoredEvent]) -> None:
        """Deliver or raise."""

    def close(self) -> None:
        """Release connections."""


def backoff_ms(settings: Settings, attempts: int, retry_after: float | None) -> int:
    """Exponential backoff with full jitter; a Retry-After answer is honoured (up to an hour)."""
    if retry_after is not None:
        return int(min(retry_after, _MAX_RETRY_AFTER) * 1000)
    cap = min(
        settings.destination_backoff_max_seconds,
        settings.destination_backoff_seconds * (2 ** min(attempts, 30)),
    )
    return int(random.uniform(cap / 2, cap) * 1000)


class Deliverer:
    """Delivers batches of one process: one sender per destination, reused between batches."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._senders: dict[str, Sender] = {}
        self._lock = threading.Lock()

    def sender(self, dest: store.Destination) -> Sender:
        """The sender for this destination (created once)."""
        with self._lock:
            found = self._senders.get(dest.name)
            if found is None:
                timeout = self.settings.destination_timeout_seconds
                allow = self.settings.allow_private_destinations
                found = (
                    NatsSender(timeout, allow)
                    if dest.kind == "nats"
                    else HttpSender(timeout, allow)
                )
                self._senders[dest.name] = found
            return found

    def close(self) -> None:
        """Close every sender."""
        with self._lock:
            for sender in self._senders.values():
                sender.close()
            self._senders.clear()

    def step(self, db: Database, name: str) -> bool:
        """Deliver at most one batch to ``name``; True when it may have more right away."""
        lease_ms = int(self.settings.destination_timeout_seconds * 1000 * 3) + 30_000
        with db.writer() as conn:
            if not store.claim(conn, name, lease_ms):
                return False
            try:
                dest = store.get(conn, name)
                letter = store.next_replay(conn, name)
                if letter is not None:
                    self._replay(conn, dest, letter)
                    return True
                upto = store.plan(conn, dest)
                if upto is None:
                    return False
                after = dest.cursor
                events = store.read_batch(conn, dest, after, upto)
                if not events:
                    store.delivered(conn, name, upto, 0)
                    return True
                msg_id = store.batch_id(name, after, upto)
                try:
                    self._send(dest, msg_id, events)
                except TransientDeliveryError as exc:
                    if dest.attempts + 1 >= self.settings.destination_max_attempts:
                        reason = f"gave up after {dest.attempts + 1} attempts: {exc.message}"
                        store.dead_letter(conn, dest, after, upto, len(events), reason)
                        return True
                    delay = backoff_ms(self.settings, dest.attempts, exc.retry_after)
                    store.failed(conn, name, exc.message, delay)
                    return False
                except TerminalDeliveryError as exc:
                    store.dead_letter(conn, dest, after, upto, len(events), exc.message)
                    return True
                store.delivered(conn, name, upto, len(events))
                return True
            finally:
                store.release(conn, name)

    def _send(self, dest: store.Destination, msg_id: str, events: list[StoredEvent]) -> None:
        """Send one batch; an unexpected exception becomes a transient failure with its text,
        so it is retried with backoff and shows in ``last_error`` (never a silent loop)."""
        try:
            self.sender(dest).send(dest, msg_id, events)
        except DeliveryError:
            raise
        except Exception as exc:
            logger.warning("delivery to %s failed unexpectedly", dest.name, exc_info=True)
            raise TransientDeliveryError(
                f"unexpected {type(exc).__name__}: {exc}"[:1000], destination=dest.name
            ) from exc

    def _replay(self, conn: Connection, dest: store.Destination, letter: dict[str, Any]) -> None:
        after, upto = int(letter["after_seq"]), int(letter["upto_seq"])
        events = store.read_batch(conn, dest, after, upto)
        try:
            self._send(dest, str(letter["batch_id"]), events)
        except DeliveryError as exc:
            store.mark_letter(conn, int(letter["id"]), "dead", exc.message)
            store.failed(conn, dest.name, exc.message, backoff_ms(self.settings, 0, None))
            return
        store.mark_letter(conn, int(letter["id"]), "replayed")


class DeliveryService:
    """Background service: submits each due destination to a worker pool without waiting on it."""

    name = "destinations"
    interval = 0.5

    def __init__(self, settings: Settings) -> None:
        self.deliverer = Deliverer(settings)
        self.pool = ThreadPoolExecutor(
            settings.destination_workers, thread_name_prefix="engagehub-deliver"
        )
        self._busy: dict[str, Future[bool]] = {}

    def run_once(self, db: Database) -> bool:
        """Start due destinations, collect finished ones; True when some may have more."""
        with db.reader() as conn:
            names = store.due(conn)
        for name in names:
            if name not in self._busy:
                self._busy[name] = self.pool.submit(self.deliverer.step, db, name)
        if not self._busy:
            return False
        done, _ = wait(
            list(self._busy.values()), timeout=self.interval, return_when=FIRST_COMPLETED
        )
        more = False
        for name, future in list(self._busy.items()):
            if future in done:
                del self._busy[name]
                try:
                    more = future.result() or more
                except Exception:
                    logger.exception("delivery to %s failed", name)
        return more

    def drain(self, db: Database, rounds: int = 10_000) -> None:
        """Deliver until no destination has work due now (CLI, tests)."""
        for _ in range(rounds):
            if not self.run_once(db) and not self._busy:
                with db.reader() as conn:
                    if not store.due_work(conn):
                        return

    def close(self) -> None:
        """Wait for workers and close connections."""
        self.pool.shutdown(wait=True)
        self.deliverer.close()
