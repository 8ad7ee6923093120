"""Machine opens and suspected bot clicks, flagged where events are parsed (never dropped).

``flag(event)`` marks an open or click in its properties: ``machine_open: true`` with
``machine_open_reason``, or ``bot_click: true`` with ``bot_click_reason``. Reasons, first match
wins: the vendor's own flag (SendGrid ``sg_machine_open``, Braze ``machine_open`` and
``is_suspected_bot_click``; an explicit "no" from the vendor is kept too), an Apple Mail
Privacy Protection fetch, a known scanner or link-preview user agent, a known network, a HEAD
request. The agents and networks are data
(``data/machines.yaml``). The timing rules (``too_fast``, ``burst``) need the message's other
events and run where the server commits events (``classify.timing``).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from importlib import resources
from typing import Any

from engagehub import yamltext
from engagehub.model import IncomingEvent

OPEN_EVENTS = frozenset(("Email Opened", "Email Machine Opened"))
CLICK_EVENTS = frozenset(
    ("Email Link Clicked", "SMS Link Clicked", "WhatsApp Message Clicked", "Message Clicked")
)
_TRUE = (True, "true", "True", "TRUE", 1, "1")
_FALSE = (False, "false", "False", "FALSE", 0, "0")


@functools.cache
def machines() -> dict[str, Any]:
    """Agents and networks of ``data/machines.yaml``, parsed once."""
    text = (resources.files("engagehub.classify") / "data" / "machines.yaml").read_text("utf-8")
    data: dict[str, Any] = yamltext.safe_load(text)
    for key in ("open_networks", "click_networks"):
        data[key] = [ipaddress.ip_network(n) for n in data.get(key) or []]
    return data


def _in(address: object, networks: Sequence[Any]) -> bool:
    if not isinstance(address, str) or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _agent(props: dict[str, Any]) -> str:
    value = props.get("user_agent")
    return value.strip().lower() if isinstance(value, str) else ""


def open_reason(props: dict[str, Any]) -> str | None:
    """Why an open was a machine's, or None when it looks like a person's."""
    said = [props[k] for k in ("machine_open", "sg_machine_open") if k in props]
    if any(v in _TRUE for v in said):
        return "vendor"
    if said and all(v in _FALSE for v in said):
        return None  # the vendor looked and decided: its signals are better than ours
    data = machines()
    agent = _agent(props)
    if agent and agent in data["exact_open_agents"]:
        return "apple_mpp"
    if _in(props.get("ip"), data["open_networks"]):
        return "apple_mpp"
    if agent and any(a in agent for a in data["open_agents"]):
        return "proxy_user_agent"
    return None


def click_reason(props: dict[str, Any]) -> str | None:
    """Why a click looks like a bot's, or None when it looks like a person's."""
    said = props.get("is_suspected_bot_click")
    if said in _TRUE or props.get("bot_click") in _TRUE:
        why = props.get("suspected_bot_click_reason")
        if isinstance(why, list) and why:
            return "vendor: " + ", ".join(str(w) for w in why)
        return "vendor"
    if said in _FALSE:
        return None  # the vendor looked and decided
    if str(props.get("http_method") or "").upper() == "HEAD":
        return "head_request"
    data = machines()
    agent = _agent(props)
    if agent and any(a in agent for a in data["click_agents"]):
        return "scanner_user_agent"
    if _in(props.get("ip"), data["click_networks"]):
        return "scanner_network"
    return None


def flag(event: IncomingEvent) -> IncomingEvent:
    """Mark a machine open or suspected bot click in ``event.properties`` (returns it)."""
    props = event.properties
    if event.event in OPEN_EVENTS:
        reason = open_reason(props)
        if reason is not None:
            props["machine_open"] = True
            props.setdefault("machine_open_reason", reason)
    elif event.event in CLICK_EVENTS:
        reason = click_reason(props)
        if reason is not None:
            props["bot_click"] = True
            props.setdefault("bot_click_reason", reason)
    return event
