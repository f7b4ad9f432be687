"""client/mounts.py: project() lays files out like the kubelet and never deletes or writes outside
its mount."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from keyturn.client import project


def test_project_lays_files_out_like_the_kubelet(tmp_path: Path) -> None:
    mount = tmp_path / "vol"
    project(mount, {"a": "1", "b": "2"})
    target = os.readlink(mount / "..data")
    assert target.startswith("..") and (mount / target).is_dir()
    assert os.readlink(mount / "a") == "..data/a"
    assert (mount / "a").read_text() == "1"
    project(mount, {"a": "3"})
    assert os.readlink(mount / "..data") != target
    assert not (mount / target).exists()
    assert not (mount / "b").is_symlink() and not (mount / "b").exists()
    assert (mount / "a").read_text() == "3"
    assert sorted(p.name for p in mount.iterdir()) == sorted(["..data", "a", os.readlink(mount / "..data")])


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the mount, with content that must survive whatever project() does."""
    where = tmp_path / "outside"
    where.mkdir()
    (where / "sentinel").write_text("keep me")
    (where / "a").write_text("not yours")
    return where


def tree(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


def mount_in(tmp_path: Path) -> Path:
    mount = tmp_path / "deep" / "er" / "mount"
    project(mount, {"a": "1", "b": "2"})
    return mount


Hostile = Callable[[Path, Path], None]


def data_link(target: str) -> Hostile:
    def make(mount: Path, _outside: Path) -> None:
        os.replace(_link(mount, target), mount / "..data")

    return make


def _link(mount: Path, target: str) -> Path:
    tmp = mount / "..hostile_tmp"
    os.symlink(target, tmp)
    return tmp


def data_link_to_outside(mount: Path, outside: Path) -> None:
    os.replace(_link(mount, str(outside)), mount / "..data")


def data_link_to_relative_outside(mount: Path, outside: Path) -> None:
    os.replace(_link(mount, os.path.relpath(outside, mount)), mount / "..data")


def version_dir_is_a_link_outside(mount: Path, outside: Path) -> None:
    os.symlink(outside, mount / "..2020_01_01_00_00_00.1")
    os.replace(_link(mount, "..2020_01_01_00_00_00.1"), mount / "..data")


def version_dir_holds_links_outside(mount: Path, outside: Path) -> None:
    version = mount / os.readlink(mount / "..data")
    os.symlink(outside, version / "c")
    os.symlink(outside / "sentinel", version / "d")


def visible_items_point_outside(mount: Path, outside: Path) -> None:
    os.replace(_link(mount, str(outside / "a")), mount / "a")
    os.replace(_link(mount, "../../../outside"), mount / "b")


@pytest.mark.parametrize(
    "make_hostile",
    [
        pytest.param(data_link("/"), id="..data to /"),
        pytest.param(data_link(".."), id="..data to the parent"),
        pytest.param(data_link("../.."), id="..data to a grandparent"),
        pytest.param(data_link("..2020_x/../.."), id="..data through a .. component"),
        pytest.param(data_link("."), id="..data to the mount itself"),
        pytest.param(data_link("..data"), id="..data to itself"),
        pytest.param(data_link_to_outside, id="..data to an absolute path outside"),
        pytest.param(data_link_to_relative_outside, id="..data to a relative path outside"),
        pytest.param(version_dir_is_a_link_outside, id="version directory is a link outside"),
        pytest.param(version_dir_holds_links_outside, id="version directory holds links outside"),
        pytest.param(visible_items_point_outside, id="visible items point outside"),
    ],
)
def test_project_never_deletes_or_writes_outside_the_mount(
    tmp_path: Path, outside: Path, make_hostile: Hostile
) -> None:
    mount = mount_in(tmp_path)
    make_hostile(mount, outside)
    before = tree(tmp_path / "deep"), tree(outside)
    project(mount, {"a": "3"})
    assert tree(outside) == before[1] == {"sentinel": "keep me", "a": "not yours"}
    assert (tmp_path / "deep" / "er").is_dir()
    assert (mount / "a").read_text() == "3" and os.readlink(mount / "a") == "..data/a"
    target = os.readlink(mount / "..data")
    assert os.sep not in target and (mount / target).is_dir() and not (mount / target).is_symlink()
    project(mount, {"a": "4"})
    assert (mount / "a").read_text() == "4" and tree(outside) == before[1]


@pytest.mark.parametrize("name", ["..data", "a"])
def test_project_refuses_a_mount_whose_links_are_real_files(tmp_path: Path, name: str) -> None:
    mount = mount_in(tmp_path)
    (mount / name).unlink()
    (mount / name).mkdir()
    (mount / name / "precious").write_text("x")
    with pytest.raises(ValueError, match="is not a symlink"):
        project(mount, {"a": "3"})
    assert (mount / name / "precious").read_text() == "x"


@pytest.mark.parametrize("name", ["", ".", "..", "..data", "..x", "a/b", "/etc/passwd", "a\0b", "x" * 254])
def test_project_refuses_names_that_are_not_item_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="is not a Secret/ConfigMap item name"):
        project(tmp_path / "mount", {name: "x"})
    assert not (tmp_path / "mount").exists()
