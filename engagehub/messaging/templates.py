"""Message templates in Liquid: stored, validated, and rendered with profile and event data.

Merge tags read ``profile`` (traits), ``event`` (trigger properties), ``contact`` and the links
``unsubscribe_url``/``preferences_url``. Strict mode reports every missing tag by name; a
``| default: "..."`` filter is the way to make a tag optional. Marketing emails always carry an
unsubscribe link and marketing SMS the "Reply STOP to unsubscribe" footer.
"""

from __future__ import annotations

import contextvars
import html as html_lib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import orjson
from liquid import Environment, Undefined
from liquid.exceptions import LiquidError
from pydantic import BaseModel, Field, model_validator

from engagehub.errors import NotFound, PayloadError
from engagehub.messaging import sms
from engagehub.storage.base import Connection
from engagehub.timeutil import format_ts, now_ms

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
_missing: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("missing", default=None)


class _Recording(Undefined):  # type: ignore[misc,unused-ignore]
    """Undefined that renders as "" and records its name, so every missing tag is reported."""

    force_liquid_default = True

    def __str__(self) -> str:
        found = _missing.get()
        hint = self.hint or ""
        name = hint.removesuffix(" is undefined").strip("'") if hint else self.name
        if found is not None and name not in found:
            found.append(name)
        return ""


_ENV = Environment(undefined=_Recording, autoescape=False)


@lru_cache(maxsize=512)
def _parsed(source: str) -> Any:
    """Parse once per distinct source (a broadcast renders one template many times)."""
    return _ENV.from_string(source)


class TemplateIn(BaseModel):
    """A template as the API and ``templates add`` take it."""

    name: str = Field(pattern=NAME_PATTERN)
    channel: Literal["email", "sms"]
    kind: Literal["marketing", "transactional"] = "marketing"
    subscription_group: str = Field(default="", max_length=200)
    subject: str | None = Field(default=None, max_length=998)
    html: str | None = Field(default=None, max_length=512 * 1024)
    text: str | None = Field(default=None, max_length=512 * 1024)
    body: str | None = Field(default=None, max_length=10_000)

    @model_validator(mode="after")
    def _parts(self) -> TemplateIn:
        if self.channel == "email":
            if not self.subject:
                raise ValueError("an email template needs a subject")
            if not (self.html or self.text):
                raise ValueError("an email template needs html or text")
            if self.body:
                raise ValueError("body is for SMS templates; use html/text")
        else:
            if not self.body:
                raise ValueError("an SMS template needs a body")
            if self.subject or self.html or self.text:
                raise ValueError("subject/html/text are for email templates; use body")
        return self

    def parts(self) -> dict[str, str]:
        """The Liquid sources of this template, by part name."""
        names = ("subject", "html", "text", "body")
        return {n: getattr(self, n) for n in names if getattr(self, n)}


@dataclass(slots=True)
class Rendered:
    """One message rendered for one recipient."""

    channel: str
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    body: str | None = None
    missing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form for previews (SMS adds encoding and segments)."""
        out: dict[str, Any] = {"channel": self.channel}
        if self.channel == "email":
            out.update(subject=self.subject, html=self.html, text=self.text)
        else:
            out.update(body=self.body, sms=sms.analyze(self.body or "").as_dict())
        if self.missing:
            out["missing"] = self.missing
        return out


def check_syntax(tpl: TemplateIn) -> None:
    """Parse every part now, so a broken template is refused when saved, not when sent."""
    for part, source in tpl.parts().items():
        try:
            _ENV.from_string(source)
        except LiquidError as exc:
            raise PayloadError(
                f"invalid Liquid in {part}: {exc}", field=part, template=tpl.name
            ) from None


def render(
    tpl: TemplateIn, context: dict[str, Any], strict: bool = True, footer: bool = True
) -> Rendered:
    """Render every part; strict mode fails naming each missing merge tag."""
    missing: list[str] = []
    token = _missing.set(missing)
    out = Rendered(tpl.channel)
    try:
        for part, source in tpl.parts().items():
            try:
                text = _parsed(source).render(**context)
            except LiquidError as exc:
                raise PayloadError(f"cannot render {part}: {exc}", field=part) from None
            setattr(out, part, text)
    finally:
        _missing.reset(token)
    if missing and strict:
        raise PayloadError(
            f"unknown merge tags in template {tpl.name!r}: {', '.join(missing)}; add them to "
            "the profile/event or give a | default: value",
            template=tpl.name,
            missing=missing,
        )
    out.missing = missing
    if tpl.kind == "marketing" and footer:
        _add_footers(out, context)
    return out


def _add_footers(out: Rendered, context: dict[str, Any]) -> None:
    """Marketing policy: an unsubscribe link in every email, the STOP footer in every SMS."""
    if out.channel == "sms":
        out.body = sms.with_stop_footer(out.body or "")
        return
    url = str(context.get("unsubscribe_url") or "")
    if not url:
        return
    if out.html is not None and url not in out.html and html_lib.escape(url) not in out.html:
        link = f'<p style="font-size:12px"><a href="{html_lib.escape(url)}">Unsubscribe</a></p>'
        body_end = re.search(r"</body\s*>", out.html, re.IGNORECASE)
        if body_end:
            out.html = out.html[: body_end.start()] + link + out.html[body_end.start() :]
        else:
            out.html += link
    if out.text is not None and url not in out.text:
        out.text = f"{out.text.rstrip()}\n\nUnsubscribe: {url}\n"


# --- storage -------------------------------------------------------------------------------


def save(conn: Connection, tpl: TemplateIn) -> dict[str, Any]:
    """Create or replace a template (validated first)."""
    check_syntax(tpl)
    now = now_ms()
    with conn.transaction():
        conn.execute(
            "INSERT INTO message_templates (name, channel, kind, subscription_group, subject, "
            "html, text, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET channel = excluded.channel, kind = excluded.kind, "
            "subscription_group = excluded.subscription_group, subject = excluded.subject, "
            "html = excluded.html, text = excluded.text, body = excluded.body, "
            "updated_at = excluded.updated_at",
            (
                tpl.name,
                tpl.channel,
                tpl.kind,
                tpl.subscription_group,
                tpl.subject,
                tpl.html,
                tpl.text,
                tpl.body,
                now,
                now,
            ),
        )
    return describe(conn, tpl.name)


def load(conn: Connection, name: str) -> TemplateIn:
    """A stored template; 404 naming it when absent."""
    row = conn.one("SELECT * FROM message_templates WHERE name = ?", (name,))
    if row is None:
        raise NotFound(f"no template named {name!r}", template=name)
    return TemplateIn(
        name=row["name"],
        channel=row["channel"],
        kind=row["kind"],
        subscription_group=row["subscription_group"],
        subject=row["subject"],
        html=row["html"],
        text=row["text"],
        body=row["body"],
    )


def describe(conn: Connection, name: str) -> dict[str, Any]:
    """A stored template, JSON-ready."""
    row = conn.one("SELECT * FROM message_templates WHERE name = ?", (name,))
    if row is None:
        raise NotFound(f"no template named {name!r}", template=name)
    out = {k: row[k] for k in ("name", "channel", "kind", "subject", "html", "text", "body")}
    out["subscription_group"] = row["subscription_group"] or None
    out["created_at"] = format_ts(row["created_at"])
    out["updated_at"] = format_ts(row["updated_at"])
    return out


def list_all(conn: Connection) -> list[dict[str, Any]]:
    """Every template, by name."""
    names = conn.all("SELECT name FROM message_templates ORDER BY name")
    return [describe(conn, r["name"]) for r in names]


def delete(conn: Connection, name: str) -> None:
    """Remove a template; 404 when absent."""
    with conn.transaction():
        if not conn.execute("DELETE FROM message_templates WHERE name = ?", (name,)).rowcount:
            raise NotFound(f"no template named {name!r}", template=name)


def groups(conn: Connection) -> list[str]:
    """Subscription groups named by templates (shown on the preference page)."""
    rows = conn.all(
        "SELECT DISTINCT subscription_group AS g FROM message_templates "
        "WHERE subscription_group <> '' ORDER BY g"
    )
    return [r["g"] for r in rows]


def parse_file(text: str, fmt: str) -> dict[str, Any]:
    """A template file (YAML or JSON) as a dict."""
    import yaml

    from engagehub import yamltext

    try:
        data = orjson.loads(text) if fmt == "json" else yamltext.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise PayloadError(f"cannot read the template file: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("a template file holds one object", value=str(data)[:100])
    return data
