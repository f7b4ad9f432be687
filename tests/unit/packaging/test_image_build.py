"""hack/image.py's decisions, without building: which Debian sources the base comes from, what
counts as an input of the image (and so when dist/'s archive is reused), and what a record holds.
The build itself runs in tests/integration/test_image.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import image as oci

DEB822_MACHINE = """\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
MACHINE_LINES = [
    "deb http://mirror.example/debian bookworm main",
    "deb http://mirror.example/debian bookworm-updates main",
    "deb http://mirror.example/debian-security bookworm-security main",
]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"debian.sources": DEB822_MACHINE}, MACHINE_LINES),
        (
            {"sources.list": "deb [signed-by=/k.gpg] http://m.example/debian bookworm main contrib\n"},
            ["deb http://m.example/debian bookworm main"],
        ),
        ({"sources.list": "# deb http://m.example/debian bookworm main\n"}, []),
        ({"sources.list": "deb-src http://m.example/debian bookworm main\n"}, []),
        ({"sources.list": "deb http://m.example/debian trixie main\n"}, []),
        ({"sources.list": "deb http://m.example/debian bookworm contrib\n"}, []),
        ({"o.sources": "Types: deb\nURIs: https://n.example\nSuites: nodistro\nComponents: main\n"}, []),
        ({"d.sources": DEB822_MACHINE.replace("updates\n", "updates\nEnabled: no\n")}, MACHINE_LINES[2:]),
        ({"a.list": "deb http://m.example/debian bookworm main\n", "b.sources": DEB822_MACHINE},
         ["deb http://m.example/debian bookworm main", *MACHINE_LINES]),
        ({"x.list.disabled": "deb http://m.example/debian bookworm main\n"}, []),
        ({"twice.list": "deb http://m.example/debian bookworm main\n" * 2},
         ["deb http://m.example/debian bookworm main"]),
    ],
    ids=[
        "this machine's deb822",
        "one-line, options dropped, main only",
        "commented out",
        "source packages",
        "another release",
        "no main component",
        "a third-party repository",
        "a disabled stanza",
        "several files, in name order",
        "a disabled file",
        "duplicates once",
    ],
)  # fmt: skip
def test_the_base_comes_from_the_mirrors_apt_uses(files: dict[str, str], expected: list[str]) -> None:
    assert oci.debian_sources(files) == expected


def recipe(**changes: object) -> oci.BaseRecipe:
    fields: dict[str, object] = {
        "suite": "bookworm",
        "packages": oci.BUILDER_PACKAGES,
        "sources": tuple(MACHINE_LINES),
        "options": oci.BUILDER_OPTIONS,
    }
    return oci.BaseRecipe(**{**fields, **changes})  # type: ignore[arg-type]


def bases(**changes: object) -> oci.Bases:
    """The repository's two bases on MACHINE_LINES; `builder_<field>`/`runtime_<field>` change one."""

    def of(role: str) -> dict[str, object]:
        return {k.removeprefix(f"{role}_"): v for k, v in changes.items() if k.startswith(f"{role}_")}

    runtime = {"packages": oci.RUNTIME_PACKAGES, "options": oci.RUNTIME_OPTIONS}
    return oci.Bases(recipe(**of("builder")), recipe(**{**runtime, **of("runtime")}))


@pytest.mark.parametrize(
    "change",
    [
        {"suite": "trixie"},
        {"packages": (*oci.BUILDER_PACKAGES, "curl")},
        {"sources": ("deb http://other.example/debian bookworm main",)},
        {"options": ("--variant=apt",)},
        {"env": ("LANG=C",)},
    ],
    ids=lambda c: next(iter(c)),
)
def test_the_base_is_made_again_when_what_goes_into_it_changes(change: dict[str, object]) -> None:
    assert recipe(**change).key != recipe().key
    assert recipe().key == recipe().key


@pytest.mark.parametrize(
    "change",
    [
        {"builder_packages": (*oci.BUILDER_PACKAGES, "curl")},
        {"runtime_packages": (*oci.RUNTIME_PACKAGES, "bash")},
        {"runtime_options": oci.RUNTIME_OPTIONS[:-1]},
        {"runtime_sources": ("deb http://other.example/debian bookworm main",)},
    ],
    ids=lambda c: next(iter(c)),
)
def test_both_bases_are_made_again_when_either_changes(change: dict[str, object]) -> None:
    assert bases(**change).key != bases().key
    assert bases().key == bases().key


def test_the_builder_base_is_the_essential_set_with_python_and_strip() -> None:
    argv = recipe().argv(Path("/cache/base.tar"))
    assert argv[0] == "mmdebstrap" and "--variant=essential" in argv
    assert "--include=python3,python3-venv,ca-certificates,binutils" in argv
    assert argv[-4:] == ["/cache/base.tar", *MACHINE_LINES]
    assert argv[-5] == "bookworm"


def test_the_runtime_base_is_python_alone_extracted_not_installed() -> None:
    argv = bases().runtime.argv(Path("/cache/runtime.tar"))
    assert "--variant=extract" in argv and "--variant=essential" not in argv
    (include,) = [a for a in argv if a.startswith("--include=")]
    packages = include.removeprefix("--include=").split(",")
    assert {"python3.11-minimal", "libpython3.11-stdlib"} <= set(packages)
    # Nothing that brings a shell, a package manager or Perl (dependencies are resolved, but these
    # are what an essential base would add).
    assert not {"bash", "dash", "coreutils", "dpkg", "apt", "perl-base", "passwd", "busybox"} & set(packages)
    assert argv[-4:] == ["/cache/runtime.tar", *MACHINE_LINES]
    assert any("var/lib/dpkg/status" in a for a in argv if a.startswith("--extract-hook=")), (
        "a dpkg status database for scanners"
    )


def fake_checkout(root: Path) -> Path:
    (root / "operator" / "keyturn" / "__pycache__").mkdir(parents=True)
    (root / "operator" / "keyturn.egg-info").mkdir()
    (root / "operator" / "keyturn" / "__init__.py").write_text("VERSION = 1\n")
    (root / "operator" / "keyturn" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\0")
    (root / "operator" / "keyturn.egg-info" / "PKG-INFO").write_text("x")
    (root / "tests").mkdir()
    (root / "tests" / "test_x.py").write_text("")
    for name in ("pyproject.toml", "requirements.lock", "README.md", "Dockerfile"):
        (root / name).write_text(name)
    (root / ".dockerignore").write_text(
        "*\n!pyproject.toml\n!requirements.lock\n!README.md\n!operator/\n**/__pycache__\n"
    )
    return root


def test_the_inputs_are_the_build_context_dockerignore_lets_through(tmp_path: Path) -> None:
    root = fake_checkout(tmp_path)
    names = [str(p.relative_to(root)) for p in oci.context_files(root)]
    assert names == ["pyproject.toml", "requirements.lock", "README.md", "operator/keyturn/__init__.py"]


def test_the_repository_s_context_is_what_the_dockerfile_copies() -> None:
    names = {str(p.relative_to(oci.ROOT)) for p in oci.context_files()}
    assert {"pyproject.toml", "requirements.lock", "README.md", "operator/keyturn/operator_main.py"} <= names
    assert not [n for n in names if not n.startswith("operator/") and "/" in n]


@pytest.mark.parametrize(
    ("edit", "rebuilt"),
    [
        (lambda root: (root / "operator" / "keyturn" / "__init__.py").write_text("VERSION = 2\n"), True),
        (lambda root: (root / "Dockerfile").write_text("FROM scratch\n"), True),
        (lambda root: (root / "requirements.lock").write_text("kopf==9\n"), True),
        (lambda root: (root / "operator" / "keyturn" / "new.py").write_text(""), True),
        (lambda root: (root / "tests" / "test_x.py").write_text("assert 0\n"), False),
        (lambda root: (root / "operator" / "keyturn" / "__pycache__" / "x.pyc").write_bytes(b"1"), False),
    ],
    ids=["source", "Dockerfile", "lock file", "a new module", "a test", "bytecode"],
)
def test_an_archive_is_reused_only_while_its_inputs_are_unchanged(
    tmp_path: Path, edit: object, rebuilt: bool
) -> None:
    root = fake_checkout(tmp_path)
    args = {"VERSION": "0.1.0", "REVISION": "abc"}
    before = oci.inputs_key(bases(), args, root)
    assert oci.inputs_key(bases(), args, root) == before
    edit(root)  # type: ignore[operator]
    assert (oci.inputs_key(bases(), args, root) != before) == rebuilt


def test_build_arguments_and_the_base_are_inputs(tmp_path: Path) -> None:
    root = fake_checkout(tmp_path)
    args = {"VERSION": "0.1.0", "REVISION": "abc"}
    key = oci.inputs_key(bases(), args, root)
    assert oci.inputs_key(bases(), {**args, "REVISION": "def"}, root) != key
    assert oci.inputs_key(bases(builder_suite="trixie"), args, root) != key
    assert oci.inputs_key(bases(runtime_packages=("python3.11-minimal",)), args, root) != key


def record(archive: Path) -> oci.Record:
    return oci.Record(
        archive=archive,
        reference="keyturn:0.1.0",
        digest="sha256:" + "a" * 64,
        archive_bytes=archive.stat().st_size,
        layers=[
            {"digest": "sha256:" + "b" * 64, "compressedBytes": 40, "uncompressedBytes": 100},
            {"digest": "sha256:" + "c" * 64, "compressedBytes": 20, "uncompressedBytes": 50},
        ],
        inputs="0123456789abcdef",
        base="fedcba9876543210",
        version="0.1.0",
        revision="abc",
        build_seconds=61.23,
    )


def test_a_record_says_digest_and_sizes_and_reads_back(tmp_path: Path) -> None:
    archive = tmp_path / "keyturn-0.1.0.oci.tar"
    archive.write_bytes(b"x" * 70)
    written = record(archive)
    path = archive.with_suffix(".json")
    path.write_text(json.dumps(written.to_json()))
    doc = json.loads(path.read_text())
    assert doc["digest"] == "sha256:" + "a" * 64
    assert (doc["archiveBytes"], doc["compressedBytes"], doc["uncompressedBytes"]) == (70, 60, 150)
    loaded = oci.Record.load(path)
    assert loaded is not None and loaded.cached
    assert (loaded.digest, loaded.layers, loaded.inputs) == (written.digest, written.layers, written.inputs)
    summary = written.summary()
    assert written.digest in summary and "2 layers" in summary and "in 61 s" in summary
    assert "reused" in loaded.summary()


@pytest.mark.parametrize(
    "damage",
    [
        lambda archive, path: archive.write_bytes(b"x" * 10),  # a partial copy
        lambda archive, path: archive.unlink(),
        lambda archive, path: path.write_text("{not json"),
        lambda archive, path: path.write_text(json.dumps({"archive": archive.name})),
    ],
    ids=["archive of another size", "archive gone", "not JSON", "fields missing"],
)
def test_a_record_without_its_whole_archive_is_no_record(tmp_path: Path, damage: object) -> None:
    archive = tmp_path / "keyturn-0.1.0.oci.tar"
    archive.write_bytes(b"x" * 70)
    path = archive.with_suffix(".json")
    path.write_text(json.dumps(record(archive).to_json()))
    damage(archive, path)  # type: ignore[operator]
    assert oci.Record.load(path) is None


@pytest.mark.parametrize(
    ("config", "args", "argv"),
    [
        ({"Entrypoint": ["keyturn"], "Cmd": ["run"]}, None, ["keyturn", "run"]),
        (
            {"Entrypoint": ["keyturn"], "Cmd": ["run"]},
            ["run", "--standalone"],
            ["keyturn", "run", "--standalone"],
        ),
        ({"Cmd": ["python3"]}, None, ["python3"]),
    ],
    ids=["CMD", "a Pod's args replace CMD", "no ENTRYPOINT"],
)
def test_a_container_runs_entrypoint_and_args_or_cmd(
    config: dict[str, list[str]], args: list[str] | None, argv: list[str]
) -> None:
    assert oci.Unpacked(Path("/"), dict(config), {}).argv(args) == argv


def test_the_image_environment_is_parsed_at_the_first_equals_sign() -> None:
    image = oci.Unpacked(Path("/"), {"Env": ["PATH=/a:/b", "X=y=z"]}, {})
    assert image.env == {"PATH": "/a:/b", "X": "y=z"}
