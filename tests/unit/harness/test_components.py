"""hack/localcluster/components.py: the table of components, their stages, ports and flags."""

from __future__ import annotations

import pytest

from localcluster import components
from localcluster.components import API, COMPONENTS, STAGES, STORAGE, Context, FlagEdits, by_name, in_stage
from localcluster.errors import ClusterError


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
