"""hack/localcluster/local_cluster.py: what LocalCluster refuses before starting anything."""

from __future__ import annotations

import pytest

import localcluster


def test_flag_edits_must_name_components_of_the_table() -> None:
    with pytest.raises(ValueError, match="no component named kubelet"):
        localcluster.LocalCluster(extra_args={"kubelet": ["--v=4"]})


def test_a_cluster_needs_at_least_one_node() -> None:
    with pytest.raises(ValueError, match="at least one KWOK Node"):
        localcluster.LocalCluster(nodes=0)
