"""Verification speed of keyturn.client against a bare PyJWT `jwt.decode` with the same key.

For each algorithm: one token (with exp, aud, iss) verified over and over by
  - PyJWT: `jwt.decode(token, key, algorithms=[alg], audience=..., issuer=...)` with the key object
    already loaded (the fastest correct use of PyJWT),
  - Keyturn: `JwksVerifier.verify` (asymmetric, from a JWKS document) or `HmacVerifier.verify`,
    which also pick the key by kid, pin the algorithm and count `jwt_validations_total`.
Rounds alternate between the two so that drift of the machine hits both; the figure is the median
of the rounds. Prints JSON with verifications per second and the ratio Keyturn / PyJWT.

    .venv/bin/python bench/client_verify.py [--seconds 1.0] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import jwt
from prometheus_client import CollectorRegistry

from keyturn.client import HmacVerifier, JwksVerifier
from keyturn.client.metrics import ClientMetrics
from keyturn.keys.generation import generate
from keyturn.keys.jwk import public_jwk, public_key_from_jwk
from keyturn.keys.signing import sign

ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA", "HS256")
CLAIMS = {"sub": "alice", "aud": "api", "iss": "https://auth.example"}


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of `fn` over about `seconds` (batches, so the clock is read rarely)."""
    calls, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(200):
            fn()
        calls += 200
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start)


def subjects(algorithm: str) -> tuple[Callable[[], object], Callable[[], object]]:
    material = generate(algorithm)
    kid = "k1"
    token = sign(material, {**CLAIMS, "exp": int(time.time()) + 3600}, kid)
    metrics = ClientMetrics(CollectorRegistry())
    options: dict[str, Any] = {"audience": "api", "issuer": "https://auth.example", "metrics": metrics}
    if algorithm.startswith("HS"):
        secret = material.key
        assert isinstance(secret, str)
        verifier: Any = HmacVerifier.from_secrets(secret, kid=kid, algorithm=algorithm, **options)
        key: Any = secret.encode()
    else:
        jwk = public_jwk(material, kid)
        verifier = JwksVerifier.from_jwks({"keys": [jwk]}, **options)
        key = public_key_from_jwk(jwk, algorithm)

    def bare() -> object:
        return jwt.decode(token, key, algorithms=[algorithm], audience="api", issuer="https://auth.example")

    def keyturn() -> object:
        return verifier.verify(token)

    assert bare() == keyturn()
    return bare, keyturn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="per round and subject")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    args = parser.parse_args()
    results: dict[str, Any] = {}
    for algorithm in args.algorithms.split(","):
        bare, keyturn = subjects(algorithm)
        pyjwt_rates, keyturn_rates = [], []
        for _ in range(args.rounds):
            pyjwt_rates.append(rate(bare, args.seconds))
            keyturn_rates.append(rate(keyturn, args.seconds))
        pyjwt_rate, keyturn_rate = statistics.median(pyjwt_rates), statistics.median(keyturn_rates)
        results[algorithm] = {
            "pyjwt_per_s": round(pyjwt_rate),
            "keyturn_per_s": round(keyturn_rate),
            "ratio": round(keyturn_rate / pyjwt_rate, 3),
        }
    print(json.dumps({"benchmark": "client-verify", "rounds": args.rounds, "results": results}, indent=2))


if __name__ == "__main__":
    main()
