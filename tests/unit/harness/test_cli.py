"""hack/localcluster/cli.py: `python -m localcluster` refuses what it cannot start."""

from __future__ import annotations

import pytest

import localcluster


def test_the_cli_refuses_an_extra_arg_for_an_unknown_component(capsys: pytest.CaptureFixture[str]) -> None:
    assert localcluster.main(["up", "--extra-arg", "kubelet=--v=4"]) == 1
    assert "COMPONENT one of etcd, kube-apiserver" in capsys.readouterr().err
