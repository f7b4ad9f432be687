"""sasigner/service.py over a real gRPC server on a Unix socket: what kube-apiserver gets back.

Signatures are checked with jwcrypto against the key FetchKeys returns, never with Keyturn's code.
"""

from __future__ import annotations

import base64
import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.serialization import load_der_public_key
from jwcrypto import jwk, jws

from keyturn.domain.model import KeyState
from keyturn.sasigner import rules
from keyturn.sasigner.pb import api_pb2, api_pb2_grpc
from keyturn.sasigner.service import MAX_CLAIMS, SignerService, Store
from keyturn.sasigner.snapshot import PublicKey, Snapshot, from_secret, keyset_spec
from redaction import needles
from unit.sasigner.keysets import NAME, NAMESPACE, T0, Keyset, keyset

LEGACY = PublicKey("legacy-kid", b"\x30\x00", exclude_from_oidc_discovery=True)
NOW = T0 + timedelta(seconds=30)


def snapshot_of(ks: Keyset) -> Snapshot:
    document, spec = keyset_spec(NAMESPACE, NAME, {"spec": ks.spec_document})
    return from_secret(document, spec, ks.secret(), None, T0)


class Served:
    def __init__(self, store: Store, stub: api_pb2_grpc.ExternalJWTSignerStub) -> None:
        self.store, self.stub = store, stub

    def sign(self, claims: dict[str, Any]) -> str:
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        answer = self.stub.Sign(api_pb2.SignJWTRequest(claims=payload), timeout=5)
        return f"{answer.header}.{payload}.{answer.signature}"

    def keys(self) -> api_pb2.FetchKeysResponse:
        return self.stub.FetchKeys(api_pb2.FetchKeysRequest(), timeout=5)


@pytest.fixture
def served() -> Iterator[Served]:
    store = Store()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    api_pb2_grpc.add_ExternalJWTSignerServicer_to_server(
        SignerService(store, [LEGACY], clock=lambda: NOW), server
    )
    with tempfile.TemporaryDirectory(prefix="kt-") as folder:  # short: a socket path has at most 107 bytes
        socket = Path(folder) / "s.sock"
        server.add_insecure_port(f"unix:{socket}")
        server.start()
        try:
            with grpc.insecure_channel(f"unix:{socket}") as channel:
                yield Served(store, api_pb2_grpc.ExternalJWTSignerStub(channel))
        finally:
            server.stop(None).wait()


def status_code(error: grpc.RpcError) -> grpc.StatusCode:
    """A failed call's RpcError is also a grpc.Call, which the stubs do not say."""
    call: Any = error
    code: grpc.StatusCode = call.code()
    return code


def header_of(token: str) -> Any:
    segment = token.split(".", maxsplit=1)[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def verify(token: str, keys: api_pb2.FetchKeysResponse) -> dict[str, Any]:
    """jwcrypto checks the signature with the PKIX key FetchKeys lists under the header's kid."""
    header = header_of(token)
    (der,) = [k.key for k in keys.keys if k.key_id == header["kid"]]
    signed = jws.JWS()
    signed.deserialize(token)
    signed.verify(jwk.JWK.from_pyca(load_der_public_key(der)), alg=header["alg"])
    payload: dict[str, Any] = json.loads(signed.payload)
    return payload


@pytest.mark.parametrize("algorithm", rules.SUPPORTED_ALGORITHMS)
def test_sign_returns_the_header_and_a_signature_of_the_current_key(served: Served, algorithm: str) -> None:
    ks = keyset(algorithm=algorithm)
    served.store.offer(snapshot_of(ks))
    token = served.sign({"iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:a:b"})
    assert header_of(token) == {"alg": algorithm, "kid": ks.current.kid, "typ": "JWT"}
    assert verify(token, served.keys())["sub"] == "system:serviceaccount:a:b"


def test_fetch_keys_lists_the_keyset_and_the_legacy_keys(served: Served) -> None:
    ks = keyset()
    snapshot = snapshot_of(ks)
    served.store.offer(snapshot)
    answer = served.keys()
    assert [(k.key_id, k.exclude_from_oidc_discovery) for k in answer.keys] == [
        *((kid, False) for kid in snapshot.kids),
        ("legacy-kid", True),
    ]
    assert [k.key for k in answer.keys][: len(snapshot.kids)] == [k.der for k in snapshot.verifying]
    assert answer.data_timestamp.ToDatetime().replace(tzinfo=T0.tzinfo) == T0
    assert answer.refresh_hint_seconds == rules.refresh_hint_seconds(snapshot.spec, snapshot.ring, NOW)
    assert answer.refresh_hint_seconds > 0


def test_metadata_is_the_keysets_max_token_lifetime(served: Served) -> None:
    served.store.offer(snapshot_of(keyset()))
    assert served.stub.Metadata(api_pb2.MetadataRequest(), timeout=5).max_token_expiration_seconds == 86400


def with_states(ks: Keyset, states: dict[str, KeyState]) -> Keyset:
    """The keyset after the operator moved keys (the record changes; the material stays)."""
    keys = tuple(replace(k, state=states.get(k.kid, k.state), demoted_at=T0) for k in ks.ring.keys)
    return replace(ks, ring=ks.ring.evolve(keys=keys))


def test_a_new_snapshot_is_served_at_once(served: Served) -> None:
    """A rotation then a revocation, as the watch hands them over."""
    ks = keyset()
    served.store.offer(snapshot_of(ks))
    old_token = served.sign({"sub": "a"})
    previous, current, nxt = (k.kid for k in ks.ring.keys)
    rotated = with_states(ks, {current: KeyState.PREVIOUS, nxt: KeyState.CURRENT})
    assert served.store.offer(snapshot_of(rotated))
    assert header_of(served.sign({"sub": "b"}))["kid"] == nxt
    verify(old_token, served.keys())  # the demoted key still verifies
    revoked = with_states(rotated, {current: KeyState.REVOKED})
    assert served.store.offer(snapshot_of(revoked))
    kids = [k.key_id for k in served.keys().keys]
    assert current not in kids
    assert previous in kids
    assert not served.store.offer(snapshot_of(revoked))  # the same keys again: nothing changed


def test_nothing_is_answered_before_the_keyset_was_read(served: Served) -> None:
    calls: list[Callable[[], object]] = [
        lambda: served.stub.Sign(api_pb2.SignJWTRequest(claims="e30"), timeout=5),
        lambda: served.stub.FetchKeys(api_pb2.FetchKeysRequest(), timeout=5),
        lambda: served.stub.Metadata(api_pb2.MetadataRequest(), timeout=5),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as raised:
            call()
        assert status_code(raised.value) is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param("", id="empty"),
        pytest.param("e30=", id="padded"),
        pytest.param("e30.e30", id="two segments"),
        pytest.param("e30+/", id="base64, not base64url"),
        pytest.param("é", id="not ASCII"),
        pytest.param("A" * (MAX_CLAIMS + 1), id="too long"),
    ],
)
def test_claims_that_are_not_a_payload_segment_are_refused(served: Served, claims: str) -> None:
    served.store.offer(snapshot_of(keyset()))
    with pytest.raises(grpc.RpcError) as raised:
        served.stub.Sign(api_pb2.SignJWTRequest(claims=claims), timeout=5)
    assert status_code(raised.value) is grpc.StatusCode.INVALID_ARGUMENT


def test_signing_logs_the_kid_and_never_key_material(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    ks = keyset()
    served.store.offer(snapshot_of(ks))
    with caplog.at_level(logging.DEBUG, logger="keyturn.sasigner"):
        served.sign({"sub": "x"})
    assert any(getattr(r, "kid", None) == ks.current.kid for r in caplog.records)
    for needle in needles(ks.material(ks.current.kid)):
        assert needle not in caplog.text
