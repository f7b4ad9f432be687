"""sasigner/cache.py: the node-local cache, written atomically with mode 0600 and trusted only when
nothing about it (mode, owner, kind of file, contents) was tampered with."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from keyturn.domain.model import KeyState
from keyturn.keys.generation import generate
from keyturn.keys.pem import private_pem
from keyturn.sasigner import cache
from keyturn.sasigner.errors import CacheRejected
from keyturn.sasigner.snapshot import Snapshot, from_secret, keyset_spec
from redaction import needles
from unit.sasigner.keysets import NAME, NAMESPACE, T0, Keyset, keyset


def snapshot_of(ks: Keyset) -> Snapshot:
    document, spec = keyset_spec(NAMESPACE, NAME, {"spec": ks.spec_document})
    return from_secret(document, spec, ks.secret(), ks.passphrase_secret(), T0)


@pytest.fixture(scope="module")
def served() -> tuple[Keyset, Snapshot]:
    ks = keyset()
    return ks, snapshot_of(ks)


def test_what_is_stored_is_what_is_loaded(tmp_path: Path, served: tuple[Keyset, Snapshot]) -> None:
    _, snapshot = served
    path = tmp_path / "cache.json"
    cache.store(path, snapshot)
    loaded = cache.load(path, NAMESPACE, NAME)
    assert loaded is not None
    assert loaded.same_keys(snapshot)
    assert loaded.fetched_at == snapshot.fetched_at
    assert loaded.kids == snapshot.kids
    assert loaded.signing_kid == snapshot.signing_kid


def test_an_encrypted_keyset_is_cached_and_loaded_without_its_passphrase(tmp_path: Path) -> None:
    snapshot = snapshot_of(keyset(encrypted=True))
    path = tmp_path / "cache.json"
    cache.store(path, snapshot)
    loaded = cache.load(path, NAMESPACE, NAME)
    assert loaded is not None and loaded.same_keys(snapshot)


def test_the_file_is_0600_from_its_creation_and_replaced_whole(
    tmp_path: Path, served: tuple[Keyset, Snapshot]
) -> None:
    _, snapshot = served
    path = tmp_path / "cache.json"
    old_umask = os.umask(0o022)  # a permissive umask must not widen it
    try:
        cache.store(path, snapshot)
        first = path.stat()
        cache.store(path, snapshot)
    finally:
        os.umask(old_umask)
    second = path.stat()
    assert first.st_mode & 0o777 == 0o600 and second.st_mode & 0o777 == 0o600
    assert first.st_ino != second.st_ino  # a new file renamed over the old one, not rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.json"]  # no temporary file left


def test_a_failed_write_leaves_the_old_cache_and_no_temporary_file(
    tmp_path: Path, served: tuple[Keyset, Snapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, snapshot = served
    path = tmp_path / "cache.json"
    path.write_bytes(b"old")

    def crash(_src: object, _dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space"):
        cache.store(path, snapshot)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.json"]


def test_no_file_is_no_cache(tmp_path: Path) -> None:
    assert cache.load(tmp_path / "absent.json", NAMESPACE, NAME) is None


# ------------------------------------------------------------------------------------ tampering
Tamper = Callable[[Path, Keyset], None]


def _edit(edit: Callable[[dict[str, Any]], None]) -> Tamper:
    def tamper(path: Path, _ks: Keyset) -> None:
        document = json.loads(path.read_text())
        edit(document)
        path.write_text(json.dumps(document))

    return tamper


def _record(edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def on_document(document: dict[str, Any]) -> None:
        record = json.loads(document["record"])
        edit(record)
        document["record"] = json.dumps(record)

    return on_document


def _current(record: dict[str, Any]) -> dict[str, Any]:
    return next(k for k in record["keys"] if k["state"] == "current")


def _other_key(document: dict[str, Any]) -> None:
    document["signingKey"]["pem"] = private_pem(generate("ES256"))


def _promote_next(record: dict[str, Any]) -> None:
    """A record edited to make the next key sign: the cached PEM is then not its key."""
    _current(record)["state"] = "previous"
    next(k for k in record["keys"] if k["state"] == "next")["state"] = "current"


def _symlink(path: Path, _ks: Keyset) -> None:
    target = path.with_name("elsewhere.json")
    path.rename(target)
    path.symlink_to(target)


def _directory(path: Path, _ks: Keyset) -> None:
    path.unlink()
    path.mkdir()


TAMPERS: list[Any] = [
    pytest.param(lambda p, ks: p.chmod(0o644), "mode 0644", id="world-readable"),
    pytest.param(lambda p, ks: p.chmod(0o640), "mode 0640", id="group-readable"),
    pytest.param(_symlink, "symbolic link", id="a symlink"),
    pytest.param(_directory, "not a regular file", id="a directory"),
    pytest.param(lambda p, ks: p.write_bytes(b"\x00\xff" * 10), "not a JSON document", id="binary"),
    pytest.param(lambda p, ks: p.write_text("[]"), "not a Keyturn sa-signer cache", id="JSON, not a cache"),
    pytest.param(lambda p, ks: p.write_bytes(b" " * (cache.MAX_CACHE + 1)), "larger than", id="too large"),
    pytest.param(_edit(lambda d: d.update(version=99)), "cache version 99", id="another version"),
    pytest.param(
        _edit(lambda d: d["keyset"].update(name="other")),
        "holds JwtKeySet kube-system/other",
        id="another keyset",
    ),
    pytest.param(_edit(lambda d: d.pop("record")), "field record must be str", id="no record"),
    pytest.param(
        _edit(lambda d: d.update(spec={"algorithm": "HS256"})), "spec.algorithm HS256", id="HMAC spec"
    ),
    pytest.param(_edit(lambda d: d.update(fetchedAt="soon")), "fetchedAt", id="bad time"),
    pytest.param(_edit(_other_key), "fingerprint", id="another private key"),
    pytest.param(_edit(_record(_promote_next)), "fingerprint", id="record edited to sign with another key"),
    pytest.param(_edit(lambda d: d["signingKey"].update(kid="x")), "signingKey.kid", id="kid edited"),
    pytest.param(_edit(lambda d: d["signingKey"].update(pem="garbage")), "does not load", id="PEM damaged"),
    pytest.param(
        _edit(_record(lambda r: r.update(keys="none"))), "keys: must be a list", id="record damaged"
    ),
]


@pytest.mark.parametrize(("tamper", "message"), TAMPERS)
def test_a_tampered_cache_is_rejected_by_name(
    tmp_path: Path, served: tuple[Keyset, Snapshot], tamper: Tamper, message: str
) -> None:
    ks, snapshot = served
    path = tmp_path / "cache.json"
    cache.store(path, snapshot)
    tamper(path, ks)
    with pytest.raises(CacheRejected, match=message) as raised:
        cache.load(path, NAMESPACE, NAME)
    text = str(raised.value)
    assert text.startswith(f"cache file {path}")
    for needle in needles(ks.material(ks.current.kid)):
        assert needle not in text


def test_a_cache_of_another_owner_is_rejected(
    tmp_path: Path, served: tuple[Keyset, Snapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, snapshot = served
    path = tmp_path / "cache.json"
    cache.store(path, snapshot)
    monkeypatch.setattr(os, "geteuid", lambda: path.stat().st_uid + 1)
    with pytest.raises(CacheRejected, match="owned by uid"):
        cache.load(path, NAMESPACE, NAME)


def test_a_single_key_ring_round_trips(tmp_path: Path) -> None:
    snapshot = snapshot_of(keyset(states=(KeyState.CURRENT,)))
    path = tmp_path / "cache.json"
    cache.store(path, snapshot)
    loaded = cache.load(path, NAMESPACE, NAME)
    assert loaded is not None and loaded.kids == (snapshot.signing_kid,)
