"""Every repository path the docs name exists, and every link (and its #anchor) leads somewhere.

Paths drift when code moves (executor.py became executor/, cli.py became cli/): a doc that names
a file that is gone sends its reader nowhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from unit.docs.sources import ROOT, markdown_files, ticked, without_code_blocks

# Named on purpose although they are not in this repository.
ELSEWHERE = {
    "rotate_jwt_keys.py": "runbook 000's own script, which Keyturn replaces",
    "scripts/rotate_jwt_keys.py": "runbook 000's own script, which Keyturn replaces",
    "jwks.json": "a data key of the JWKS ConfigMap, not a file",
}
EXTENSIONS = ("py", "md", "yaml", "yml", "json", "sh", "lua", "toml", "lock", "env", "tpl", "txt")
PATHLIKE = re.compile(r"[\w.-]+(?:/[\w.-]+)*/?")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# Where a path in a doc may be relative to, besides the doc's own folder.
BASES = ("", "operator/keyturn", "operator/keyturn/cli", "charts/keyturn", "hack", "tests")
OTHER_FILES = (ROOT / "charts/keyturn/Chart.yaml", ROOT / "Dockerfile", ROOT / "charts/keyturn/README.md")


def is_repository_path(token: str) -> bool:
    if not PATHLIKE.fullmatch(token) or token.startswith(("keyturn.dev/", "kubernetes.io/", "app.")):
        return False
    if "/" in token.rstrip("/"):
        return token.endswith("/") or token.rsplit(".", 1)[-1] in EXTENSIONS
    return token.rsplit(".", 1)[-1] in EXTENSIONS and "." in token


@cache
def files_named(name: str) -> bool:
    skip = {".git", ".venv", "node_modules", "__pycache__"}
    return any(not skip & set(p.parts) for p in ROOT.rglob(name))


def exists(token: str, folder: Path) -> bool:
    if token in ELSEWHERE:
        return True
    candidates = [folder / token, *(ROOT / base / token for base in BASES)]
    if any(c.exists() for c in candidates):
        return True
    return "/" not in token and files_named(token)


def named_paths(path: Path) -> Iterator[str]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        for token in ticked(without_code_blocks(text)):
            if is_repository_path(token):
                yield token
    else:  # comments and values of Chart.yaml and the Dockerfile
        for token in re.findall(r"[\w.-]+(?:/[\w.-]+)+", text):
            if is_repository_path(token) and "." in token.rsplit("/", 1)[-1]:
                yield token


DOCUMENTS = [*markdown_files(), *OTHER_FILES]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_document_names_exists(path: Path) -> None:
    missing = sorted({t for t in named_paths(path) if not exists(t, path.parent)})
    assert not missing, f"{path.relative_to(ROOT)} names paths that do not exist: {missing}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    text = without_code_blocks(path.read_text(encoding="utf-8"))
    return frozenset(slug(h) for h in re.findall(r"^#{1,6} +(.*)$", text, re.MULTILINE))


def broken_links(path: Path) -> Iterator[str]:
    for target in LINK.findall(without_code_blocks(path.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            yield f"{target} (no such file)"
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            yield f"{target} (no such heading)"


@pytest.mark.parametrize("path", list(markdown_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_leads_somewhere(path: Path) -> None:
    broken = sorted(set(broken_links(path)))
    assert not broken, f"{path.relative_to(ROOT)} has broken links: {broken}"


def test_the_path_rules_see_what_they_must() -> None:
    assert is_repository_path("operator/keyturn/executor.py")
    assert is_repository_path("hack/localcluster/")
    assert is_repository_path("parser.py")
    assert not is_repository_path("keyturn.dev/state")
    assert not is_repository_path("jwtkeysets/status")
    assert not exists("operator/keyturn/executor.py", ROOT / "docs")
    assert not exists("hack/render-deploy.py", ROOT / "docs")
    assert exists("domain/reasons.py", ROOT / "docs")
    assert slug("`status.history`") == "statushistory"
    assert slug("Reading the operator's logs") == "reading-the-operators-logs"
