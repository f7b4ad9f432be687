"""spec.jwks.issuer: the https URL under which `keyturn serve-jwks` also publishes a keyset.

The same rules hold at admission (the CRD), in the spec parser and in the JWKS server, which reads
the issuer back from an annotation on the ConfigMap: an https URL with a host, an optional port and
a path of plain segments, and nothing that could make two readers disagree on what it names (no
user info, query, fragment, percent-encoding or dot segments).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

MAX_ISSUER_LENGTH: Final = 253
# The CRD holds the same expression (tests/unit/domain/test_publication.py checks they agree).
ISSUER_PATTERN: Final = (
    r"^https://[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)*/?$"
)
_ISSUER = re.compile(ISSUER_PATTERN)
_DOT_SEGMENT = re.compile(r"/\.\.?(/|$)")


@dataclass(frozen=True)
class Issuer:
    """An issuer URL, split the way the JWKS server matches requests against it."""

    url: str  # exactly as written: the discovery document's `issuer` must equal the tokens' `iss`
    host: str  # lowercase
    port: int | None  # only when the URL names one
    path: str  # "" or "/a/b", without a trailing slash

    @property
    def jwks_uri(self) -> str:
        return f"{self.url.rstrip('/')}/.well-known/jwks.json"


class IssuerError(ValueError):
    """Not an issuer Keyturn publishes under; the message says why (never quoting the value)."""


def parse_issuer(text: object) -> Issuer:
    if not isinstance(text, str):
        raise IssuerError("must be a string")
    if len(text) > MAX_ISSUER_LENGTH:
        raise IssuerError(f"must be at most {MAX_ISSUER_LENGTH} characters")
    if not text.startswith("https://"):
        raise IssuerError("must be an https:// URL (the JWKS server is reached through TLS)")
    authority = text[len("https://") :].split("/", 1)[0]
    if "@" in authority:
        raise IssuerError("must not contain user info (user@)")
    if "?" in text or "#" in text:
        raise IssuerError("must not contain a query (?…) or a fragment (#…)")
    if _ISSUER.fullmatch(text) is None:
        raise IssuerError(
            "must be https://HOST[:PORT][/PATH] with a DNS host name and a path of letters, digits, "
            "'.', '_', '~', '-' and '/'"
        )
    if _DOT_SEGMENT.search(text[len("https://") + len(authority) :]):
        raise IssuerError("must not contain '.' or '..' path segments")
    host, _, port_text = authority.partition(":")
    port = int(port_text) if port_text else None
    if port is not None and not 0 < port < 65536:
        raise IssuerError("port must be between 1 and 65535")
    path = text[len("https://") + len(authority) :].rstrip("/")
    return Issuer(url=text, host=host.lower(), port=port, path=path)
