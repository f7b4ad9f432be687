"""The `keyturn-client` distribution ships keyturn.client alone: what hack/client_wheel.py stages.

Building and installing the wheel is tests/integration/test_client_wheel.py; these checks need
neither pip nor the network.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

import client_wheel
from client_wheel import ClientWheelError, client_modules

ROOT = Path(__file__).resolve().parents[3]
# The keyturn.keys modules that serve the operator only (they read keyturn.domain).
OPERATOR_SIDE_KEYS = {"keyturn.keys.new_keys", "keyturn.keys.secret_data"}


def requirements(pyproject: Path) -> dict[str, str]:
    """{normalized name: version specifier} of project.dependencies, extras dropped."""
    with pyproject.open("rb") as f:
        deps: list[str] = tomllib.load(f)["project"]["dependencies"]
    out: dict[str, str] = {}
    for dep in deps:
        match = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?\s*(.*)", dep)
        assert match, dep
        out[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2).replace(" ", "")
    return out


def test_every_client_module_ships_with_the_keys_modules_it_imports_and_nothing_else() -> None:
    names = {m.name for m in client_modules()}
    client_files = {p.stem for p in (ROOT / "operator" / "keyturn" / "client").glob("*.py")}
    assert {f"keyturn.client.{stem}" for stem in client_files if stem != "__init__"} | {
        "keyturn.client"
    } <= names
    assert "keyturn.keys.pem" in names and "keyturn.keys.thumbprints" in names  # imported by the client
    assert "keyturn.keys.der" in names  # imported by pem only: the closure is transitive
    assert all(n.startswith(("keyturn.client", "keyturn.keys")) for n in names)
    assert not names & OPERATOR_SIDE_KEYS
    assert "keyturn" not in names  # no operator __init__


def test_dependencies_are_the_three_the_client_needs_with_the_operators_pins() -> None:
    client = requirements(ROOT / "clients" / "python" / "pyproject.toml")
    operator = requirements(ROOT / "pyproject.toml")
    assert set(client) == {"cryptography", "pyjwt", "prometheus-client"}
    assert client == {name: operator[name] for name in client}


def test_the_version_is_the_operators() -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        assert client_wheel.version() == tomllib.load(f)["project"]["version"]


def write(root: Path, module: str, text: str) -> None:
    path = root.joinpath(*module.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A miniature operator/ tree: a client importing a keys module through a relative import."""
    write(tmp_path, "keyturn.__init__", "import kopf\n")
    write(tmp_path, "keyturn.client.__init__", "from keyturn.client.a import A\n")
    write(tmp_path, "keyturn.client.a", "import json\nimport jwt\nfrom ..keys import used\nA = 1\n")
    write(tmp_path, "keyturn.keys.__init__", "")
    write(tmp_path, "keyturn.keys.used", "from keyturn.keys.deeper import x\n")
    write(tmp_path, "keyturn.keys.deeper", "from cryptography import x509\nx = 1\n")
    write(tmp_path, "keyturn.keys.unused", "import yaml\n")
    return tmp_path


def test_the_closure_follows_absolute_relative_and_transitive_imports(tree: Path) -> None:
    assert [m.name for m in client_modules(tree)] == [
        "keyturn.client",
        "keyturn.client.a",
        "keyturn.keys",
        "keyturn.keys.deeper",
        "keyturn.keys.used",
    ]


@pytest.mark.parametrize(
    ("module", "text", "named"),
    [
        ("keyturn.client.b", "from keyturn.domain.model import Ring\n", "keyturn.domain.model"),
        ("keyturn.client.b", "import keyturn\n", "keyturn.client.b imports keyturn:"),
        ("keyturn.keys.deeper", "import kubernetes\n", "keyturn.keys.deeper imports kubernetes"),
        ("keyturn.client.b", "from yaml import safe_load\n", "keyturn.client.b imports yaml"),
        ("keyturn.client.b", "from keyturn.keys import missing\n", "keyturn.keys.missing"),
    ],
    ids=[
        "operator code",
        "the operator's package",
        "a dependency of a keys module",
        "PyYAML",
        "not a module",
    ],
)
def test_an_import_that_cannot_ship_is_refused_by_name(
    tree: Path, module: str, text: str, named: str
) -> None:
    write(tree, module, text)
    if named == "keyturn.keys.missing":  # `from package import name` is only a module when the file exists
        assert "keyturn.keys.missing" not in {m.name for m in client_modules(tree)}
        return
    with pytest.raises(ClientWheelError, match=re.escape(named)):
        client_modules(tree)


def test_staging_copies_the_sources_and_adds_no_keyturn_init(tmp_path: Path) -> None:
    modules = client_wheel.stage(tmp_path)
    staged = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert "keyturn/__init__.py" not in staged
    assert {
        "pyproject.toml",
        "README.md",
        "VERSION",
        "keyturn/client/py.typed",
        "keyturn/keys/py.typed",
    } <= staged
    for module in modules:
        assert (tmp_path / module.relative).read_bytes() == module.path.read_bytes()
    meta: dict[str, Any] = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "keyturn-client"
