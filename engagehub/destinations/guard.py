"""SSRF guard and URL checks: a destination may not point into our own network by default.

Every address a host resolves to must be global (``not ip.is_global`` refuses loopback, private,
link-local, shared 100.64/10 carrier-grade NAT (cloud metadata lives there too), reserved and
documentation ranges); IPv4 addresses embedded in IPv6 (mapped, 6to4 ``2002::/16``, Teredo,
NAT64) are checked as the IPv4 they reach. Senders connect to the address that was checked
(``pinned``), so a second DNS answer cannot point the connection elsewhere (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from engagehub.destinations import signing
from engagehub.errors import PayloadError

SCHEMES = {"webhook": ("http", "https"), "segment": ("http", "https"), "nats": ("nats", "tls")}
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
IP = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Target:
    """A checked destination: the host as written, its port, and the address to connect to."""

    host: str
    port: int
    address: str


def parse_url(url: str, kind: str) -> tuple[str, int]:
    """Host and port of a destination URL; a clear error naming the URL when it is unusable."""
    bad = next((c for c in url if ord(c) < 0x21 or ord(c) == 0x7F), None)
    if bad is not None:
        raise PayloadError(
            f"invalid URL {url!r}: it contains the control or space character {bad!r}",
            field="url",
            value=url,
        )
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


def _embedded(ip: IP) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo server, NAT64)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client address the relay forwards to
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def blocked_reason(address: str) -> str | None:
    """Why an address may not be a destination (loopback, private...), or None when public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    inner = _embedded(ip)
    if inner is not None:
        reason = blocked_reason(str(inner))
        return f"{reason} (embedded {inner})" if reason else None
    for flag in ("loopback", "link_local", "private", "unspecified", "multicast", "reserved"):
        if getattr(ip, f"is_{flag}"):
            return flag.replace("_", "-")
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "shared (carrier-grade NAT, cloud metadata)"
    if not ip.is_global:
        return "non-global"
    return None


def resolve(url: str, kind: str, allow_private: bool) -> Target:
    """Refuse URLs that do not parse or whose host resolves to any non-public address.

    Every address the name resolves to is checked (one private answer is enough to refuse);
    ``ENGAGEHUB_ALLOW_PRIVATE_DESTINATIONS=true`` lifts the address check. The first address is
    the one to connect to.
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
    addresses = [str(info[4][0]) for info in infos]
    if not allow_private:
        for address in addresses:
            reason = blocked_reason(address)
            if reason is not None:
                raise PayloadError(
                    f"destination URL {url!r} resolves to {reason} address {address}; set "
                    "ENGAGEHUB_ALLOW_PRIVATE_DESTINATIONS=true to allow private targets",
                    field="url",
                    value=url,
                    address=address,
                )
    return Target(host, port, addresses[0])


def check_url(url: str, kind: str, allow_private: bool) -> None:
    """``resolve`` for callers that only need the verdict (create, CLI)."""
    resolve(url, kind, allow_private)


def check_destination(url: str, kind: str, secret: str | None, allow_private: bool) -> None:
    """Everything a new destination must pass: its URL (SSRF guard) and its secret's form."""
    if secret is not None and any(ord(c) < 0x20 or ord(c) == 0x7F for c in secret):
        raise PayloadError("secret contains a control character", field="secret")
    if secret is not None and kind == "webhook":
        signing.secret_bytes(secret)
    check_url(url, kind, allow_private)


def pinned(url: str, target: Target) -> str:
    """``url`` with its host replaced by the checked address (the Host header keeps the name)."""
    parts = urlsplit(url)
    address = f"[{target.address}]" if ":" in target.address else target.address
    netloc = f"{address}:{target.port}"
    if parts.username is not None:
        netloc = parts.netloc.rsplit("@", 1)[0] + "@" + netloc
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def host_header(url: str) -> str:
    """The Host header a request to ``url`` carries (name and explicit port, as written)."""
    return urlsplit(url).netloc.rsplit("@", 1)[-1]
