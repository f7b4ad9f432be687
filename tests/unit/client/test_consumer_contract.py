"""docs/consumers.md and the Go and Node examples speak the Python client's metric vocabulary.

The examples are run against the Python client in tests/integration/test_consumer_examples.py;
these checks catch a reason renamed or added on one side only, without a toolchain.
"""

from __future__ import annotations

import re
from pathlib import Path

from keyturn.client import ValidationReason
from keyturn.client.metrics import INVALID_KID, OTHER_KID, ClientMetrics

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = ROOT / "docs" / "consumers.md"
EXAMPLES = ROOT / "examples" / "consumers"
REASONS = {r.value for r in ValidationReason}


def reason_table() -> dict[str, str]:
    """{reason: result} from the contract's reason table."""
    rows = re.findall(r"^\| `([a-z_]+)` \| (success|failure) \|", CONTRACT.read_text(), re.MULTILINE)
    return dict(rows)


def test_the_contract_lists_every_reason_with_its_result() -> None:
    assert reason_table() == {r.value: r.result for r in ValidationReason}


def test_the_contract_states_the_metric_names_labels_and_kid_bounds() -> None:
    text = CONTRACT.read_text()
    assert "`jwt_keys_loaded{kid}` (gauge)" in text
    assert "`jwt_validations_total{result, reason, kid}` (counter)" in text
    assert f"`{OTHER_KID}`" in text and f"`{INVALID_KID}`" in text
    assert f"{ClientMetrics(None).max_foreign_kids} distinct" in text
    assert "`[A-Za-z0-9._-]{1,128}`" in text


def test_the_go_example_uses_only_client_reasons() -> None:
    source = (EXAMPLES / "go" / "verify.go").read_text()
    declared = set(re.findall(r'^\s*reason\w+\s*=\s*"([a-z_]+)"', source, re.MULTILINE))
    assert declared and declared <= REASONS


def test_the_node_example_uses_only_client_reasons() -> None:
    source = (EXAMPLES / "node" / "server.mjs").read_text()
    check = source[
        source.index("async function check(") : source.index("// ----", source.index("function reasonFor("))
    ]
    # Reasons are what check() and reasonFor() return: `return ['x', kid]`, `return 'x'`, `? 'x' : 'y'`,
    # the claim map's values and its `?? 'x'` fallback.
    used = set(re.findall(r"(?:return \[?|\? |: |\?\? )'([a-z_]+)'", check))
    assert len(used) > 10 and used <= REASONS, used - REASONS
