"""How often a hostile JWKS makes keyturn.client's parser fail with anything but its named error.

Runs N generated documents (seeded, so every run sees the same ones) through
`keyturn.client.jwks.parse_jwks` and counts, per kind of document:

- `escaped`: exceptions other than KeySourceError (RecursionError, ValueError, TypeError, ...);
- `private_trusted`: documents carrying private key material that still yielded keys.

    .venv/bin/python bench/client_fuzz_counts.py [--count 5000] [--seed 1]

To measure another version of the code, put its `operator/` first on the path, e.g. for the
commit before this script: `git archive 5982402 operator | tar -x -C /tmp/base` and
`PYTHONPATH=/tmp/base/operator .venv/bin/python bench/client_fuzz_counts.py`.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
from collections.abc import Callable
from typing import Any

from keyturn.client import jwks
from keyturn.client.errors import KeySourceError
from keyturn.keys.generation import generate
from keyturn.keys.jwk import private_jwk, public_jwk

PRIVATE = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
MEMBERS = ("kid", "kty", "alg", "use", "crv", "x", "y", "n", "e", "keys", "key_ops", *PRIVATE)
WORDS = ("RSA", "EC", "OKP", "oct", "sig", "enc", "RS256", "PS256", "ES256", "ES512", "EdDSA", "HS256",
         "P-256", "P-521", "Ed25519", "Ed448", "AQAB", "", "none")  # fmt: skip


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        materials = [generate(alg) for alg in ("RS256", "PS384", "ES256", "ES384", "ES512", "EdDSA")]
        self.public = [public_jwk(m, f"k{i}") for i, m in enumerate(materials)]
        self.private = [private_jwk(m, f"p{i}") for i, m in enumerate(materials)]
        self.kinds: dict[str, Callable[[], str | bytes]] = {
            "arbitrary JSON": lambda: json.dumps(self.value(4)),
            "arbitrary keys array": lambda: json.dumps(
                {"keys": [self.value(3) for _ in range(self.rng.randint(0, 6))]}
            ),
            "wrong member types": self.wrong_types,
            "private members": self.private_members,
            "deep nesting": self.deep,
            "huge numbers": self.huge_number,
            "surrogates and controls": self.odd_text,
            "bytes": lambda: self.rng.randbytes(self.rng.randint(0, 200)),
            "other encodings": lambda: json.dumps({"keys": [self.rng.choice(self.public)]}).encode(
                self.rng.choice(["utf-16", "utf-32", "latin-1"])
            ),
            "oversized": lambda: json.dumps({"keys": [], "pad": "x" * (1 << 20)}),
        }

    def value(self, depth: int) -> Any:
        pick = self.rng.randint(0, 9 if depth > 0 else 6)
        if pick == 0:
            return None
        if pick == 1:
            return self.rng.choice([True, False])
        if pick == 2:
            return self.rng.randint(-(10**30), 10**30)
        if pick == 3:
            return self.rng.choice([0.5, -1e308, float("inf"), float("nan")])
        if pick <= 6:
            return self.rng.choice(WORDS)
        if pick <= 7:
            return [self.value(depth - 1) for _ in range(self.rng.randint(0, 4))]
        return {self.rng.choice(MEMBERS): self.value(depth - 1) for _ in range(self.rng.randint(0, 6))}

    def wrong_types(self) -> str:
        entry: dict[str, Any] = dict(self.rng.choice(self.public))
        for _ in range(self.rng.randint(1, 3)):
            entry[self.rng.choice(list(entry))] = self.value(2)
        return json.dumps({"keys": [entry, self.rng.choice(self.public)]})

    def private_members(self) -> str:
        entry: dict[str, Any] = dict(self.rng.choice(self.public))
        if self.rng.random() < 0.5:
            entry.update(self.rng.choice(self.private))  # a real private JWK
        else:
            entry[self.rng.choice(PRIVATE)] = self.rng.choice(["AQAB", "c2VjcmV0", None, 1])
        if self.rng.random() < 0.2:
            entry = {"kty": "oct", "kid": "hmac", "alg": "HS256", "k": "c2VjcmV0c2VjcmV0c2VjcmV0"}
        return json.dumps({"keys": [self.rng.choice(self.public), entry]})

    def deep(self) -> str:
        depth = self.rng.choice([100, 1000, 10_000, 100_000])
        opener, closer = self.rng.choice([("[", "]"), ('{"a":', "}")])
        body = opener * depth + "1" + closer * depth
        return self.rng.choice([body, f'{{"keys": {body}}}', f'{{"keys": [{{"kid": "k", "x": {body}}}]}}'])

    def huge_number(self) -> str:
        digits = "9" * self.rng.randint(4000, 50_000)
        return self.rng.choice(
            [digits, f'{{"keys": [{digits}]}}', f'{{"keys": [{{"kid": "k", "e": {digits}}}]}}']
        )

    def odd_text(self) -> str:
        entry: dict[str, Any] = dict(self.rng.choice(self.public))
        odd = self.rng.choice(["\ud800", "\udfff", "\x1b[2J", "a\nb", "\u202e", "\x00"])
        entry[self.rng.choice(["kid", "x", "alg", "kty", "crv"])] = odd
        return json.dumps({"keys": [entry]})


def carries_private(document: str | bytes) -> bool:
    try:
        doc = json.loads(document)
    except (ValueError, RecursionError):
        return False
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        return False
    return any(isinstance(e, dict) and (set(PRIVATE) & e.keys() or e.get("kty") == "oct") for e in keys)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    gen = Generator(args.seed)
    kinds = list(gen.kinds)
    per_kind: dict[str, collections.Counter[str]] = {kind: collections.Counter() for kind in kinds}
    for i in range(args.count):
        kind = kinds[i % len(kinds)]
        document = gen.kinds[kind]()
        counts = per_kind[kind]
        counts["documents"] += 1
        try:
            snapshot = jwks.parse_jwks(document)
        except KeySourceError:
            counts["named error"] += 1
            continue
        except Exception as exc:  # what this script counts
            counts["escaped"] += 1
            counts[f"escaped {type(exc).__name__}"] += 1
            continue
        counts["parsed"] += 1
        if snapshot.keys and carries_private(document):
            counts["private_trusted"] += 1
    totals: collections.Counter[str] = collections.Counter()
    for counts in per_kind.values():
        totals.update(counts)
    summary = {
        "code": jwks.__file__,
        "documents": args.count,
        "seed": args.seed,
        "escaped": totals["escaped"],
        "private_trusted": totals["private_trusted"],
        "by_kind": {kind: dict(sorted(counts.items())) for kind, counts in per_kind.items()},
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
