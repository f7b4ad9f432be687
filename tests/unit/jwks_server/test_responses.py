"""Cache headers, validators, content coding and the discovery document of the JWKS server."""

from __future__ import annotations

import gzip
import json

import pytest

from keyturn.jwks_server import responses
from keyturn.jwks_server.responses import BadValidator, accepts_gzip, etag_matches, max_age

NOW = 1_000_000.0
MAX_AGE = {
    # (next change in s, cache TTL, cap, jitter) -> max-age
    "only the cap": ((None, None, 3600, 0.0), 3600),
    "the cap beats a far change": ((86400, None, 3600, 0.0), 3600),
    "the time to the next change": ((600.5, None, 3600, 0.0), 600),
    "the cache TTL": ((86400, 300, 3600, 0.0), 300),
    "the smallest of the three": ((120, 300, 3600, 0.0), 120),
    "a change due now": ((0, 300, 3600, 0.0), 0),
    "an overdue change": ((-30, 300, 3600, 0.0), 0),
    "a TTL of zero": ((None, 0, 3600, 0.0), 0),
    "the whole spread shortens by a tenth": ((None, None, 3600, 0.9999999), 3240),
    "half the spread": ((1000, None, 3600, 0.5), 950),
    "a jitter out of range is clamped": ((None, None, 1000, 7.0), 900),
}


@pytest.mark.parametrize(("args", "expected"), MAX_AGE.values(), ids=MAX_AGE.keys())
def test_max_age(args: tuple[float | None, int | None, int, float], expected: int) -> None:
    until, ttl, cap, jitter = args
    assert max_age(NOW, None if until is None else NOW + until, ttl, cap, jitter) == expected


@pytest.mark.parametrize("jitter", [0.0, 0.01, 0.3, 0.5, 0.77, 0.999])
@pytest.mark.parametrize("until", [0.4, 1, 59.9, 3599, 3601, 10**6])
def test_max_age_never_exceeds_the_time_to_the_next_change_or_the_cap(jitter: float, until: float) -> None:
    seconds = max_age(NOW, NOW + until, None, 3600, jitter)
    assert 0 <= seconds <= min(until, 3600)
    assert seconds >= int(min(until, 3600) * (1 - responses.SPREAD)) - 1  # the spread is small


def test_cache_control() -> None:
    assert responses.cache_control(42) == "public, max-age=42, must-revalidate"


ETAG, GZ = '"abc"', '"abc-gz"'
MATCHES = {
    "absent": (None, False),
    "the ETag": ('"abc"', True),
    "the gzip ETag": ('"abc-gz"', True),
    "a weak form of it": ('W/"abc"', True),
    "another": ('"def"', False),
    "in a list": ('"x", "y", W/"abc"', True),
    "a list without it": ('"x", "y"', False),
    "star": ("*", True),
    "unquoted": ("abc", False),
    "empty": ("", False),
}


@pytest.mark.parametrize(("header", "expected"), MATCHES.values(), ids=MATCHES.keys())
def test_etag_matches(header: str | None, expected: bool) -> None:
    assert etag_matches(header, (ETAG, GZ)) is expected


@pytest.mark.parametrize(
    "header",
    [",".join(f'"t{i}"' for i in range(33)), '"' + "a" * 3000 + '"'],
    ids=["33 tags", "3000 characters"],
)
def test_an_absurd_if_none_match_is_refused(header: str) -> None:
    with pytest.raises(BadValidator):
        etag_matches(header, (ETAG,))


def test_the_strong_etags_differ_per_coding_and_per_content() -> None:
    one, other = responses.strong_etag(b"a"), responses.strong_etag(b"b")
    assert one != other and one.startswith('"') and one.endswith('"')
    assert responses.gzip_etag(one) != one and responses.gzip_etag(one).endswith('-gz"')


def test_gzip_is_deterministic_and_decompresses_to_the_document() -> None:
    body = b'{"keys": []}' * 10
    assert responses.compress(body) == responses.compress(body)
    assert gzip.decompress(responses.compress(body)) == body


GZIP = {
    "absent": (None, False),
    "gzip": ("gzip", True),
    "in a list": ("br, gzip, deflate", True),
    "x-gzip": ("x-gzip", True),
    "upper case": ("GZIP", True),
    "with a weight": ("gzip;q=0.5", True),
    "refused with q=0": ("gzip;q=0", False),
    "refused with q=0.0": ("gzip; q=0.0", False),
    "a bad weight": ("gzip;q=x", False),
    "identity only": ("identity", False),
    "a coding that contains the word": ("notgzip", False),
}


@pytest.mark.parametrize(("header", "expected"), GZIP.values(), ids=GZIP.keys())
def test_accepts_gzip(header: str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_the_discovery_document_is_the_subset_kube_apiserver_serves() -> None:
    document = json.loads(
        responses.discovery_document(
            "https://auth.example.com/t",
            "https://auth.example.com/t/.well-known/jwks.json",
            ["RS256", "ES256", "RS256"],
        )
    )
    assert document == {
        "issuer": "https://auth.example.com/t",
        "jwks_uri": "https://auth.example.com/t/.well-known/jwks.json",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
    }
