"""client/tokens.py: the header is read once per distinct header segment, as strictly as PyJWT."""

from __future__ import annotations

import base64
import json

import pytest

from keyturn.client import tokens
from keyturn.client.errors import VerificationError
from keyturn.client.reasons import ValidationReason


def segment(header: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()


def token(header: object) -> str:
    return f"{segment(header)}.e30.c2ln"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (token({"alg": "none", "kid": "k"}), ValidationReason.WRONG_ALG),
        (token({"alg": "NoNe"}), ValidationReason.WRONG_ALG),
        (token({"kid": "k"}), ValidationReason.MALFORMED),
        (token({"alg": "RS256", "kid": 7}), ValidationReason.MALFORMED),
        (token(["alg", "RS256"]), ValidationReason.MALFORMED),
        ("!!!!.e30.c2ln", ValidationReason.MALFORMED),
        ("e30===.e30.c2ln", ValidationReason.MALFORMED),
        ("a.e30.c2ln", ValidationReason.MALFORMED),
        (base64.urlsafe_b64encode(b"[" * 5000).decode() + ".e30.c2ln", ValidationReason.MALFORMED),
    ],
    ids=[
        "alg none",
        "alg none in another case",
        "no alg",
        "a kid that is no string",
        "a header that is no object",
        "not base64url",
        "too much padding",
        "a length base64 cannot have",
        "nested too deeply",
    ],
)
def test_a_bad_header_is_refused_every_time_it_is_seen(text: str, reason: ValidationReason) -> None:
    for _ in range(2):  # the second time from the cache: refused all the same
        with pytest.raises(VerificationError) as refused:
            tokens.read_header(text)
        assert refused.value.reason is reason


def test_a_good_header_is_read_once_and_remembered() -> None:
    text = token({"alg": "ES256", "kid": "k1", "typ": "JWT"})
    first = tokens.read_header(text)
    assert (first.alg, first.kid) == ("ES256", "k1")
    assert tokens.read_header(text) is first


def test_a_flood_of_distinct_headers_keeps_the_cache_bounded() -> None:
    for n in range(3 * tokens._HEADER_CACHE_SIZE):
        tokens.read_header(token({"alg": "RS256", "kid": f"k{n}"}))
    assert len(tokens._HEADERS) <= tokens._HEADER_CACHE_SIZE
