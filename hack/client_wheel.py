"""`make client-wheel`: the `keyturn-client` wheel, built from the one copy of the source in operator/.

The client library lives in operator/keyturn/client and imports a few keyturn.keys modules; the
operator's distribution ships them along with everything else. Applications want the client
alone, with its three dependencies. Rather than keep a second copy of those files in git, this
script stages a temporary tree at build time:

    pyproject.toml, README.md   from clients/python/
    VERSION                     the `keyturn` distribution's version (one version for both)
    keyturn/client/*.py         every module of the client package
    keyturn/keys/<needed>.py    only the keyturn.keys modules the client imports, found by reading
                                the imports (so a new import ships without editing this file)
    py.typed                    in both packages (PEP 561)

and builds it with `pip wheel` (setuptools in an isolated build environment). There is no
`keyturn/__init__.py` in the tree: `keyturn` is a namespace package in this wheel, so it cannot
pull in operator code. Any import of another keyturn package (domain, adapters, ...) or of a
third-party module other than the three dependencies is a ClientWheelError naming the importing
module, raised before anything is built.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
SOURCE: Final = ROOT / "operator"
DISTRIBUTION: Final = ROOT / "clients" / "python"
# Packages whose modules may be shipped; everything else under keyturn is the operator's.
SHIPPED_PACKAGES: Final = ("keyturn.client", "keyturn.keys")
# Top-level modules the client may import besides the standard library: its dependencies.
DEPENDENCY_MODULES: Final = frozenset({"cryptography", "jwt", "prometheus_client"})


class ClientWheelError(Exception):
    """The client cannot ship alone (an import it must not have) or the build failed."""


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. keyturn.keys.pem
    path: Path  # the .py file under operator/

    @property
    def relative(self) -> Path:
        return self.path.relative_to(SOURCE)


def module_file(name: str, source: Path = SOURCE) -> Path | None:
    """The file of a dotted module under `source`, or None when it is not a module there."""
    base = source.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(module: Module) -> list[tuple[str, tuple[str, ...]]]:
    """(imported module, names taken from it) for every import statement, relative ones resolved."""
    tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
    package = module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]
    found: list[tuple[str, tuple[str, ...]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            found.append((base, tuple(alias.name for alias in node.names)))
    return found


def _shipped(module: str) -> bool:
    return any(module == package or module.startswith(f"{package}.") for package in SHIPPED_PACKAGES)


def client_modules(source: Path = SOURCE) -> list[Module]:
    """keyturn.client's modules and every keyturn module they import, transitively.

    Raises ClientWheelError when one of them imports operator code or a third-party module that
    is not a dependency of the wheel.
    """
    client_dir = source / "keyturn" / "client"
    pending = [f"keyturn.client.{p.stem}" for p in sorted(client_dir.glob("*.py")) if p.stem != "__init__"]
    pending += list(SHIPPED_PACKAGES)
    seen: dict[str, Module] = {}
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        path = module_file(name, source)
        if path is None:
            raise ClientWheelError(f"{name} is imported by the client but is not a module under {source}")
        module = Module(name, path)
        seen[name] = module
        for imported, names in _imports(module):
            top = imported.split(".")[0]
            if top != "keyturn":
                if (
                    top not in DEPENDENCY_MODULES
                    and top not in sys.stdlib_module_names
                    and top != "__future__"
                ):
                    raise ClientWheelError(
                        f"{name} imports {imported}, which is neither the standard library nor a "
                        f"dependency of keyturn-client ({', '.join(sorted(DEPENDENCY_MODULES))})"
                    )
                continue
            # `from keyturn.keys import thumbprints` names a module; `from keyturn.keys.jwk import x`
            # a name in one.
            targets = [imported] + [
                f"{imported}.{n}" for n in names if module_file(f"{imported}.{n}", source)
            ]
            for target in targets:
                if not _shipped(target):
                    only = " and ".join(SHIPPED_PACKAGES)
                    raise ClientWheelError(f"{name} imports {target}: only {only} ship in keyturn-client")
                pending.append(target)
    return sorted(seen.values(), key=lambda m: m.name)


def version(root: Path = ROOT) -> str:
    """The `keyturn` distribution's version, which the client shares."""
    with (root / "pyproject.toml").open("rb") as f:
        value = tomllib.load(f)["project"]["version"]
    if not isinstance(value, str):
        raise ClientWheelError("pyproject.toml has no project.version")
    return value


def stage(target: Path, source: Path = SOURCE) -> list[Module]:
    """Lay out the distribution's build tree in `target` (an empty directory)."""
    modules = client_modules(source)
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(DISTRIBUTION / name, target / name)
    (target / "VERSION").write_text(version() + "\n", encoding="utf-8")
    for module in modules:
        dest = target / module.relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(module.path, dest)
    for package in SHIPPED_PACKAGES:
        (target.joinpath(*package.split(".")) / "py.typed").write_text("", encoding="utf-8")
    return modules


def build_wheel(out_dir: Path) -> Path:
    """Build the wheel into `out_dir` and return its path (the tree is staged in a temporary directory)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="keyturn-client-") as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        modules = stage(tree)
        wheels = Path(tmp) / "wheels"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--quiet",
                "--wheel-dir",
                str(wheels),
                str(tree),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ClientWheelError(f"pip wheel failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        (built,) = wheels.glob("keyturn_client-*.whl")
        check_wheel(built, modules)
        result = out_dir / built.name
        shutil.copyfile(built, result)
    return result


def check_wheel(wheel: Path, modules: list[Module]) -> None:
    """The wheel holds exactly the staged modules and py.typed files, and no keyturn/__init__.py."""
    with zipfile.ZipFile(wheel) as archive:
        files = {n for n in archive.namelist() if not n.startswith("keyturn_client-")}
    expected = {m.relative.as_posix() for m in modules}
    expected |= {f"{package.replace('.', '/')}/py.typed" for package in SHIPPED_PACKAGES}
    if files != expected:
        raise ClientWheelError(
            f"the wheel's files differ from the staged modules: extra {sorted(files - expected)}, "
            f"missing {sorted(expected - files)}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out_dir", nargs="?", type=Path, default=ROOT / "dist", help="default: dist/")
    args = parser.parse_args(argv)
    try:
        wheel = build_wheel(args.out_dir)
    except ClientWheelError as exc:
        print(f"client-wheel: {exc}", file=sys.stderr)
        return 1
    print(wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
