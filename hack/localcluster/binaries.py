"""The control-plane binaries: pinned versions, the build script that makes them, and its output."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from localcluster.errors import ClusterError
from localcluster.log import Log, quiet
from localcluster.process import signal_group

HACK_DIR = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = HACK_DIR / "build-binaries.sh"
VERSIONS_FILE = HACK_DIR / "versions.env"
_STILL_BUILDING_EVERY = 60.0


def versions() -> dict[str, str]:
    """The pinned versions, read from the file the build script itself sources."""
    pins: dict[str, str] = {}
    for raw in VERSIONS_FILE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            pins[key.strip()] = value.strip()
    return pins


def ensure_binaries(progress: Log | None = None) -> Path:
    """Returns the bin dir of the control-plane binaries, building them on a machine's first run.

    A cold build takes tens of minutes and is silent between binaries, so when a build (rather
    than a cache hit) is under way its log lines are forwarded to ``progress`` together with a
    periodic "still building" line: a newcomer must not mistake it for a hang.
    KEYTURN_BIN_DIR, when set, names a ready bin dir and skips the script entirely.
    """
    override = os.environ.get("KEYTURN_BIN_DIR")
    if override:
        return Path(override)
    emit = progress or quiet
    proc = subprocess.Popen(
        ["bash", str(BUILD_SCRIPT)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so an interrupt can stop the go builds too, not just bash
    )
    started = time.monotonic()
    try:
        building, seen, out = _follow_build(proc, emit)
    except BaseException:
        signal_group(proc, signal.SIGTERM)
        proc.wait()
        raise
    if proc.returncode != 0 or not out:
        tail = "\n".join(seen[-40:])
        raise ClusterError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}); its last output:\n{tail}")
    if building:
        emit(f"binaries ready after {time.monotonic() - started:.0f}s")
    return Path(out[-1])


def check_binaries(bin_dir: Path, needed: Iterable[str]) -> None:
    missing = [n for n in needed if not (bin_dir / n).exists()]
    if missing:
        raise ClusterError(f"{bin_dir} lacks {', '.join(missing)}; run {BUILD_SCRIPT}")


def _follow_build(proc: subprocess.Popen[str], emit: Log) -> tuple[bool, list[str], list[str]]:
    """Relays the build's stderr until it exits: (whether it built anything, stderr, stdout)."""
    assert proc.stdout is not None
    assert proc.stderr is not None
    stdout, stderr = proc.stdout, proc.stderr
    stdout_chunks: list[str] = []
    out_reader = threading.Thread(target=lambda: stdout_chunks.append(stdout.read()), daemon=True)
    out_reader.start()
    lines = _lines_of(stderr)
    seen: list[str] = []
    building = False
    started = time.monotonic()
    while True:
        try:
            line = lines.get(timeout=_STILL_BUILDING_EVERY)
        except queue.Empty:
            if building:
                emit(f"  ... still building ({(time.monotonic() - started) / 60:.0f} min elapsed)")
            continue
        if line is None:
            break
        seen.append(line)
        if not building and ": building" in line:
            building = True
            emit("building control plane binaries (first run only; a cold build takes 20-40 min)...")
        if building:
            emit(f"  {line}")
    proc.wait()
    out_reader.join()
    return building, seen, "".join(stdout_chunks).strip().splitlines()


def _lines_of(stream: IO[str]) -> queue.Queue[str | None]:
    """The stream's lines as they come, then None: a queue, so the reader can wait with a timeout."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines
