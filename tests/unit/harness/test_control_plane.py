"""hack/localcluster/control_plane.py: the plane starts the table's command line plus a cluster's edits."""

from __future__ import annotations

from pathlib import Path

from localcluster import components
from localcluster.components import Context, FlagEdits, by_name
from localcluster.control_plane import ControlPlane
from localcluster.credentials import issue_credentials
from localcluster.process import Deadline


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
