"""Which outbound URLs the operator may request: the SSRF guard for health URLs and Prometheus.

Whoever can annotate a Deployment chooses a health URL, and whoever can edit a JwtKeySet chooses
the Prometheus address; the operator then sends requests from inside the cluster on their behalf.
So every such URL is parsed here before any connection: http or https, a well-formed host (no
numeric tricks such as `2130706433` for 127.0.0.1), no user info, no fragment, and for the
analysis address no query either (it would swallow the `/api/v1/query` suffix). An optional
allow-list of host patterns, set by the operator's `--egress-allow`, narrows it further.
Redirects are never followed (the adapters' job), so a checked URL is the only URL requested.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from yarl import URL

MAX_URL = 2048
SCHEMES = ("http", "https")
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$")
_PATTERN_HOST = re.compile(r"^[a-z0-9_*?.\[\]!-]+$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refused(ValueError):
    """An outbound URL the operator will not request; the message says which rule and why."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def shorten(text: str, limit: int = 120) -> str:
    """For messages: a hostile URL may be kilobytes long, status and Events must stay readable."""
    printable = "".join(c if c.isprintable() else "?" for c in text[: limit + 1])
    return printable if len(printable) <= limit else printable[: limit - 1] + "…"


@dataclass(frozen=True)
class HostPattern:
    """`*.monitoring.svc`, `prometheus.monitoring:9090`, `10.0.0.0/8`: a host glob or a network,
    with an optional port (any port when absent)."""

    text: str
    glob: str | None = None
    network: Network | None = None
    port: int | None = None

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            address = _ip(host)
            return address is not None and address.version == self.network.version and address in self.network
        return self.glob is not None and fnmatch.fnmatchcase(host, self.glob)


def parse_pattern(text: str) -> HostPattern:
    """One allow-list entry; ValueError names what is wrong with it."""
    raw = text.strip().lower()
    if not raw:
        raise ValueError("an empty host pattern")  # from_patterns skips empty entries of a list
    if "/" in raw:
        try:
            return HostPattern(text=raw, network=ipaddress.ip_network(raw.strip("[]"), strict=False))
        except ValueError as exc:
            raise ValueError(f"host pattern {shorten(text)!r}: {exc}") from exc
    host, port = raw, None
    if raw.startswith("[") and "]" in raw:  # [::1] or [::1]:9090
        host, _, rest = raw[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"host pattern {shorten(text)!r}: expected [ADDRESS]:PORT")
            port = _port(text, rest[1:])
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
        port = _port(text, port_text)
    if _ip(host) is None and (not host or not _PATTERN_HOST.match(host)):
        raise ValueError(
            f"host pattern {shorten(text)!r}: use a host name with * and ? wildcards "
            "(e.g. *.monitoring.svc), an IP address or a CIDR, and optionally :PORT"
        )
    return HostPattern(text=raw, glob=host, port=port)


def _port(text: str, port_text: str) -> int:
    if not _PORT.match(port_text) or not 0 < int(port_text) < 65536:
        raise ValueError(f"host pattern {shorten(text)!r}: {shorten(port_text, 20)!r} is not a port")
    return int(port_text)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass(frozen=True)
class EgressPolicy:
    """No patterns: any well-formed host except link-local ones; else only the hosts they match."""

    patterns: tuple[HostPattern, ...] = ()

    @classmethod
    def from_patterns(cls, texts: Iterable[str]) -> EgressPolicy:
        """Entries may be comma-separated lists; ValueError names the first bad one."""
        return cls(tuple(parse_pattern(p) for text in texts for p in text.split(",") if p.strip()))

    def describe(self) -> str:
        return ", ".join(p.text for p in self.patterns) or "any host"

    def admit(self, url: URL, what: str) -> None:
        host = (url.raw_host or "").removesuffix(".")
        port = url.port or 0
        allowed = any(p.matches(host, port) for p in self.patterns)
        if self.patterns and not allowed:
            raise Refused(
                "NotAllowed",
                f"{what}: host {shorten(host)}:{port} is not in the operator's egress allow-list "
                f"({shorten(self.describe(), 200)}; --egress-allow)",
            )
        address = _ip(host)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not allowed and address is not None and any(address in net for net in _LINK_LOCAL):
            raise Refused(
                "LinkLocal",
                f"{what}: {host} is a link-local address (where cloud metadata services answer); "
                "allow it explicitly with --egress-allow if it is really meant",
            )


def _parse(text: str, what: str) -> URL:
    if not isinstance(text, str) or not text.strip():
        raise Refused("Unparseable", f"{what} is empty")
    if len(text) > MAX_URL:
        raise Refused("TooLong", f"{what} is longer than {MAX_URL} characters")
    if any(not c.isprintable() or c.isspace() for c in text.strip()):
        raise Refused("Unparseable", f"{what}: contains spaces or control characters")
    try:
        url = URL(text.strip())
    except (ValueError, TypeError) as exc:  # yarl: bad port, bad IPv6, IDNA errors (UnicodeError)
        raise Refused("Unparseable", f"{what}: cannot be parsed: {shorten(str(exc), 80)}") from exc
    if url.scheme not in SCHEMES:
        raise Refused("Scheme", f"{what}: must start with http:// or https://")
    if url.user is not None or url.password is not None:
        raise Refused("UserInfo", f"{what}: must not carry a user or password")
    if url.fragment or "#" in text:
        raise Refused("Fragment", f"{what}: must not carry a #fragment")
    _check_host(url.raw_host, what)
    return url


def _check_host(host: str | None, what: str) -> None:
    if not host:
        raise Refused("Unparseable", f"{what}: has no host")
    address = _ip(host)
    if address is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            raise Refused("Host", f"{what}: IPv6 zone identifiers are not allowed")
        return
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253:
        raise Refused("Host", f"{what}: the host name is longer than 253 characters")
    for label in name.split("."):
        if len(label) > 63:
            raise Refused(
                "Host",
                f"{what}: the host label {shorten(label, 20)!r} is longer than 63 characters",
            )
        if not _LABEL.match(label):
            raise Refused("Host", f"{what}: {shorten(host)!r} is not a valid host name")
    # inet_aton reads "2130706433", "0x7f.1" or "127.1" as addresses: they would dodge IP patterns.
    if name.split(".")[-1].isdigit() or _inet_aton(name):
        raise Refused("Host", f"{what}: write an IPv4 address as four decimal numbers (a.b.c.d)")


def _inet_aton(name: str) -> bool:
    try:
        socket.inet_aton(name)
    except OSError:
        return False
    return True


def health_url(text: str, policy: EgressPolicy) -> URL:
    """A `keyturn.dev/health-url`, checked; a query string is allowed (it is part of the check)."""
    url = _parse(text, "health URL")
    policy.admit(url, "health URL")
    return url


def prometheus_query_url(
    address: str, policy: EgressPolicy, what: str = "analysis.prometheus.address"
) -> URL:
    """`<address>/api/v1/query`, joined as a path: the address may carry a path prefix, nothing else.

    `what` names the field in messages (the analysis's or the propagation gate's address).
    """
    url = _parse(address, what)
    if url.query_string or "?" in address:
        raise Refused(
            "Query",
            f"{what}: must not carry a ?query (Keyturn appends /api/v1/query itself)",
        )
    policy.admit(url, what)
    return url.joinpath("api", "v1", "query")
