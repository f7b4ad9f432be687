"""The local control plane's table, flags and Node readiness, checked without starting anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import localcluster
from localcluster import components, nodes
from localcluster.components import API, COMPONENTS, STAGES, STORAGE, Context, FlagEdits, by_name, in_stage
from localcluster.control_plane import ControlPlane
from localcluster.credentials import issue_credentials
from localcluster.errors import ClusterError
from localcluster.process import Deadline


@pytest.fixture
def context(tmp_path: Path) -> Context:
    ports = {name: 20000 + i for i, name in enumerate(components.port_names())}
    return Context(tmp_path, tmp_path / "bin", ports)


def test_every_component_has_a_stage_a_unique_name_and_its_own_ports() -> None:
    assert {c.stage for c in COMPONENTS} <= set(STAGES)
    assert len(by_name()) == len(COMPONENTS)
    ports = components.port_names()
    assert len(ports) == len(set(ports))


def test_etcd_can_launch_before_the_credentials_exist_but_the_apiserver_cannot(context: Context) -> None:
    (etcd,) = in_stage(STORAGE)
    assert f"--listen-client-urls={context.url('http', 'etcd-client')}" in etcd.args(context)
    assert etcd.health(context).url == context.url("http", "etcd-client", "/health")
    (apiserver,) = in_stage(API)
    with pytest.raises(ClusterError, match="before they were issued"):
        apiserver.args(context)


def test_a_clusters_flag_edits_apply_to_the_tables_flags(context: Context, tmp_path: Path) -> None:
    context.credentials = issue_credentials(tmp_path / "pki", components.identities())
    edits = FlagEdits(extra=("--authorization-mode=RBAC",), drop=frozenset({"--profiling"}))
    plane = ControlPlane(context, deadline=Deadline.after(1), edits={"kube-apiserver": edits})
    apiserver, etcd = by_name()["kube-apiserver"], by_name()["etcd"]

    argv = list(plane.spec(apiserver).argv)

    assert argv[0] == str(context.bin_dir / "kube-apiserver")
    assert argv[1:] == [f for f in apiserver.args(context) if f != "--profiling=false"] + [
        "--authorization-mode=RBAC"
    ]
    assert list(plane.spec(etcd).argv[1:]) == etcd.args(context)


TABLE = ["--a=1", "--b=2", "--flag", "--list=x"]


@pytest.mark.parametrize(
    ("edits", "flags"),
    [
        pytest.param(FlagEdits(), TABLE, id="no edits: the table's flags"),
        pytest.param(FlagEdits(extra=("--a=9",)), [*TABLE, "--a=9"], id="extra flags come last, so they win"),
        pytest.param(
            FlagEdits(extra=("--list=y",)), [*TABLE, "--list=y"], id="a repeated list flag adds a value"
        ),
        pytest.param(
            FlagEdits(extra=("--c=3",), drop=frozenset({"--b", "--flag"})),
            ["--a=1", "--list=x", "--c=3"],
            id="dropped by name, with or without a value",
        ),
    ],
)
def test_flag_edits(edits: FlagEdits, flags: list[str]) -> None:
    assert edits.apply("thing", TABLE) == flags


def test_dropping_a_flag_the_table_does_not_give_is_an_error_not_a_silent_no_op() -> None:
    with pytest.raises(ClusterError, match="cannot drop --bb: the table gives thing no such flag"):
        FlagEdits(drop=frozenset({"--bb"})).apply("thing", TABLE)


def test_flag_edits_must_name_components_of_the_table() -> None:
    with pytest.raises(ValueError, match="no component named kubelet"):
        localcluster.LocalCluster(extra_args={"kubelet": ["--v=4"]})


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


def test_a_cluster_needs_at_least_one_node() -> None:
    with pytest.raises(ValueError, match="at least one KWOK Node"):
        localcluster.LocalCluster(nodes=0)


def test_the_cli_refuses_an_extra_arg_for_an_unknown_component(capsys: pytest.CaptureFixture[str]) -> None:
    assert localcluster.main(["up", "--extra-arg", "kubelet=--v=4"]) == 1
    assert "COMPONENT one of etcd, kube-apiserver" in capsys.readouterr().err
