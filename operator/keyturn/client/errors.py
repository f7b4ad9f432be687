"""Exceptions of keyturn.client; their messages never carry key material or whole tokens."""

from __future__ import annotations

import re
from typing import Final

from keyturn.client.reasons import ValidationReason

_PRINTABLE_KID: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")


def printable_kid(kid: object) -> str:
    """A kid safe to put in a message: header kids are attacker-controlled (log injection)."""
    if kid is None:
        return "<none>"
    if isinstance(kid, str) and _PRINTABLE_KID.fullmatch(kid):
        return kid
    return "<unprintable>"


class VerificationError(Exception):
    """A token was refused. `reason` is the metric label, `kid` the (unverified) header kid.

    `kid` is kept raw (bounded) so an application can answer with it, but it is only shown in
    the message when it looks like a kid, since it comes straight from the untrusted header.
    """

    def __init__(self, reason: ValidationReason, kid: str | None = None, detail: str = "") -> None:
        self.reason = reason
        self.kid = kid[:256] if isinstance(kid, str) else None
        self.detail = detail
        text = f"token rejected: {reason.value} (kid {printable_kid(self.kid)})"
        super().__init__(f"{text}: {detail}" if detail else text)


class KeySourceError(Exception):
    """Keys could not be loaded: missing file or item, unparseable JWKS, wrong key type.

    Raised by constructors (fail fast on a wrong mount path) and by forced refreshes; automatic
    reloads log it and keep serving the keys they already have.
    """


class LeakedKeyError(KeySourceError):
    """A public JWKS carried private key material (`d`, `p`, ..., or a symmetric `oct` key).

    Whoever read the document can sign with those keys, so the whole document is refused and
    `ids` (the leaked entries' kids and RFC 7638 thumbprints) are withdrawn from the keys loaded
    before and never trusted again by the source that saw them. The message names kids and
    member names only, never values.
    """

    def __init__(self, message: str, ids: frozenset[str]) -> None:
        super().__init__(message)
        self.ids = ids
