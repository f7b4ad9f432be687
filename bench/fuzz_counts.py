"""How many hostile inputs escape the spec parser and the record codec with an unnamed exception.

Feeds seeded random inputs to keyturn.domain.spec_parser.parse_spec and keyturn.domain.record.loads and
counts those that raise anything but SpecError / RecordError, by exception type. A third family
runs specs the CRD admits, with extreme values, through a few planner passes (plan, fresh keys,
record round trip, clock jumps), where nothing at all may escape. Prints JSON.

No cluster needed. To measure another version of the code, put its operator/ first on the path:
    .venv/bin/python bench/fuzz_counts.py
    git archive <commit> operator | tar -x -C /tmp/base
    PYTHONPATH=/tmp/base/operator .venv/bin/python bench/fuzz_counts.py
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from keyturn.domain import record
from keyturn.domain.model import FreshKey, Ring
from keyturn.domain.planner import Requests, plan
from keyturn.domain.spec import Spec, SpecError
from keyturn.domain.spec_parser import parse_spec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from hostile import FULL_SPEC, paths_of, replaced  # noqa: E402 - lives in tests/, put on the path above

CRD = ROOT / "crds" / "keyturn.dev_jwtkeysets.yaml"


# --------------------------------------------------------------------------------------- JSON values
def _field_names() -> list[str]:
    """Every property name of the CRD's spec schema, so random objects reach deep into the parser."""
    schema = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    names: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        for name, sub in node.get("properties", {}).items():
            names.add(name)
            walk(sub)
        if "items" in node:
            walk(node["items"])

    walk(schema["properties"]["spec"])
    return sorted(names)


SPEC_NAMES = _field_names()
RECORD_NAMES = [
    *("version", "serial", "keys", "revokedKids", "handled", "history", "rotate", "rollback"),
    *("emergencies", "requestId", "handledAt", "result", "newKid", "message", "kid", "state"),
    *("algorithm", "createdAt", "publishedAt", "activatedAt", "demotedAt", "removeFromJwksAt"),
    *("purgeAt", "revokedAt", "reason", "activation", "activatedBy", "signersReadyAt"),
    *("analysisResult", "fingerprint", "publicJwk", "at", "operation", "kids", "trigger"),
]
HOSTILE: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**63,
    10**30,
    1e308,
    -1e308,
    float("nan"),
    float("inf"),
    0.5,
    "",
    " ",
    "x",
    "\x00",
    "America",
    "Mars/Olympus",
    "../../etc/passwd",
    "3000000d",
    "999999d",
    "99999999999999999999d",
    "١٢d",
    "90d\n",
    "0 0 30 2 *",
    "0 0 29 2 *",
    "61 0 * * *",
    "25:00",
    "http://user:pw@h",
    "yesterday",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+01:00",
    "2026-01-01T00:00:00",
    "current",
    "Template",
    "RS256",
    "HS256",
    [],
    {},
    [None],
    ["x"],
    {"a": 1},
]


def arbitrary(rng: random.Random, names: list[str], depth: int = 4) -> Any:
    """A random JSON value; object keys are mostly field names of the format under test."""
    roll = rng.random()
    if depth <= 0 or roll < 0.45:
        return _scalar(rng)
    if roll < 0.6:
        return [arbitrary(rng, names, depth - 1) for _ in range(rng.randint(0, 4))]
    size = rng.randint(0, 6)
    keys = [rng.choice(names) if rng.random() < 0.85 else _text(rng) for _ in range(size)]
    return {k: arbitrary(rng, names, depth - 1) for k in keys}


def _scalar(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.4:
        return rng.choice(HOSTILE)
    if roll < 0.6:
        return rng.choice([rng.randint(-(2**70), 2**70), rng.randint(-5, 5000), rng.uniform(-2, 2)])
    return _text(rng)


def _text(rng: random.Random) -> str:
    alphabet = "0123456789dhms :/*-_.@?#abcXYZ\t\u00e9\u0661"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


def arbitrary_record(rng: random.Random) -> Any:
    """Mostly an object of version 1, so that the codec reads past the version check."""
    value = arbitrary(rng, RECORD_NAMES)
    if isinstance(value, dict) and rng.random() < 0.8:
        value["version"] = 1
    return value


def mutate(rng: random.Random, value: Any, names: list[str]) -> Any:
    """A copy of value with one field, list item or leaf replaced by a hostile value."""
    hostile = arbitrary(rng, names, depth=2) if rng.random() < 0.3 else rng.choice(HOSTILE)
    return replaced(value, rng.choice(paths_of(value)), hostile)


# --------------------------------------------------------------------------------------- valid input
VALID_SPECS: list[dict[str, Any]] = [
    {},
    FULL_SPEC,
    {
        "algorithm": "HS256",
        "secretLength": 64,
        "rotation": {"schedule": "0 2 1 */3 *", "timeZone": "America/New_York"},
        "secret": {"items": [{"key": "S", "slot": "next", "format": "raw"}]},
    },
]

# Specs the CRD admits: every duration shape with up to 6 digits per unit, zones, crons, bounds.
CRONS = ["0 2 1 */3 *", "* * * * *", "0 0 29 2 *", "0 0 30 2 *", "0 0 31 4 *", "59 23 31 12 *",
         "0 0 * 2 1#5", "0 0 L * *", "30 3 * * MON-FRI", "0 0 1 1 *", "0 0 15W * *"]  # fmt: skip
ZONES = ["UTC", "Europe/Paris", "America", "Etc/GMT+12", "Etc/GMT-14", "Pacific/Kiritimati", "Etc",
         "Antarctica/Troll", "Asia/Kathmandu", "Australia/Lord_Howe", "posixrules", "Factory"]  # fmt: skip
# The clock: from 1970 to the last time whose "now + 100 years" (36525 days) the record still
# accepts (record.LATEST, 9000-01-01, minus that, minus a second).
LATEST_NOW = datetime(8899, 12, 30, 23, 59, 59, tzinfo=UTC)
NOWS = [
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2026, 5, 1, 12, tzinfo=UTC),
    datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC),
    LATEST_NOW,
]
STEPS = [timedelta(0), timedelta(seconds=1), timedelta(hours=1), timedelta(days=1), timedelta(days=90),
         timedelta(days=36525), timedelta(days=999999)]  # fmt: skip


# Per unit: the most that stays within 100 years (36525 days), capped at the CRD's 6 digits.
_FITS = {"d": 36525, "h": 876600, "m": 999999, "s": 999999}


def admitted_duration(rng: random.Random) -> str:
    """A duration the CRD admits, often near 100 years, sometimes over (6 digits of days)."""
    units = [u for u in "dhms" if rng.random() < 0.4] or [rng.choice("dhms")]
    most = {u: _FITS[u] // len(units) for u in units}
    return "".join(
        f"{rng.choice([0, 1, most[u], rng.randint(0, most[u]), 999999 if rng.random() < 0.2 else 0])}{u}"
        for u in units
    )


def admitted_spec(rng: random.Random) -> dict[str, Any]:
    rotation: dict[str, Any] = {
        k: admitted_duration(rng) for k in ("publishAhead", "gracePeriod", "retention") if rng.random() < 0.7
    }
    if rng.random() < 0.5:
        rotation["schedule"] = rng.choice(CRONS)
    else:
        rotation["interval"] = admitted_duration(rng)
    rotation["timeZone"] = rng.choice(ZONES)
    if rng.random() < 0.5:
        start, end = rng.sample([f"{h:02d}:{m:02d}" for h in (0, 2, 12, 23) for m in (0, 59)], 2)
        rotation["window"] = {"start": start, "end": end}
    spec: dict[str, Any] = {"rotation": rotation, "algorithm": rng.choice(["ES256", "HS256", "EdDSA"])}
    if rng.random() < 0.5:
        spec["analysis"] = {
            "prometheus": {"address": "http://prometheus:9090", "query": "up"},
            "initialDelay": admitted_duration(rng),
            "interval": admitted_duration(rng),
            "count": rng.choice([1, 2, 100]),
            "failureLimit": 0,
        }
    if rng.random() < 0.5:
        spec["rollout"] = {"timeout": admitted_duration(rng), "pauseBetween": admitted_duration(rng)}
    if rng.random() < 0.5:
        spec["tokens"] = {"maxLifetime": admitted_duration(rng), "verifierCacheTTL": admitted_duration(rng)}
    return spec


def fresh_keys(ring: Ring, count: int, algorithm: str) -> list[FreshKey]:
    return [
        FreshKey(f"k{n}", algorithm, n, None if algorithm.startswith("HS") else {"kty": "OKP"}, f"f{n}")
        for n in range(ring.serial + 1, ring.serial + 1 + count)
    ]


def simulate(spec: Spec, rng: random.Random, passes: int = 4) -> None:
    """Planner passes as the executor runs them, with the record stored and read back in between."""
    ring, now = Ring(), rng.choice(NOWS)
    for i in range(passes):
        requests = Requests(rotate=f"t{i}") if rng.random() < 0.3 else Requests()
        result = plan(spec, ring, now, requests)
        if result.needs_fresh:
            fresh = fresh_keys(ring, result.needs_fresh, spec.algorithm)
            result = plan(spec, ring, now, requests, fresh=fresh)
        ring = record.loads(record.dumps(result.ring))
        now += min(rng.choice(STEPS), LATEST_NOW - now)


def valid_records(rng: random.Random, count: int) -> list[str]:
    out = []
    for i in range(count):
        spec = parse_spec("keys", "ns", VALID_SPECS[i % len(VALID_SPECS)])
        ring, now = Ring(), datetime(2026, 1, 1, tzinfo=UTC)
        for _ in range(rng.randint(1, 6)):
            result = plan(spec, ring, now, Requests(rotate=str(rng.random())))
            if result.needs_fresh:
                result = plan(spec, ring, now, fresh=fresh_keys(ring, result.needs_fresh, spec.algorithm))
            ring = result.ring
            now += timedelta(days=rng.randint(0, 200))
        out.append(record.dumps(ring))
    return out


# --------------------------------------------------------------------------------------- counting
def count(inputs: list[Any], run: Callable[[Any], object], named: type[BaseException]) -> dict[str, Any]:
    escaped: Counter[str] = Counter()
    for value in inputs:
        try:
            run(value)
        except named:
            pass
        except Exception as exc:  # what the benchmark counts
            escaped[type(exc).__name__] += 1
    return {"inputs": len(inputs), "escaped": sum(escaped.values()), "by_type": dict(escaped.most_common())}


def _parse(raw: Any) -> object:
    return parse_spec("keys", "ns", raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-n", type=int, default=3000, help="inputs per family")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))

    spec_arbitrary = [arbitrary(rng, SPEC_NAMES) for _ in range(args.n)]
    spec_mutated = [mutate(rng, rng.choice(VALID_SPECS[1:]), SPEC_NAMES) for _ in range(args.n)]
    admitted = [admitted_spec(rng) for _ in range(args.n // 3)]

    planned = Counter[str]()

    def parse_and_plan(raw: dict[str, Any]) -> None:
        try:
            spec = _parse(raw)
        except SpecError:
            return
        assert isinstance(spec, Spec)
        planned["specs"] += 1
        simulate(spec, rng)

    valid = valid_records(rng, 60)
    record_arbitrary = [json.dumps(arbitrary_record(rng)) for _ in range(args.n)]
    record_mutated = [
        json.dumps(mutate(rng, json.loads(rng.choice(valid)), RECORD_NAMES)) for _ in range(args.n)
    ]
    truncated = [
        text[: rng.randint(0, len(text))] for text in (rng.choice(valid) for _ in range(args.n // 3))
    ]
    special = ["[" * 100000, '{"version":1,"keys":' + "[" * 100000, "1e999", '{"version":1e999}', "", "null",
               '{"version":1,"serial":1e999}', '{"version":true}', '{"version":1,"keys":{}}',
               '{"version":1,"keys":["x"]}', '{"version":1,"handled":[]}', '{"version":1,"revokedKids":"ab"}',
               json.dumps({"version": 1, "keys": [{"kid": "a", "state": "current", "algorithm": "RS256",
                                                   "createdAt": "9999-12-31T23:59:59Z"}]})]  # fmt: skip

    report = {
        "parse_spec": {
            "arbitrary_json": count(spec_arbitrary, _parse, SpecError),
            "valid_spec_one_field_hostile": count(spec_mutated, _parse, SpecError),
            "admitted_extremes_parse_then_plan": count(admitted, parse_and_plan, SpecError),
            "admitted_extremes_parsed_and_planned": planned["specs"],
        },
        "record.loads": {
            "arbitrary_json": count(record_arbitrary, record.loads, record.RecordError),
            "valid_record_one_field_hostile": count(record_mutated, record.loads, record.RecordError),
            "truncated": count(truncated, record.loads, record.RecordError),
            "special": count(special, record.loads, record.RecordError),
        },
        "valid_records_round_trip": all(record.dumps(record.loads(t)) == t for t in valid),
        "seed": args.seed,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
