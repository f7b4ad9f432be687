"""Reading Secret and ConfigMap volumes the way the kubelet writes them, and writing them so too.

The kubelet never rewrites a mounted file in place. It writes the new content into a fresh
timestamped directory (`..2026_03_01_02_00_00.123456789`), points a temporary symlink at it and
renames that over `..data`; every visible item is a symlink `NAME -> ..data/NAME`. Two things
follow for a reader:

- the mtime of `<mount>/NAME` (a symlink that never changes) says nothing; what changes is the
  inode of the file the path resolves to and the `..data` link itself, so fingerprints are built
  from those;
- reading two items one after the other can straddle a swap (a new private key with the old
  kid), so items are read from one resolved `..data` directory, and the read is repeated when
  the fingerprint moved while reading.

Plain directories (local runs, `docker -v`) work too: their fingerprint is the items' stat.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Final

from keyturn.client.errors import KeySourceError

__all__ = ["DATA_LINK", "dir_fingerprint", "file_fingerprint", "project", "read_file", "read_items"]

DATA_LINK: Final = "..data"
_ATTEMPTS: Final = 5
# A JWKS of a few keys is a few KiB; the bound only stops a wrong mount from filling memory.
MAX_FILE_BYTES: Final = 1 << 20

_Stat = tuple[int, int, int, int, int]


def _stat(path: Path, *, follow: bool = True) -> _Stat | None:
    try:
        st = path.stat() if follow else path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _data_link(directory: Path) -> tuple[str, _Stat | None] | None:
    link = directory / DATA_LINK
    try:
        target = os.readlink(link)
    except OSError:  # absent, or not a symlink: not a kubelet volume
        return None
    return target, _stat(link, follow=False)


def file_fingerprint(path: Path) -> Hashable:
    """Changes whenever the content at `path` may have changed, including kubelet swaps."""
    return (_stat(path), _data_link(path.parent))


def dir_fingerprint(directory: Path, names: Iterable[str]) -> Hashable:
    """Fingerprint of the named items of a mounted directory (an absent item counts as a state)."""
    return (_data_link(directory), tuple(_stat(directory / name) for name in names))


def _check_name(name: str) -> None:
    if (
        not name
        or "/" in name
        or "\0" in name
        or name in (".", "..")
        or name.startswith("..")
        or len(name) > 253
    ):
        raise ValueError(f"{name!r} is not a Secret/ConfigMap item name")


def read_file(path: Path) -> tuple[Hashable, bytes]:
    """The content of one mounted file with the fingerprint it was read at."""
    for _ in range(_ATTEMPTS):
        before = file_fingerprint(path)
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            raise KeySourceError(f"{path} does not exist") from None
        except OSError as exc:
            raise KeySourceError(f"{path} cannot be read: {exc.strerror}") from None
        if len(data) > MAX_FILE_BYTES:
            raise KeySourceError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
        if file_fingerprint(path) == before:
            return before, data
    raise KeySourceError(f"{path} kept changing while it was read")


def read_items(directory: Path, names: Iterable[str]) -> tuple[Hashable, dict[str, str | None]]:
    """The named items as text (None: absent), all from one version of the volume."""
    wanted = tuple(dict.fromkeys(names))
    for name in wanted:
        _check_name(name)
    if not directory.is_dir():
        raise KeySourceError(f"{directory} is not a directory")
    for _ in range(_ATTEMPTS):
        before = dir_fingerprint(directory, wanted)
        link = _data_link(directory)
        # Read the resolved snapshot: items added by a swap get their visible symlink only
        # after `..data` moved, and items removed by it leave a dangling one for a moment.
        base = directory / link[0] if link is not None else directory
        values: dict[str, str | None] = {}
        for name in wanted:
            try:
                with (base / name).open("rb") as handle:
                    raw = handle.read(MAX_FILE_BYTES + 1)
            except (FileNotFoundError, NotADirectoryError):
                values[name] = None
                continue
            except OSError as exc:
                raise KeySourceError(f"item {name} in {directory} cannot be read: {exc.strerror}") from None
            if len(raw) > MAX_FILE_BYTES:
                raise KeySourceError(f"item {name} in {directory} is larger than {MAX_FILE_BYTES} bytes")
            try:
                values[name] = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise KeySourceError(f"item {name} in {directory} is not UTF-8 text") from None
        if dir_fingerprint(directory, wanted) == before:
            return before, values
    raise KeySourceError(f"{directory} kept changing while it was read")


def project(directory: Path | str, files: Mapping[str, str | bytes]) -> None:
    """Lay `files` out in `directory` exactly as the kubelet's atomic writer does, replacing
    whatever version is there (items not in `files` disappear).

    For local runs and tests that must behave like a pod: copy a Secret or ConfigMap into a
    directory with this and every reader sees the same atomic swap it would see in a cluster.

    Nothing outside `directory` is ever written or deleted, whatever its links point at: the
    previous version is deleted only when `..data` names a real directory `..<something>` inside
    `directory` (never through a link, an absolute path or a `..` component), and a visible item
    is only ever a link to `..data/NAME`. A layout that cannot be projected without deleting
    something that is not ours (`..data` or an item that is a real file or directory) is a
    ValueError, raised before anything is written.
    """
    root = Path(directory)
    for name in files:
        _check_name(name)
    root.mkdir(parents=True, exist_ok=True)
    for name in (DATA_LINK, *files):
        if os.path.lexists(root / name) and not (root / name).is_symlink():
            raise ValueError(f"{root / name} exists and is not a symlink: not a projected volume")
    previous = _previous_version(root)
    stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime())
    fresh = Path(tempfile.mkdtemp(prefix=f"..{stamp}.", dir=root))
    fresh.chmod(0o755)
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (fresh / name).write_bytes(data)
        (fresh / name).chmod(0o644)
    _replace_link(root, DATA_LINK, fresh.name)
    for name in files:
        _replace_link(root, name, f"{DATA_LINK}/{name}")
    for entry in os.scandir(root):
        # Visible items of the previous version: our own links into ..data, and only those.
        if entry.name.startswith("..") or entry.name in files or not entry.is_symlink():
            continue
        if os.readlink(entry.path) == f"{DATA_LINK}/{entry.name}":
            os.unlink(entry.path)
    if previous is not None:
        shutil.rmtree(root / previous)  # a real directory (checked); rmtree never follows links


def _previous_version(root: Path) -> str | None:
    """The name of the directory `..data` points at, when it is one we may delete: a single
    path component `..<something>` naming a real directory (not a link) right in `root`."""
    try:
        target = os.readlink(root / DATA_LINK)
    except OSError:
        return None
    if os.sep in target or not target.startswith("..") or len(target) <= 2 or target == DATA_LINK:
        return None
    try:
        mode = os.lstat(root / target).st_mode
    except OSError:
        return None
    return target if stat.S_ISDIR(mode) else None


def _replace_link(root: Path, name: str, target: str) -> None:
    """Point `root/name` at `target` atomically (a temporary link renamed over it)."""
    link = root / name
    try:
        if os.readlink(link) == target:
            return
    except OSError:
        pass  # absent (or, in a race, not a link: the rename below then fails loudly)
    tmp = root / f"{DATA_LINK}_tmp.{secrets.token_hex(5)}"
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
