"""A real, throwaway Kubernetes control plane on 127.0.0.1 for Keyturn's tests, demo and benches.

Keyturn's behaviour depends on what the apiserver really does (RBAC, TokenRequest, rollouts
driven by the Deployment and ReplicaSet controllers), which fakes and envtest-style "apiserver
only" setups cannot show. So this runs the genuine binaries built by hack/build-binaries.sh:
etcd, kube-apiserver, kube-controller-manager and kube-scheduler, with KWOK standing in for the
kubelet of the Nodes so that Pods are scheduled and become Ready without a container runtime.

Usable as a library (``LocalCluster``, a context manager; ``hack/`` on ``sys.path``) and as a CLI::

    python hack/localcluster up --dir .keyturn/cluster [--crds crds/] [--nodes N]
    python hack/localcluster env

The package's README.md maps its modules and says how to add a component.
"""

from __future__ import annotations

from localcluster.binaries import BUILD_SCRIPT, VERSIONS_FILE, ensure_binaries, versions
from localcluster.cli import main
from localcluster.cluster import Cluster, ExistingCluster, KubectlError
from localcluster.components import COMPONENTS, Component, Context
from localcluster.errors import ClusterError
from localcluster.local_cluster import LocalCluster
from localcluster.log import Log
from localcluster.network import LOOPBACK, POD_CIDR, SA_ISSUER, SERVICE_CIDR
from localcluster.nodes import KWOK_NODE, KWOK_NODE_ANNOTATION
from localcluster.workdir import MARKER, TEMP_PREFIX

__all__ = [
    "BUILD_SCRIPT",
    "COMPONENTS",
    "KWOK_NODE",
    "KWOK_NODE_ANNOTATION",
    "LOOPBACK",
    "MARKER",
    "POD_CIDR",
    "SA_ISSUER",
    "SERVICE_CIDR",
    "TEMP_PREFIX",
    "VERSIONS_FILE",
    "Cluster",
    "ClusterError",
    "Component",
    "Context",
    "ExistingCluster",
    "KubectlError",
    "LocalCluster",
    "Log",
    "ensure_binaries",
    "main",
    "versions",
]
