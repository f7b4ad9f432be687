"""`make demo` end to end: hack/demo.py run as a newcomer runs it, with a 10 s interval, then Ctrl-C.

Its first rotation line must show tokens verified and every validation successful; SIGINT must
end it with status 0, print the load's summary, and leave no process and no work dir behind. The
processes are found by a marker in the environment, which every descendant inherits (the control
plane's components, the operator, sync.py, the two apps, load.py and any kubectl they run).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from helpers import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "hack" / "demo.py"
ROTATION = re.compile(
    r"rotation (?P<n>\d+): (?P<old>\S+) → (?P<new>\S+) \| (?P<verified>\d+) tokens verified since the last "
    r"line, (?P<share>[\d.]+)% valid \| the verifier had it ≥?(?P<ahead>\d+)s before$"
)
SUMMARY = re.compile(
    r"load: (\d+) tokens issued, (\d+) verified of (\d+) checked \(100\.00% valid\), errors none"
)


def processes_with(variable: str) -> list[str]:
    """The command lines of live processes whose environment holds `variable` (NAME=value)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if variable.encode() in environ:
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found


def test_make_demo_rotates_without_a_failed_validation_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    marker = secrets.token_hex(8)
    workdir = tmp_path / "demo"
    env = {**os.environ, "KEYTURN_DEMO_DIR": str(workdir), "KEYTURN_DEMO_TEST": marker}
    proc = subprocess.Popen(
        [sys.executable, str(DEMO), "--interval", "10s"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=env,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    stdout = proc.stdout
    pump = threading.Thread(target=lambda: lines.extend(ln.rstrip("\n") for ln in stdout), daemon=True)
    pump.start()

    def first_rotation() -> re.Match[str] | None:
        if proc.poll() is not None:
            raise AssertionError(f"the demo exited with {proc.returncode}:\n" + "\n".join(lines))
        return next((m for ln in list(lines) if (m := ROTATION.search(ln))), None)

    try:
        rotation = wait_for(first_rotation, 60, interval=0.5, message="the demo's first rotation line")
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    pump.join(timeout=10)
    output = "\n".join(lines)

    assert rotation["n"] == "1" and rotation["old"] != rotation["new"], output
    assert int(rotation["verified"]) > 0 and rotation["share"] == "100.00", output
    assert int(rotation["ahead"]) >= 5, output  # published ahead: the verifier had the key first
    assert code == 0, output
    summary = next((m for ln in lines if (m := SUMMARY.search(ln))), None)
    assert summary is not None and int(summary[2]) == int(summary[3]) > 0, output
    left: list[str] = []

    def all_gone() -> bool:
        left[:] = processes_with(f"KEYTURN_DEMO_TEST={marker}")
        return not left

    try:
        wait_for(all_gone, 10, message="every process of the demo gone (Linux reaps them in a moment)")
    except AssertionError:
        pytest.fail(f"left running after the demo exited: {left}")
    assert not workdir.exists(), sorted(p.name for p in workdir.iterdir())
