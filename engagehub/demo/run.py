"""Send a demo plan: the six sources, Braze's Avro files, then every signed vendor request."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import fastavro
import orjson

from engagehub.demo.campaigns import SOURCES
from engagehub.demo.scenario import Call, Plan
from engagehub.demo.signing import SendGridSigner, basic, bearer, twilio_headers
from engagehub.errors import ConfigError, ConflictError, EngagehubError
from engagehub.storage import Database
from engagehub.storage import events as log
from engagehub.storage import sources as source_store
from engagehub.timeutil import now_ms
from engagehub.vendors import braze

AVRO_SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "EmailEvent",
        "namespace": "com.braze.currents",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "user_id", "type": "string"},
            {"name": "external_user_id", "type": ["null", "string"], "default": None},
            {"name": "time", "type": "long"},
            {"name": "timezone", "type": ["null", "string"], "default": None},
            {"name": "campaign_id", "type": ["null", "string"], "default": None},
            {"name": "campaign_name", "type": ["null", "string"], "default": None},
            {"name": "message_variation_id", "type": ["null", "string"], "default": None},
            {"name": "dispatch_id", "type": ["null", "string"], "default": None},
            {"name": "email_address", "type": "string"},
            {"name": "url", "type": ["null", "string"], "default": None},
            {"name": "user_agent", "type": ["null", "string"], "default": None},
            {"name": "channel", "type": ["null", "string"], "default": None},
            {"name": "subscription_status", "type": ["null", "string"], "default": None},
            {"name": "state_change_source", "type": ["null", "string"], "default": None},
        ],
    }
)


class Answer(Protocol):
    """What the demo reads from a response."""

    @property
    def status_code(self) -> int: ...
    @property
    def text(self) -> str: ...


class Client(Protocol):
    """An httpx-style client: a real ``httpx.Client`` or Starlette's in-process ``TestClient``."""

    @property
    def base_url(self) -> Any: ...
    def post(self, url: str, *, content: bytes, headers: dict[str, str]) -> Answer: ...


class DemoError(EngagehubError):
    """The server refused a demo request: the demo's own traffic must always be accepted."""

    code, http_status = "demo_failed", 500


@dataclass(frozen=True)
class Credentials:
    """Keys of the demo sources, derived from the seed so a re-run reaches the same sources."""

    seed: int

    def _derive(self, what: str) -> str:
        return hashlib.sha256(f"engagehub-demo:{self.seed}:{what}".encode()).hexdigest()[:32]

    @property
    def segment_key(self) -> str:
        """Write key of ``demo-segment``."""
        return "demo_" + self._derive("segment")

    @property
    def crossengage_token(self) -> str:
        """``X-XNG-AuthToken`` of ``demo-crossengage``."""
        return "demo_" + self._derive("crossengage")

    @property
    def twilio_token(self) -> str:
        """Auth token ``demo-twilio`` verifies ``X-Twilio-Signature`` with."""
        return self._derive("twilio")

    @property
    def braze_token(self) -> str:
        """Bearer token of ``demo-braze``."""
        return self._derive("braze")

    @property
    def moengage_token(self) -> str:
        """Bearer token of ``demo-moengage``."""
        return self._derive("moengage")

    def sendgrid(self) -> SendGridSigner:
        """The key pair whose public half ``demo-sendgrid`` holds."""
        return SendGridSigner(seed=str(self.seed))

    def sources(self) -> list[dict[str, Any]]:
        """Bodies of ``POST /api/sources`` for the six demo sources."""
        keyed = {"segment": self.segment_key, "crossengage": self.crossengage_token}
        secrets = {
            "sendgrid": self.sendgrid().public,
            "twilio": self.twilio_token,
            "braze": self.braze_token,
            "moengage": self.moengage_token,
        }
        return [
            {
                "name": name,
                "kind": kind,
                "write_key": keyed.get(kind) or "demo_" + self._derive(kind + ":key"),
                "secret": secrets.get(kind),
                "config": {"replies": {"STOP": "You are unsubscribed. Reply START to resume."}}
                if kind == "twilio"
                else {},
            }
            for kind, name in SOURCES.items()
        ]


@dataclass
class Report:
    """What a demo run did."""

    requests: int = 0
    sent: Counter[str] = field(default_factory=Counter)
    avro_files: list[Path] = field(default_factory=list)
    avro_imported: int = 0
    avro_duplicates: int = 0
    seconds: float = 0.0


def ensure_sources_db(db: Database, creds: Credentials) -> None:
    """Create the demo sources in the database; existing ones must hold this seed's keys."""
    with db.session() as conn:
        for spec in creds.sources():
            try:
                source_store.create(
                    conn,
                    spec["name"],
                    spec["kind"],
                    spec["write_key"],
                    spec["secret"],
                    spec["config"],
                )
            except ConflictError:
                existing = source_store.by_name(conn, spec["name"])
                owner = source_store.by_write_key(conn, spec["write_key"])
                same_secret = hmac.compare_digest(
                    existing.secret or "",
                    source_store.stored_secret(spec["kind"], spec["secret"]) or "",
                )
                if owner is None or owner.id != existing.id or not same_secret:
                    raise ConfigError(
                        f"source {spec['name']!r} exists with other keys (another --seed?); "
                        "use that seed or another database",
                        source=spec["name"],
                        seed=creds.seed,
                    ) from None


def ensure_sources_api(client: Client, creds: Credentials, admin_token: str) -> None:
    """Create the demo sources through ``POST /api/sources`` (a 409 means they exist)."""
    for spec in creds.sources():
        headers = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
        response = client.post("/api/sources", content=orjson.dumps(spec), headers=headers)
        if response.status_code not in (201, 409):
            raise DemoError(
                f"creating source {spec['name']!r} failed: HTTP {response.status_code}",
                response=response.text[:500],
            )


def write_avro(plan: Plan, out: Path) -> list[Path]:
    """Currents' layout: ``event_type=<type>/date=<YYYY-MM-DD-HH>/<file>.avro``."""
    files = []
    for event_type, records in plan.avro.items():
        by_hour: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            hour = datetime.fromtimestamp(record["time"], UTC).strftime("%Y-%m-%d-%H")
            by_hour.setdefault(hour, []).append(record)
        for hour, rows in sorted(by_hour.items()):
            folder = out / f"event_type={event_type}" / f"date={hour}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"demo-seed{plan.seed}.avro"
            with path.open("wb") as fh:
                fastavro.writer(fh, AVRO_SCHEMA, rows, codec="deflate")
            files.append(path)
    return files


def import_avro(db: Database, root: Path, region: str, report: Report) -> None:
    """The ``engagehub import braze-currents`` path: read each file, normalize, append."""
    with db.session() as conn:
        source = source_store.by_name(conn, SOURCES["braze"])
        for path, event_type in braze.avro_files(root):
            with path.open("rb") as fh:
                parsed = [braze.normalize(event_type, r, region) for r in fastavro.reader(fh)]  # type: ignore[arg-type]
            (result,) = log.append(conn, [log.Batch(source.id, now_ms(), parsed)])
            report.avro_imported += result.inserted
            report.avro_duplicates += result.duplicates


def request_of(
    call: Call, creds: Credentials, signer: SendGridSigner, base: str
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of the signed request a vendor would send for ``call``."""
    url = base.rstrip("/") + call.path
    if call.form is not None:
        return urlencode(call.form).encode(), twilio_headers(creds.twilio_token, url, call.form)
    body = orjson.dumps(call.json)
    if call.vendor == "segment":
        headers = basic(creds.segment_key)
    elif call.vendor == "sendgrid":
        headers = signer.headers(body)
    elif call.vendor == "crossengage":
        headers = {
            "X-XNG-AuthToken": creds.crossengage_token,
            "X-XNG-ApiVersion": "1",
            "Content-Type": "application/json",
        }
    elif call.vendor == "braze":
        headers = bearer(creds.braze_token)
    else:
        headers = bearer(creds.moengage_token)
    return body, headers


def send(
    client: Client,
    plan: Plan,
    creds: Credentials,
    report: Report,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Post every call in order; any refusal stops the demo with the server's answer."""
    signer = creds.sendgrid()
    base = str(client.base_url)
    for call in plan.calls:
        body, headers = request_of(call, creds, signer, base)
        response = client.post(call.path, content=body, headers=headers)
        if response.status_code >= 300:
            raise DemoError(
                f"{call.vendor} request to {call.path} was refused: HTTP {response.status_code}",
                response=response.text[:500],
            )
        report.requests += 1
        report.sent[call.vendor] += call.events
        if progress:
            progress(1)


def run(
    client: Client,
    plan: Plan,
    out: Path,
    db: Database | None = None,
    admin_token: str | None = None,
    region: str = "US",
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Sources, then Braze's Avro files (when ``db`` is local), then every HTTP request."""
    started = time.perf_counter()
    creds = Credentials(plan.seed)
    report = Report()
    if db is not None:
        ensure_sources_db(db, creds)
    elif admin_token:
        ensure_sources_api(client, creds, admin_token)
    else:
        raise ConfigError(
            "a remote server needs the admin token to create the demo sources",
            hint="pass --admin-token or set ENGAGEHUB_ADMIN_TOKEN",
        )
    report.avro_files = write_avro(plan, out)
    if db is not None:
        import_avro(db, out, region, report)
    send(client, plan, creds, report, progress)
    report.seconds = time.perf_counter() - started
    return report
