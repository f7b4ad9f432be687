"""FileSource: keys parsed from a mounted Secret or ConfigMap, re-read after every kubelet swap.

Files are checked on use, at most every `check_interval` seconds, by a fingerprint (a few `stat`
calls, see mounts.py); the content is read and parsed only when the fingerprint moved.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path

from keyturn.client import mounts
from keyturn.client.errors import KeySourceError
from keyturn.client.sources import ReloadingSource, S, Withdraw

__all__ = ["FileSource"]


class FileSource(ReloadingSource[S]):
    """A snapshot parsed from mounted files, re-read when their fingerprint changes.

    `load` returns the fingerprint its content was read at together with the parsed value, so a
    swap that lands between the check and the read is seen again at the next check.
    """

    def __init__(
        self,
        source: str,
        what: str,
        *,
        probe: Callable[[], Hashable],
        load: Callable[[], tuple[Hashable, S]],
        check_interval: float,
        withdraw: Withdraw[S] | None = None,
    ) -> None:
        if check_interval < 0:
            raise ValueError("check_interval must not be negative")
        super().__init__(source, what, withdraw)
        self._probe = probe
        self._load = load
        self._interval = check_interval
        self._fingerprint: Hashable = None
        self._failed_fingerprint: Hashable | None = None
        self._due = 0.0

    @classmethod
    def of_file(
        cls,
        source: str,
        what: str,
        path: Path,
        parse: Callable[[bytes], S],
        check_interval: float,
        withdraw: Withdraw[S] | None = None,
    ) -> FileSource[S]:
        """One mounted file (a ConfigMap's jwks.json), parsed whole."""

        def load() -> tuple[Hashable, S]:
            fingerprint, data = mounts.read_file(path)
            return fingerprint, parse(data)

        probe = functools.partial(mounts.file_fingerprint, path)
        return cls(source, what, probe=probe, load=load, check_interval=check_interval, withdraw=withdraw)

    @classmethod
    def of_items(
        cls,
        source: str,
        what: str,
        directory: Path,
        names: Iterable[str],
        parse: Callable[[dict[str, str | None]], S],
        check_interval: float,
    ) -> FileSource[S]:
        """Named items of a mounted Secret, always parsed together from one version of it."""
        wanted = list(names)

        def load() -> tuple[Hashable, S]:
            fingerprint, items = mounts.read_items(directory, wanted)
            return fingerprint, parse(items)

        probe = functools.partial(mounts.dir_fingerprint, directory, wanted)
        return cls(source, what, probe=probe, load=load, check_interval=check_interval)

    def get(self) -> S:
        if time.monotonic() >= self._due:
            self._check(wait=False)
        return self._value

    def refresh_now(self) -> S:
        # A stat or two: cheap enough to do for every unknown kid, and it makes a just-swapped
        # file visible to the very request that needs it.
        self._check(wait=True)
        return self._value

    def reload(self) -> S:
        with self._lock:
            self._due = time.monotonic() + self._interval
            try:
                fingerprint, value = self._load()
            except KeySourceError as exc:
                self._refused(exc)
                raise
            self._install_version(fingerprint, value)
            return value

    def _load_first(self) -> S:
        try:
            self._fingerprint, value = self._load()
        except KeySourceError as exc:
            self._refused(exc, initial=True)
            raise
        self._due = time.monotonic() + self._interval
        return value

    def _tick(self) -> object:
        return self._check(wait=True)

    def _check(self, *, wait: bool) -> bool:
        if not self._lock.acquire(blocking=wait):
            return False  # another thread is looking right now; use what we have
        try:
            self._due = time.monotonic() + self._interval
            try:
                probe = self._probe()
            except OSError:
                probe = object()  # unknown state: look at the content
            if probe in (self._fingerprint, self._failed_fingerprint):
                return False
            try:
                fingerprint, value = self._load()
            except Exception as exc:
                self._failed_fingerprint = probe
                self._refused(exc)
                return False
            if fingerprint == self._fingerprint:
                return False
            self._install_version(fingerprint, value)
            return True
        finally:
            self._lock.release()

    def _install_version(self, fingerprint: Hashable, value: S) -> None:
        self._fingerprint = fingerprint
        self._failed_fingerprint = None
        self._install(value, initial=False)
