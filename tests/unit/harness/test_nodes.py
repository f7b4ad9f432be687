"""hack/localcluster/nodes.py: KWOK Node names, manifests and readiness."""

from __future__ import annotations

from typing import Any

import pytest

import localcluster
from localcluster import nodes


def _node(*, ready: str | None, taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready}]
    return {"spec": {"taints": taints} if taints else {}, "status": {"conditions": conditions}}


NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("node", "usable"),
    [
        pytest.param(_node(ready="True"), True, id="Ready and untainted: Pods can land"),
        pytest.param(
            _node(ready="True", taints=[NOT_READY_TAINT]), False, id="Ready but still tainted: not yet"
        ),
        pytest.param(_node(ready="False"), False, id="not Ready: KWOK has not taken it over"),
        pytest.param(_node(ready=None), False, id="no conditions yet: just registered"),
        pytest.param({}, False, id="no status at all"),
    ],
)
def test_a_node_is_usable_once_ready_and_untainted(node: dict[str, Any], usable: bool) -> None:
    assert nodes.is_ready_and_untainted(node) is usable


def test_nodes_are_numbered_from_the_documented_first_node() -> None:
    assert nodes.node_names(3) == [localcluster.KWOK_NODE, "kwok-node-1", "kwok-node-2"]
    assert all(nodes.node_manifest(n)["metadata"]["labels"]["type"] == "kwok" for n in nodes.node_names(2))
