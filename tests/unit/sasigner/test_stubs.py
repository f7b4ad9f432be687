"""sasigner/pb: the committed stubs are what hack/externaljwt_stubs.py makes of the pinned proto."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import externaljwt_stubs
from keyturn.sasigner.pb import api_pb2, api_pb2_grpc

ROOT = Path(__file__).resolve().parents[3]


def test_the_proto_version_is_the_one_the_kubernetes_build_pins() -> None:
    version = externaljwt_stubs.pinned_version()
    kubernetes = re.search(
        r"^KUBERNETES_VERSION=v1\.(\d+)\.(\d+)$", (ROOT / "hack/versions.env").read_text(), re.M
    )
    assert kubernetes is not None
    assert version == f"v0.{kubernetes.group(1)}.{kubernetes.group(2)}"  # staging modules: v0.<minor>.<patch>


@pytest.mark.skipif(
    shutil.which("go") is None, reason="needs the Go toolchain (the binary build needs it too)"
)
def test_the_committed_stubs_are_a_fresh_generation_of_the_pinned_proto() -> None:
    """Fails after a Kubernetes bump until `make externaljwt-stubs` is run (and after a hand edit)."""
    assert externaljwt_stubs.differences() == []


def test_the_service_is_kube_apiservers() -> None:
    """The Go client calls /v1.ExternalJWTSigner/<method> (k8s.io/externaljwt apis/v1/api_grpc.pb.go)."""
    service = api_pb2.DESCRIPTOR.services_by_name["ExternalJWTSigner"]
    assert service.full_name == "v1.ExternalJWTSigner"
    assert sorted(m.name for m in service.methods) == ["FetchKeys", "Metadata", "Sign"]
    source = Path(api_pb2_grpc.__file__).read_text()
    for method in ("Sign", "FetchKeys", "Metadata"):
        assert f"'/v1.ExternalJWTSigner/{method}'" in source
    assert [f.name for f in api_pb2.Key.DESCRIPTOR.fields] == ["key_id", "key", "exclude_from_oidc_discovery"]
