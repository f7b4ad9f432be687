"""One generic runner for every component: launch, health-check until ready, stop.

In the spirit of controller-runtime's ``pkg/internal/testing/process.State``: a ``ProcessSpec``
says what to run (argv, environment, log file), how to tell it is ready (a ``HealthCheck``) and
how long that may take (``start_timeout``); a ``Process`` runs one spec. Each process gets its
own process group (so stopping it ends its children too) and, on Linux, a parent-death signal
(so a SIGKILLed test run cannot leave an apiserver behind).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from localcluster.errors import ClusterError
from localcluster.health import HealthCheck

Probe = Callable[[], bool]
POLL_INTERVAL = 0.1


@dataclass(frozen=True)
class Deadline:
    """A point in time and the budget it was set from, which is what a timeout message quotes."""

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float) -> Self:
        return cls(time.monotonic() + seconds, seconds)

    def expired(self) -> bool:
        return time.monotonic() > self.at

    def sooner(self, other: Deadline) -> Deadline:
        return self if self.at <= other.at else other


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    log: Path
    cwd: Path
    health: HealthCheck
    start_timeout: float
    env: Mapping[str, str] = field(default_factory=dict)


def _parent_death_killer() -> Callable[[], None] | None:
    """A preexec hook asking Linux to SIGKILL the child when its parent dies.

    atexit and signal handlers cannot run when the test process is SIGKILLed (CI timeouts,
    OOM); without this an apiserver and etcd would outlive it. Resolved in the parent, so the
    forked child only makes one syscall. The kernel ties this to the *thread* that forked, so
    components must be launched from a thread that lives as long as they do.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return hook


_PREEXEC = _parent_death_killer()
# The same hook for processes started outside this package (hack/demo.py's example apps): Popen's
# preexec_fn, called from a thread that outlives the child.
PARENT_DEATH_HOOK = _PREEXEC

# klog's E/F prefix, cobra's "Error:", zap/slog JSON levels.
_ERROR_LINE = re.compile(r'^[EF]\d{4} |^Error:|"level":"(error|fatal|panic|ERROR)"')


class Process:
    """A running component: its spec, its OS process and its log."""

    def __init__(self, spec: ProcessSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.log = spec.log
        self._proc: subprocess.Popen[bytes] | None = None
        self._deadline = Deadline.after(spec.start_timeout)

    def launch(self) -> None:
        """Starts the process without waiting for it: components of one stage start side by side."""
        fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (" ".join(self.spec.argv) + "\n\n").encode())
            self._proc = subprocess.Popen(
                list(self.spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                cwd=self.spec.cwd,
                env={**os.environ, **self.spec.env},
                start_new_session=True,  # own process group: stop() can end it whole
                preexec_fn=_PREEXEC,  # noqa: PLW1509 - a single prctl call, resolved before fork
            )
        finally:
            os.close(fd)
        self._deadline = Deadline.after(self.spec.start_timeout)

    @property
    def returncode(self) -> int | None:
        """The exit code once the process has ended, None while it runs (or before launch)."""
        return self._proc.poll() if self._proc is not None else None

    def await_ready(self, overall: Deadline, watched: Iterable[Process]) -> None:
        """Polls the health check until it passes, within the start timeout and ``overall``."""
        wait_until(
            f"{self.name} {self.spec.health.path}",
            self.spec.health.passes,
            deadline=self._deadline.sooner(overall),
            watched=watched,
            blamed=[self],
            interval=self.spec.health.poll_interval,
        )

    def signal(self, sig: signal.Signals) -> None:
        if self._proc is not None:
            signal_group(self._proc, sig)

    def reap(self, deadline: float) -> None:
        """Waits for the process to end until ``deadline``, then kills what is left of its group."""
        if self._proc is None:
            return
        try:
            self._proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            signal_group(self._proc, signal.SIGKILL)
            self._proc.wait()
        # The leader is gone; sweep anything it may have left in its group.
        signal_group(self._proc, signal.SIGKILL)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def evidence(self) -> str:
        """The first error lines and the end of the log.

        A component that rejects a flag prints the reason first and pages of usage after it,
        so the tail alone would hide the one line that matters.
        """
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        errors = [ln for ln in text[1:] if _ERROR_LINE.search(ln)][:10]
        head = ["first error lines:", *errors, "last lines:"] if errors else []
        return "\n".join([*head, *text[-30:]])


def wait_until(
    what: str,
    probe: Probe,
    *,
    deadline: Deadline,
    watched: Iterable[Process],
    blamed: Sequence[Process],
    interval: float = POLL_INTERVAL,
) -> None:
    """Polls ``probe`` until it holds, failing fast (with its log) if a watched process dies.

    On a timeout the logs of ``blamed`` are quoted: "timed out" alone never helps.
    """
    watched = list(watched)
    while True:
        for proc in watched:
            code = proc.returncode
            if code is not None:
                raise ClusterError(
                    f"{proc.name} exited with code {code} while waiting for {what}; "
                    f"{proc.log}:\n{proc.evidence()}"
                )
        if probe():
            return
        if deadline.expired():
            tails = "\n".join(f"--- {p.log}:\n{p.evidence()}" for p in blamed)
            raise ClusterError(f"timed out after {deadline.seconds:.0f}s waiting for {what}\n{tails}")
        time.sleep(interval)


def stop_together(processes: Sequence[Process], grace: float) -> None:
    """SIGTERM to all at once, then SIGKILL whatever is left after ``grace`` seconds."""
    for proc in processes:
        proc.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in processes:
        proc.reap(deadline)


def signal_group(proc: subprocess.Popen[bytes] | subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
