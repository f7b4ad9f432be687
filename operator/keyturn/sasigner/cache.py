"""The node-local cache: the last Snapshot the signer read, so it can serve before the apiserver is up.

kube-apiserver needs the signer before it serves anything, and the signer reads the keyset
through that apiserver: the cache breaks the circle. It is one JSON file holding the keyset's
spec, the Secret's record and the current key's private key (PKCS#8 PEM, unencrypted, like
kubeadm's sa.key next to it), written after every change the signer sees:

- atomically: a temporary file in the same folder, fsync, rename over the old one, fsync the
  folder; a crash leaves the old cache or the new one, never half of one;
- mode 0600 from its creation (mkstemp), owned by the signer's user.

Reading trusts nothing: a symlink, anything but a regular file, a group or world bit, another
owner or more than MAX_CACHE bytes is a CacheRejected before a byte is parsed; the contents go
through the same checks as the Secret's (snapshot.assemble) and must be of the keyset asked for.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Final

from keyturn.domain.record import RecordError, parse_timestamp, timestamp
from keyturn.keys.pem import private_pem
from keyturn.sasigner.errors import CacheRejected, SignerError
from keyturn.sasigner.snapshot import Snapshot, assemble, keyset_spec

FORMAT: Final = "keyturn.dev/sa-signer-cache"
VERSION: Final = 1
MAX_CACHE: Final = 4 * 1024 * 1024


def dump(snapshot: Snapshot) -> bytes:
    """The cache document of a snapshot (its private key included: write it with `store` only)."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "keyset": {"namespace": snapshot.namespace, "name": snapshot.name},
        "spec": snapshot.spec_document,
        "record": snapshot.record,
        "signingKey": {"kid": snapshot.signing_kid, "pem": private_pem(snapshot.signing)},
        "fetchedAt": timestamp(snapshot.fetched_at),
        "resourceVersion": snapshot.resource_version,
    }
    return json.dumps(document, sort_keys=True, indent=1).encode("utf-8")


def _field(document: dict[str, Any], name: str, kind: type) -> Any:
    value = document.get(name)
    if not isinstance(value, kind):
        raise CacheRejected(f"field {name} must be {kind.__name__}, not {type(value).__name__}")
    return value


def parse(data: bytes, namespace: str, name: str, *, where: str) -> Snapshot:
    """The Snapshot a cache document holds, checked like a Secret; CacheRejected otherwise."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CacheRejected(f"{where}: not a JSON document") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CacheRejected(f"{where}: not a Keyturn sa-signer cache (format must be {FORMAT})")
    if document.get("version") != VERSION:
        raise CacheRejected(
            f"{where}: cache version {str(document.get('version'))[:16]} (this signer reads {VERSION})"
        )
    try:
        keyset = _field(document, "keyset", dict)
        if (keyset.get("namespace"), keyset.get("name")) != (namespace, name):
            raise CacheRejected(
                f"holds JwtKeySet {str(keyset.get('namespace'))[:64]}/{str(keyset.get('name'))[:64]}, "
                f"not {namespace}/{name}"
            )
        signing = _field(document, "signingKey", dict)
        pem = _field(signing, "pem", str)
        spec_document, spec = keyset_spec(namespace, name, {"spec": _field(document, "spec", dict)})
        snapshot = assemble(
            spec_document,
            spec,
            _field(document, "record", str),
            pem,
            None,
            parse_timestamp(_field(document, "fetchedAt", str)),
            _field(document, "resourceVersion", str),
            where=where,
        )
    except RecordError as exc:
        raise CacheRejected(f"{where}: fetchedAt: {exc}") from None
    except SignerError as exc:  # the same damage a Secret could have, found in the file
        text = str(exc)
        raise CacheRejected(text if text.startswith(where) else f"{where}: {text}") from None
    if snapshot.signing_kid != signing.get("kid"):
        raise CacheRejected(f"{where}: signingKey.kid is not the record's current key {snapshot.signing_kid}")
    return snapshot


def read_guarded(path: Path) -> bytes | None:
    """The file's bytes if it is safe to trust; None if there is none; CacheRejected otherwise."""
    where = f"cache file {path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        what = "a symbolic link" if exc.errno == errno.ELOOP else errno.errorcode.get(exc.errno or 0, "error")
        raise CacheRejected(f"{where}: cannot be opened safely ({what})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CacheRejected(f"{where}: not a regular file")
        if info.st_mode & 0o077:
            raise CacheRejected(
                f"{where}: mode {stat.S_IMODE(info.st_mode):04o}; it holds a private key and must be 0600 "
                "(the signer writes it so; something else changed it)"
            )
        if info.st_uid != os.geteuid():
            raise CacheRejected(f"{where}: owned by uid {info.st_uid}, not the signer's ({os.geteuid()})")
        if info.st_size > MAX_CACHE:
            raise CacheRejected(f"{where}: larger than {MAX_CACHE} bytes")
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            data = handle.read(MAX_CACHE + 1)
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > MAX_CACHE:
        raise CacheRejected(f"{where}: larger than {MAX_CACHE} bytes")
    return data


def load(path: Path, namespace: str, name: str) -> Snapshot | None:
    """The cached Snapshot of namespace/name, None without a cache file, CacheRejected if unusable."""
    data = read_guarded(path)
    return None if data is None else parse(data, namespace, name, where=f"cache file {path}")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: mode 0600 from the start, all or nothing, durable once it returns."""
    folder = path.parent
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def store(path: Path, snapshot: Snapshot) -> None:
    write_atomic(path, dump(snapshot))
