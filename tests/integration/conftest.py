"""Fixtures for tests that run the real operator process against the real control plane."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.client import ApiClient

import localcluster
from kubetools import Kube, OperatorProcess


@pytest.fixture
def kube(api: ApiClient, namespace: str) -> Kube:
    return Kube(api, namespace)


@pytest.fixture
def keyturn(cluster: localcluster.Cluster, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """A running operator for the test's namespace; stopped (and its log kept in tmp_path) after."""
    proc = OperatorProcess(
        kubeconfig=Path(cluster.kubeconfig), namespace=namespace, log_path=tmp_path / "operator.log"
    )
    proc.start()
    yield proc
    proc.stop()
