"""hack/demo.py's keyset: examples/quickstart.yaml with a shorter interval, within Keyturn's rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from demo import EXAMPLE, demo_keyset
from keyturn.domain.durations import parse_duration
from keyturn.domain.policies import timing_rules
from keyturn.domain.spec_parser import parse_spec


@pytest.mark.parametrize("interval", ["5s", "10s", "45s", "1m", "2m", "5m", "1h"])
def test_the_demo_keyset_keeps_the_timing_rules(interval: str) -> None:
    doc = demo_keyset(parse_duration(interval))
    spec = parse_spec(doc["metadata"]["name"], doc["metadata"]["namespace"], doc["spec"])
    assert timing_rules(spec) == []
    assert spec.rotation.interval == parse_duration(interval)
    # A key is published when the one before it activates: it cannot be published longer.
    assert spec.rotation.publish_ahead <= parse_duration(interval)


def test_the_default_demo_keyset_is_the_quickstart_rotating_every_minute() -> None:
    quickstart = yaml.safe_load(EXAMPLE.read_text())
    quickstart["spec"]["rotation"]["interval"] = "1m"
    assert demo_keyset(timedelta(minutes=1)) == quickstart
