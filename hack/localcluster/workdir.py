"""The work dir (kubeconfig, certificates, logs, etcd data): made, reused, removed, reaped.

It holds etcd's data, so only a dir this package made (it carries ``MARKER``, with the owner's
pid) may be wiped and reused.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from localcluster.errors import ClusterError

MARKER = ".keyturn-localcluster"
TEMP_PREFIX = "keyturn-cluster-"


def prepare_workdir(requested: Path | None) -> tuple[Path, bool]:
    """An empty work dir with the marker and a logs/ dir: (its path, whether it was made here)."""
    if requested is None:
        reap_orphaned_tempdirs()
        path, made = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX)), True
    elif requested.exists():
        entries = list(requested.iterdir())
        if entries and not (requested / MARKER).exists():
            raise ClusterError(
                f"{requested} is not empty and was not made by localcluster; refusing to use it"
            )
        for e in entries:  # a previous run's leftovers (kept, or killed before cleanup)
            _remove(e)
        path, made = requested, False
    else:
        requested.mkdir(parents=True)
        path, made = requested, True
    (path / MARKER).write_text(f"{os.getpid()}\n")
    (path / "logs").mkdir()
    return path, made


def remove_workdir(path: Path, *, made: bool, keep_logs: bool = False) -> None:
    """Removes the work dir (only its contents if someone else made it), or all but the logs.

    Logs kept in a temp dir are reaped by a later run once this process has exited.
    """
    if not (path / MARKER).exists():
        return
    if made and not keep_logs:
        shutil.rmtree(path, ignore_errors=True)
        return
    for e in path.iterdir():
        if not (keep_logs and e.name in {"logs", MARKER}):
            _remove(e, missing_ok=True)


def reap_orphaned_tempdirs() -> None:
    """Removes temp work dirs whose owning process is gone.

    A SIGKILLed test run cannot clean up; its components die with it (parent-death signal)
    but its dir, with etcd's data, would stay in /tmp forever. Dirs of live owners, e.g. a
    parallel test run, are left alone.
    """
    for d in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        try:
            pid = int((d / MARKER).read_text().strip())
        except (OSError, ValueError):
            continue  # not (yet) one of ours, or its owner is still writing it
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            continue  # alive, another user's


def _remove(entry: Path, *, missing_ok: bool = False) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=missing_ok)
    else:
        entry.unlink(missing_ok=missing_ok)
