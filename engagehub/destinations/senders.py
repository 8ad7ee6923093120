"""How a batch reaches each kind of destination: signed webhook, Segment batch, NATS JetStream.

A sender raises ``TransientDeliveryError`` or ``TerminalDeliveryError`` (decided once, in
``errors.classify``); returning means the destination accepted the whole batch.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from engagehub.destinations import signing
from engagehub.destinations.errors import (
    TerminalDeliveryError,
    TransientDeliveryError,
    classify,
    retry_after_seconds,
)
from engagehub.destinations.guard import Target, host_header, pinned, resolve
from engagehub.destinations.store import Destination
from engagehub.errors import PayloadError
from engagehub.eventjson import SHAPE_VERSION, event_json, name_of
from engagehub.model import StoredEvent
from engagehub.timeutil import format_ts, now_ms


def webhook_body(dest: Destination, msg_id: str, events: Sequence[StoredEvent]) -> bytes:
    """JSON body of a webhook batch."""
    return orjson.dumps(
        {
            "type": "engagehub.events",
            "batch_id": msg_id,
            "destination": dest.name,
            "shape_version": SHAPE_VERSION,
            "events": [event_json(e) for e in events],
        }
    )


def segment_body(events: Sequence[StoredEvent]) -> bytes:
    """A Segment ``/v1/batch`` body (messageId = our stable event id): track calls under the
    event's name, identify/page/screen/group/alias calls as their own type."""
    calls = []
    for ev in events:
        call: dict[str, Any] = {
            "type": ev.type if ev.type in _SEGMENT_TYPES else "track",
            "messageId": ev.event_id,
            "timestamp": format_ts(ev.event_time),
            "context": {"library": {"name": "engagehub"}},
        }
        if call["type"] == "track":
            call["event"] = name_of(ev.event, ev.vendor_event)
            call["properties"] = ev.properties
        elif call["type"] == "identify":
            call["traits"] = ev.properties
        else:
            call["properties"] = ev.properties
            for field, prop in _SEGMENT_FIELDS.get(call["type"], {}).items():
                if ev.properties.get(prop) is not None:
                    call[field] = ev.properties[prop]
        if ev.user_id:
            call["userId"] = ev.user_id
        call["anonymousId"] = ev.anonymous_id or (None if ev.user_id else ev.contact or ev.event_id)
        if call["anonymousId"] is None:
            del call["anonymousId"]
        calls.append(call)
    return orjson.dumps({"batch": calls, "sentAt": format_ts(now_ms())})


_SEGMENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
_SEGMENT_FIELDS = {
    "page": {"name": "name"},
    "screen": {"name": "name"},
    "group": {"groupId": "group_id"},
    "alias": {"previousId": "previous_id"},
}


def segment_url(url: str) -> str:
    """Accept a Segment-compatible base URL or the full ``/v1/batch`` endpoint."""
    url = url.rstrip("/")
    return url if url.endswith("/v1/batch") else url + "/v1/batch"


def _checked(dest: Destination, allow_private: bool) -> Target:
    """The SSRF guard's verdict at delivery time (DNS may have changed since the create)."""
    try:
        return resolve(dest.url, dest.kind, allow_private)
    except PayloadError as exc:
        raise TerminalDeliveryError(exc.message, destination=dest.name, url=dest.url) from None


class HttpSender:
    """Posts batches over one keep-alive client per destination."""

    def __init__(self, timeout: float, allow_private: bool) -> None:
        self.client = httpx.Client(timeout=timeout, follow_redirects=False)
        self.allow_private = allow_private

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def send(self, dest: Destination, msg_id: str, events: Sequence[StoredEvent]) -> None:
        """POST one batch; raise a classified DeliveryError unless it got a 2xx."""
        target = _checked(dest, self.allow_private)
        headers = {"content-type": "application/json", "user-agent": "engagehub"}
        if dest.kind == "segment":
            url = segment_url(dest.url)
            body = segment_body(events)
            token = base64.b64encode(f"{dest.secret or ''}:".encode()).decode()
            headers["authorization"] = f"Basic {token}"
            headers["idempotency-key"] = msg_id
        else:
            url = dest.url
            body = webhook_body(dest, msg_id, events)
            key = signing.secret_bytes(dest.secret or "")
            headers.update(signing.headers(key, msg_id, now_ms() // 1000, body))
        headers["host"] = host_header(url)
        # connect to the address the guard checked (no second DNS answer); TLS still checks
        # the certificate against the host name
        extensions = {"sni_hostname": target.host} if url.startswith("https:") else {}
        try:
            response = self.client.post(
                pinned(url, target), content=body, headers=headers, extensions=extensions
            )
        except httpx.TimeoutException as exc:
            raise TransientDeliveryError(
                f"timed out posting to {url}: {type(exc).__name__}", destination=dest.name, url=url
            ) from None
        except httpx.HTTPError as exc:
            raise TransientDeliveryError(
                f"connection to {url} failed: {type(exc).__name__}: {exc}",
                destination=dest.name,
                url=url,
            ) from None
        error = classify(response.status_code)
        if error is None:
            return
        message = f"{url} answered HTTP {response.status_code}: {response.text[:200]!r}"
        if error is TransientDeliveryError:
            raise TransientDeliveryError(
                message,
                retry_after=retry_after_seconds(response.headers.get("retry-after")),
                destination=dest.name,
                status=response.status_code,
            )
        raise error(message, destination=dest.name, status=response.status_code)


async def _quiet(exc: Exception) -> None:
    """nats-py logs every failed connect attempt itself; the sender reports the outcome once."""


class NatsSender:
    """Publishes each event to JetStream with ``Nats-Msg-Id`` = event id (server-side dedup)."""

    def __init__(self, timeout: float, allow_private: bool) -> None:
        self.timeout = timeout
        self.allow_private = allow_private

    def close(self) -> None:
        """Nothing held between batches."""

    def send(self, dest: Destination, msg_id: str, events: Sequence[StoredEvent]) -> None:
        """Publish and wait for every JetStream ack."""
        target = _checked(dest, self.allow_private)
        try:
            # nats-py retries a refused first connect forever: bound the whole batch instead
            limit = self.timeout * 2 + 0.01 * len(events)
            asyncio.run(asyncio.wait_for(self._publish(dest, target, msg_id, events), limit))
        except TimeoutError:
            raise TransientDeliveryError(
                f"NATS {dest.url} did not connect or ack in time", destination=dest.name
            ) from None
        except Exception as exc:
            raise TransientDeliveryError(
                f"NATS {dest.url} failed: {type(exc).__name__}: {exc}", destination=dest.name
            ) from None

    async def _publish(
        self, dest: Destination, target: Target, msg_id: str, events: Sequence[StoredEvent]
    ) -> None:
        import nats

        nc = await nats.connect(
            pinned(dest.url, target),
            tls_hostname=target.host if dest.url.startswith("tls:") else None,
            connect_timeout=self.timeout,
            max_reconnect_attempts=0,
            allow_reconnect=False,
            error_cb=_quiet,
        )
        try:
            js = nc.jetstream(timeout=self.timeout)
            acks = [
                js.publish(
                    dest.subject or "",
                    orjson.dumps(event_json(ev)),
                    headers={"Nats-Msg-Id": ev.event_id, "Engagehub-Batch-Id": msg_id},
                )
                for ev in events
            ]
            await asyncio.gather(*acks)
        finally:
            await nc.close()
