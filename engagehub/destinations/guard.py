"""SSRF guard and URL checks: a destination may not point into our own network by default."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from engagehub.errors import PayloadError

SCHEMES = {"webhook": ("http", "https"), "segment": ("http", "https"), "nats": ("nats", "tls")}


def parse_url(url: str, kind: str) -> tuple[str, int]:
    """Host and port of a destination URL; a clear error naming the URL when it is unusable."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise PayloadError(f"invalid URL {url!r}: {exc}", field="url", value=url) from None
    schemes = SCHEMES.get(kind, ("http", "https"))
    if parts.scheme not in schemes:
        raise PayloadError(
            f"invalid URL {url!r}: a {kind} destination needs a {' or '.join(schemes)} URL",
            field="url",
            value=url,
        )
    if not parts.hostname:
        raise PayloadError(f"invalid URL {url!r}: no host", field="url", value=url)
    default = {"https": 443, "http": 80, "nats": 4222, "tls": 4222}[parts.scheme]
    return parts.hostname, port or default


def blocked_reason(address: str) -> str | None:
    """Why an address may not be a destination (loopback, private...), or None when public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for flag in ("loopback", "link_local", "private", "unspecified", "multicast", "reserved"):
        if getattr(ip, f"is_{flag}"):
            return flag.replace("_", "-")
    return None


def check_url(url: str, kind: str, allow_private: bool) -> None:
    """Refuse URLs that do not parse or whose host resolves to any non-public address.

    Every address the name resolves to is checked (one private answer is enough to refuse);
    ``ENGAGEHUB_ALLOW_PRIVATE_DESTINATIONS=true`` lifts the address check.
    """
    host, port = parse_url(url, kind)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise PayloadError(
            f"destination URL {url!r}: host {host!r} does not resolve ({exc})",
            field="url",
            value=url,
        ) from None
    if allow_private:
        return
    for info in infos:
        address = str(info[4][0])
        reason = blocked_reason(address)
        if reason is not None:
            raise PayloadError(
                f"destination URL {url!r} resolves to {reason} address {address}; set "
                "ENGAGEHUB_ALLOW_PRIVATE_DESTINATIONS=true to allow private targets",
                field="url",
                value=url,
                address=address,
            )
