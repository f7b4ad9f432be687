"""Hypothesis strategies for hostile input: any JSON value, and specs the CRD admits at their extremes.

The admitted specs are drawn from the CRD's own patterns and bounds (crds/keyturn.dev_jwtkeysets.yaml),
so a pattern that grows looser shows up here as specs the operator must still survive.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
_CRD = yaml.safe_load((ROOT / "crds" / "keyturn.dev_jwtkeysets.yaml").read_text())
SPEC_SCHEMA: dict[str, Any] = _CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def schema_node(path: str) -> dict[str, Any]:
    node = SPEC_SCHEMA
    for part in path.split("."):
        node = node["properties"][part]
    return node


def _names(node: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for name, sub in node.get("properties", {}).items():
        found |= {name, *_names(sub)}
    if "items" in node:
        found |= _names(node["items"])
    return found


SPEC_FIELD_NAMES = sorted(_names(SPEC_SCHEMA))

# Values that broke, or could break, a parser that trusts its input.
HOSTILE_SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    10**400,
    1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    "",
    " ",
    "\x00",
    "America",
    "Mars/Olympus",
    "../../../etc/passwd",
    "localtime",
    "3000000d",
    "999999d",
    "9" * 400 + "d",
    "١٢d",
    "90d\n",
    "0 0 30 2 *",
    "0 0 29 2 *",
    "61 0 * * *",
    "25:00",
    "²:00",
    "http://user:password@prometheus:9090",
    "http://prometheus:9090/?x#y",
    "http://[::1",
    "http://h:99999",
    "yesterday",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+01:00",
    "Template",
    "HS256",
    "current",
]


def json_values(names: list[str], max_leaves: int = 30) -> st.SearchStrategy[Any]:
    """Any JSON value; object keys are mostly the given field names, so the values reach deep."""
    scalars = (
        st.sampled_from(HOSTILE_SCALARS)
        | st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=True, allow_infinity=True)
        | st.text(max_size=20)
    )
    keys = st.sampled_from(names) | st.text(max_size=8)
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
        max_leaves=max_leaves,
    )


# A valid spec with every field set: one of its fields (or items) at a time is made hostile.
FULL_SPEC: dict[str, Any] = {
    "algorithm": "RS256",
    "keySize": 3072,
    "kid": {"strategy": "Template", "template": "{date}_v{n}_prod"},
    "rotation": {
        "interval": "90d",
        "timeZone": "Europe/Paris",
        "window": {"start": "02:00", "end": "04:00"},
        "publishAhead": "1h",
        "gracePeriod": "30d",
        "retention": "180d",
    },
    "tokens": {"maxLifetime": "24h", "verifierCacheTTL": "5m"},
    "secret": {
        "name": "api-keys",
        "deletionPolicy": "Retain",
        "items": [
            {"key": "JWT_PRIVATE_KEY", "slot": "current", "format": "pem"},
            {"key": "keys.json", "format": "jwks"},
        ],
        "encryption": {"passphraseSecretRef": {"name": "pp", "key": "passphrase"}},
    },
    "jwks": {"configMapName": "api-keys-jwks", "key": "jwks.json"},
    "rollout": {"timeout": "10m", "pauseBetween": "10s", "onFailure": "Rollback"},
    "analysis": {
        "prometheus": {"address": "http://prometheus.monitoring:9090", "query": "up"},
        "successThreshold": "0.95",
        "initialDelay": "1m",
        "interval": "30s",
        "count": 10,
        "failureLimit": 1,
        "onNoData": "Inconclusive",
        "onFailure": "Rollback",
    },
    "propagation": {
        "prometheus": {"address": "http://prometheus.monitoring:9090"},
        "query": 'count(jwt_keys_loaded{kid="$kid", namespace="$namespace"}) / count(up)',
        "threshold": "0.9",
        "interval": "15s",
        "timeout": "1h",
    },
    "revokedKids": [{"kid": "k0", "reason": "key_compromise"}],
    "suspend": False,
}


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value: object fields and list items, as key/index tuples."""
    out: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, sub in items:
        out.append((*prefix, key))
        out.extend(paths_of(sub, (*prefix, key)))
    return out


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    out = copy.deepcopy(value)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return out


@st.composite
def one_field_hostile(draw: st.DrawFn, valid: Any, names: list[str]) -> tuple[tuple[Any, ...], Any]:
    """A copy of `valid` with one field replaced by a hostile value (or removed), and its path."""
    path = draw(st.sampled_from(paths_of(valid)))
    new = draw(st.sampled_from(HOSTILE_SCALARS) | json_values(names, max_leaves=8))
    return path, replaced(valid, path, new)


# ------------------------------------------------------------------------------------ admitted specs
def _pattern(path: str) -> str:
    pattern: str = schema_node(path)["pattern"]
    return pattern


DURATION_PATTERN = _pattern("rotation.interval")
PATTERN_DURATIONS = st.from_regex(DURATION_PATTERN, fullmatch=True)
# Per unit: the most within 100 years (36525 days), or the 6 digits the CRD admits.
_UNIT_EXTREMES = {"d": [36525, 36526, 999999], "h": [876600, 876601, 999999], "m": [999999], "s": [999999]}


@st.composite
def _extreme_durations(draw: st.DrawFn) -> str:
    units = draw(st.lists(st.sampled_from("dhms"), min_size=1, max_size=4, unique=True))
    units.sort(key="dhms".index)
    parts = [
        f"{draw(st.sampled_from([0, 1, *_UNIT_EXTREMES[u]]) | st.integers(0, 999999))}{u}" for u in units
    ]
    return "".join(parts)


_common_durations = st.sampled_from(["0s", "1s", "10m", "1h", "1d", "30d", "90d", "36525d", "876600h"])
admitted_durations = st.one_of(PATTERN_DURATIONS, _extreme_durations(), _common_durations, _common_durations)
# "0s" becomes "10s": the pattern's shape is kept, and the value is above zero.
positive_durations = admitted_durations.map(lambda d: d if any(c in "123456789" for c in d) else f"1{d}")


def mostly(good: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` four times out of five: specs the operator accepts, so that the planner runs."""
    return st.integers(0, 4).flatmap(lambda roll: other if roll == 0 else good)


ZONES = sorted(available_timezones() - {"localtime"})  # the host's zone, not a name (see spec_parser)
# Pass the CRD's shape, are not zones (directories, files of the database that are not zones, the host's).
NOT_ZONES = ["America", "Etc", "US", "posixrules", "localtime", "right/UTC", "Mars/Olympus", "Factory"]
admitted_zones = mostly(
    st.sampled_from(ZONES),
    st.sampled_from(NOT_ZONES) | st.from_regex(_pattern("rotation.timeZone"), fullmatch=True),
)

_CRON_FIELDS = [
    ["0", "*", "*/15", "59", "0-59/7", "1-0", "5,10"],
    ["0", "*", "23", "*/6", "2-4"],
    ["*", "1", "15", "28", "29", "30", "31", "L", "15W", "?"],
    ["*", "2", "4", "*/3", "2,4", "JAN", "FEB", "12"],
    ["*", "MON-FRI", "0", "7", "1#5", "5#1", "?", "SUN"],
]
admitted_crons = mostly(
    st.tuples(*(st.sampled_from(f) for f in _CRON_FIELDS)).map(" ".join),
    st.from_regex(_pattern("rotation.schedule"), fullmatch=True)
    | st.sampled_from(["0 2 1 */3 *", "0 0 30 2 *", "0 0 29 2 *", "0 0 31 4 *", "0 0 * 2 1#5"]),
)
_clocks = st.from_regex(_pattern("rotation.window.start"), fullmatch=True)


@st.composite
def admitted_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A spec the CRD would admit (single-field patterns and bounds, and its cross-field rules)."""
    rotation: dict[str, Any] = {"timeZone": draw(admitted_zones)}
    if draw(st.booleans()):
        rotation["schedule"] = draw(admitted_crons)
    else:
        rotation["interval"] = draw(positive_durations)
    for name in ("publishAhead", "gracePeriod", "retention"):
        if draw(st.booleans()):
            rotation[name] = draw(admitted_durations)
    if draw(st.booleans()):
        start, end = draw(st.lists(_clocks, min_size=2, max_size=2, unique=True))
        rotation["window"] = {"start": start, "end": end}
    spec: dict[str, Any] = {
        "algorithm": draw(st.sampled_from(["RS256", "ES256", "EdDSA", "HS256", "HS512"])),
        "rotation": rotation,
        "suspend": draw(st.booleans()),
    }
    if draw(st.booleans()):
        spec["tokens"] = {
            "maxLifetime": draw(positive_durations),
            "verifierCacheTTL": draw(admitted_durations),
        }
    if draw(st.booleans()):
        spec["rollout"] = {
            "timeout": draw(positive_durations),
            "pauseBetween": draw(admitted_durations),
            "onFailure": draw(st.sampled_from(["Rollback", "Pause"])),
        }
    if draw(st.booleans()):
        count = draw(st.integers(1, 100))
        spec["analysis"] = {
            "prometheus": {
                "address": draw(
                    mostly(
                        st.sampled_from(["http://prometheus:9090", "https://thanos.example.com/api/prom"]),
                        st.from_regex(_pattern("analysis.prometheus.address"), fullmatch=True),
                    )
                ),
                "query": "up",
            },
            "successThreshold": draw(st.from_regex(_pattern("analysis.successThreshold"), fullmatch=True)),
            "initialDelay": draw(admitted_durations),
            "interval": draw(positive_durations),
            "count": count,
            "failureLimit": draw(st.integers(0, min(99, count - 1))),
            "onNoData": draw(st.sampled_from(["Pass", "Fail", "Inconclusive"])),
            "onFailure": draw(st.sampled_from(["Rollback", "Pause"])),
        }
    if draw(st.booleans()):
        gate: dict[str, Any] = {
            "threshold": draw(st.from_regex(_pattern("propagation.threshold"), fullmatch=True)),
            "interval": draw(positive_durations),
            "timeout": draw(positive_durations),
        }
        if "analysis" not in spec or draw(st.booleans()):  # the CRD wants an address of one of them
            gate["prometheus"] = {"address": "http://prometheus:9090"}
        if draw(st.booleans()):  # the CRD only checks that $kid is there, not where
            gate["query"] = draw(
                st.sampled_from(['count(x{kid="$kid"})', "count(x{kid=$kid})", "count(x{kid='$kid'}) / 1"])
            )
        spec["propagation"] = gate
    return spec
