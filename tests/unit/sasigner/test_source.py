"""sasigner/source.py against a fake API: what it reads, where the watch starts, what a 404 means
(the real API server answers in tests/integration/test_sa_signer.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from keyturn.sasigner import source
from keyturn.sasigner.errors import KeysetRefused, SecretUnusable
from unit.sasigner.keysets import NAME, NAMESPACE, T0, Keyset, keyset


class FakeApi:
    """The objects of one namespace, answered the way the generated client does (plain JSON here)."""

    def __init__(
        self, ks: Keyset | None, secret: dict[str, Any] | None, passphrase: dict[str, Any] | None
    ) -> None:
        self.keyset = None if ks is None else {"spec": ks.spec_document}
        self.secrets = {
            name: obj for name, obj in (("service-accounts", secret), ("pass", passphrase)) if obj
        }
        self.calls: list[tuple[str, Any]] = []

    def sanitize_for_serialization(self, obj: object) -> object:
        return obj

    # CustomObjectsApi
    def get_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> object:
        self.calls.append(("get keyset", args))
        if self.keyset is None:
            raise ApiException(404, "Not Found")
        return self.keyset

    # CoreV1Api
    def read_namespaced_secret(self, name: str, namespace: str, **kwargs: Any) -> object:
        self.calls.append(("get secret", name))
        if name not in self.secrets:
            raise ApiException(404, "Not Found")
        return self.secrets[name]

    def list_namespaced_secret(self, namespace: str, field_selector: str, **kwargs: Any) -> object:
        self.calls.append(("list secrets", field_selector))
        name = field_selector.removeprefix("metadata.name=")
        items = [self.secrets[name]] if name in self.secrets else []
        return SimpleNamespace(items=items, metadata=SimpleNamespace(resource_version="777"))


def make_source(monkeypatch: pytest.MonkeyPatch, api: FakeApi) -> source.KeysetSource:
    monkeypatch.setattr(client, "CoreV1Api", lambda _api: api)
    monkeypatch.setattr(client, "CustomObjectsApi", lambda _api: api)
    return source.KeysetSource(cast(ApiClient, api), NAMESPACE, NAME, clock=lambda: T0)


def test_a_read_is_the_snapshot_and_the_lists_version(monkeypatch: pytest.MonkeyPatch) -> None:
    ks = keyset()
    api = FakeApi(ks, ks.secret(), None)
    snapshot, version = make_source(monkeypatch, api).fetch()
    assert snapshot.signing_kid == ks.current.kid
    assert snapshot.fetched_at == T0
    assert version == "777"  # the list's, not the object's "42": a watch can start there after a restart
    assert ("list secrets", "metadata.name=service-accounts") in api.calls


def test_encrypted_keys_read_the_passphrase_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    ks = keyset(encrypted=True)
    api = FakeApi(ks, ks.secret(), ks.passphrase_secret())
    snapshot, _ = make_source(monkeypatch, api).fetch()
    assert snapshot.signing_kid == ks.current.kid
    assert ("get secret", "pass") in api.calls


def test_a_missing_keyset_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KeysetRefused, match=f"JwtKeySet {NAMESPACE}/{NAME} does not exist"):
        make_source(monkeypatch, FakeApi(None, None, None)).fetch()


def test_a_missing_secret_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SecretUnusable, match="does not exist yet"):
        make_source(monkeypatch, FakeApi(keyset(), None, None)).fetch()


def test_other_api_errors_are_raised_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeApi(keyset(), None, None)

    def forbidden(*_args: Any, **_kwargs: Any) -> object:
        raise ApiException(403, "Forbidden")

    monkeypatch.setattr(api, "list_namespaced_secret", forbidden)
    with pytest.raises(ApiException) as raised:
        make_source(monkeypatch, api).fetch()
    assert raised.value.status == 403
