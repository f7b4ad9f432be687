"""The KWOK Nodes: their manifests and when one counts as usable. Pure data, no I/O.

KWOK plays the kubelet of every Node carrying ``KWOK_NODE_ANNOTATION``, so Pods are scheduled
and become Ready without a container runtime.
"""

from __future__ import annotations

from typing import Any

KWOK_NODE = "kwok-node-0"  # the first (by default the only) Node
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
_RESOURCES = {"cpu": "32", "memory": "256Gi", "pods": "110"}


def node_names(count: int) -> list[str]:
    """``kwok-node-0``, ``kwok-node-1``, ...: the first is always ``KWOK_NODE``."""
    return [f"kwok-node-{i}" for i in range(count)]


def node_manifest(name: str) -> dict[str, Any]:
    key, value = KWOK_NODE_ANNOTATION
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        # No taints: ordinary Deployments must schedule here without tolerations.
        "spec": {},
        # Nodes may carry status on create (a kubelet registers this way); KWOK keeps it.
        "status": {"allocatable": _RESOURCES, "capacity": _RESOURCES},
    }


def is_ready_and_untainted(node: dict[str, Any]) -> bool:
    """Ready comes from KWOK; the not-ready taint that admission put on the new Node is only
    lifted by the node-lifecycle controller, and Pods would stay Pending until then."""
    conditions = node.get("status", {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ready and not node.get("spec", {}).get("taints")
