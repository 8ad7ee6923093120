"""Dashboard page ``/sources``: who sends events, how much today, what was refused; add, rotate.

Adding a source shows exactly what to paste into the vendor's console (URLs, the write key or a
generated bearer token, shown once). Every vendor source gets a "send a test event" button that
runs a body in that vendor's format through the same parse and commit code as its ingest route
(``engagehub.ingest.probe``).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from engagehub.api.sources import check_kind, sources_with_activity
from engagehub.errors import PayloadError
from engagehub.hub import Hub
from engagehub.ingest import probe
from engagehub.ingest.cors import check_config
from engagehub.ingest.respond import commit
from engagehub.ops import metrics
from engagehub.storage import sources as source_store
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts, now_ms
from engagehub.vendors import SOURCE_KINDS
from engagehub.web.common import alert, form_of, guarded, redirect, render
from engagehub.web.listing import fields, listing

router = APIRouter(include_in_schema=False)

# Kinds whose secret is a bearer token we make up (the vendor's console takes what we show).
_GENERATED_SECRET = frozenset({"braze", "moengage"})
# Where each kind's secret comes from, for the form.
SECRET_HELP = {
    "sendgrid": "Verification key SendGrid shows under Event Webhook → Signature Verification",
    "twilio": "Twilio Auth Token (Console → Account info)",
    "braze": "Leave empty to generate a bearer token",
    "moengage": "Leave empty to generate a bearer token",
}


def base_url(request: Request, hub: Hub) -> str:
    """This server's public URL (``ENGAGEHUB_PUBLIC_BASE_URL`` or the request's)."""
    return (hub.settings.public_base_url or str(request.base_url)).rstrip("/")


def setup_fields(kind: str, name: str, base: str) -> list[tuple[str, str]]:
    """(label, value) pairs to paste into the vendor's console for a source."""
    n = quote(name, safe="")
    if kind == "segment":
        return [
            ("Host (server libraries)", base),
            ("cdnURL (analytics.js)", base),
            ("Batch endpoint", f"{base}/v1/batch"),
        ]
    if kind == "crossengage":
        return [
            ("Events URL (header X-XNG-AuthToken: the write key)", f"{base}/crossengage/events")
        ]
    if kind == "sendgrid":
        return [("Event Webhook HTTP POST URL", f"{base}/webhooks/sendgrid/{n}")]
    if kind == "twilio":
        return [
            ("Status callback URL", f"{base}/webhooks/twilio/{n}/status"),
            ("Incoming message webhook", f"{base}/webhooks/twilio/{n}/inbound"),
        ]
    if kind == "braze":
        return [("Currents custom HTTP connector URL", f"{base}/webhooks/braze-currents/{n}")]
    return [("Streams URL", f"{base}/webhooks/moengage/{n}")]


def refusals() -> list[dict[str, Any]]:
    """Refused requests per vendor and reason, with the latest refusal's error (this process)."""
    out = []
    for vendor, reasons in sorted(metrics.refusals().items()):
        last = metrics.LAST_REFUSAL.get(vendor)
        out.append(
            {
                "vendor": vendor,
                "reasons": sorted(reasons.items()),
                "total": sum(reasons.values()),
                "last_at": format_ts(last[0]) if last else None,
                "last_code": last[1] if last else None,
                "last_message": last[2] if last else None,
            }
        )
    return out


def _refusal_text(r: dict[str, Any]) -> list[Any]:
    return [r["vendor"], r["last_code"], r["last_message"], *(k for k, _ in r["reasons"])]


@router.get("/sources")
async def sources_page(request: Request) -> Response:
    """Every source with events today, last event, refusals, and the add form."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        found = await hub.read(sources_with_activity)
        return render(
            "sources.html",
            csrf=sess["csrf"],
            alert=alert(request),
            sources=listing(request, "sources", found, fields("name", "kind")),
            refusals=listing(request, "refusals", refusals(), _refusal_text),
            kinds=SOURCE_KINDS,
            secret_help=SECRET_HELP,
            notice=request.query_params.get("notice"),
        )

    return await guarded(request, page)


@router.post("/sources")
async def add_source(request: Request) -> Response:
    """Create a source and show what to paste into the vendor's console (once)."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        form = await form_of(request, sess)
        name, kind = form.get("name", "").strip(), form.get("kind", "")
        check_kind(kind)
        if not name or len(name) > 100 or not all(c.isalnum() or c in "_.-" for c in name):
            raise PayloadError(
                "a source name is 1 to 100 letters, digits, '_', '.' or '-'",
                field="name",
                value=name,
            )
        secret = form.get("secret", "").strip() or None
        if secret is None and kind in _GENERATED_SECRET:
            secret = "eh_" + secrets.token_urlsafe(32)
        shown_secret = secret if kind in _GENERATED_SECRET else None
        config = _origins_config(form.get("allowed_origins", ""))
        check_config(config)

        def run(conn: Connection) -> tuple[source_store.Source, str]:
            return source_store.create(conn, name, kind, None, secret, config)

        source, key = await hub.write(run)
        hub.forget_sources()
        return _created(request, hub, sess, source, key, shown_secret, "created")

    return await guarded(request, page, "/sources#add")


def _origins_config(text: str) -> dict[str, Any]:
    origins = [o.strip() for o in text.replace(",", " ").split() if o.strip()]
    return {"allowed_origins": origins} if origins else {}


def _created(
    request: Request,
    hub: Hub,
    sess: dict[str, Any],
    source: source_store.Source,
    key: str | None,
    secret: str | None,
    what: str,
) -> Response:
    return render(
        "source_created.html",
        csrf=sess["csrf"],
        source=source,
        what=what,
        write_key=key,
        secret=secret,
        fields=setup_fields(source.kind, source.name, base_url(request, hub)),
    )


@router.post("/sources/{name}/rotate-key")
async def rotate_key(request: Request, name: str) -> Response:
    """A new write key, shown once; the old one stops working."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        await form_of(request, sess)
        key = await hub.write(lambda c: source_store.rotate_key(c, name))
        hub.forget_sources()
        source = await hub.read(lambda c: source_store.by_name(c, name))
        return _created(request, hub, sess, source, key, None, "given a new write key")

    return await guarded(request, page, "/sources")


@router.post("/sources/{name}/secret")
async def replace_secret(request: Request, name: str) -> Response:
    """Replace the vendor secret (or generate a new bearer token for Braze and MoEngage)."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        form = await form_of(request, sess)
        source = await hub.read(lambda c: source_store.by_name(c, name))
        secret = form.get("secret", "").strip()
        if not secret and source.kind in _GENERATED_SECRET:
            secret = "eh_" + secrets.token_urlsafe(32)
        if not secret:
            raise PayloadError("enter the new secret", field="secret")
        await hub.write(lambda c: source_store.set_secret(c, name, secret))
        hub.forget_sources()
        shown = secret if source.kind in _GENERATED_SECRET else None
        return _created(request, hub, sess, source, None, shown, "given a new secret")

    return await guarded(request, page, "/sources")


@router.post("/sources/{name}/test")
async def send_test_event(request: Request, name: str) -> Response:
    """Store a test event in the source's vendor format through that vendor's parser."""

    async def page(request: Request, hub: Hub, sess: dict[str, Any]) -> Response:
        await form_of(request, sess)
        source = await hub.read(lambda c: source_store.by_name(c, name))
        if source.kind not in SOURCE_KINDS:
            raise PayloadError(
                f"test events go to vendor sources; {name!r} is {source.kind!r}",
                field="source",
                value=name,
            )
        received = now_ms()
        s = hub.settings
        result = probe.sample(source.kind, received, s.default_region, s.max_event_bytes)
        await commit(hub, source.id, result, received, single=True)
        event = result.events[0]
        what = event.event or event.vendor_event
        return redirect(f"/sources?notice={quote(f'test event stored for {name}: {what}')}")

    return await guarded(request, page, "/sources")
