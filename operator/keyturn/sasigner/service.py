"""The gRPC service kube-apiserver calls: Sign, FetchKeys and Metadata over the latest Snapshot.

Every answer comes from memory (`Store`): the Snapshot the watch or the cache gave last, so the
service answers while the apiserver (or the Secret) is unreachable. Nothing here logs or returns
key material: Sign returns a signature, FetchKeys public keys, and errors name what is missing.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from keyturn.keys.detached import sign_input
from keyturn.keys.material import b64url
from keyturn.sasigner import rules
from keyturn.sasigner.errors import KeysetRefused
from keyturn.sasigner.pb import api_pb2, api_pb2_grpc
from keyturn.sasigner.snapshot import PublicKey, Snapshot

log = logging.getLogger("keyturn.sasigner")

# The payload segment kube-apiserver sends: base64url text. A ServiceAccount token's claims are
# well under 4 KiB; anything far larger or not base64url is not from the apiserver.
MAX_CLAIMS: Final = 64 * 1024
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Store:
    """The Snapshot being served and when the API server last confirmed it, shared between the
    watch thread (writes) and the gRPC workers (read); `ready` is set once there is one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._confirmed_at: datetime | None = None
        self.ready = threading.Event()

    def get(self) -> tuple[Snapshot | None, datetime | None]:
        with self._lock:
            return self._snapshot, self._confirmed_at

    def offer(self, snapshot: Snapshot) -> bool:
        """Serve `snapshot` from now on; True if it serves other keys than before."""
        with self._lock:
            changed = not snapshot.same_keys(self._snapshot)
            self._snapshot = snapshot
            self._confirmed_at = snapshot.fetched_at
        self.ready.set()
        return changed


class SignerService(api_pb2_grpc.ExternalJWTSignerServicer):
    """`v1.ExternalJWTSigner` for one keyset, plus the legacy keys it only verifies with."""

    def __init__(
        self,
        store: Store,
        legacy: Sequence[PublicKey] = (),
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._legacy = tuple(legacy)
        self._clock = clock

    def _snapshot(self, context: grpc.ServicerContext) -> tuple[Snapshot, datetime]:
        snapshot, confirmed_at = self._store.get()
        if snapshot is None or confirmed_at is None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the signer has not read its keyset yet")
        return snapshot, confirmed_at

    def Sign(self, request: api_pb2.SignJWTRequest, context: grpc.ServicerContext) -> api_pb2.SignJWTResponse:
        snapshot, _ = self._snapshot(context)
        claims = request.claims
        if not 0 < len(claims) <= MAX_CLAIMS or not _BASE64URL.fullmatch(claims):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"claims must be 1 to {MAX_CLAIMS} characters of unpadded base64url text",
            )
        header = rules.header(snapshot.algorithm, snapshot.signing_kid)
        signature = sign_input(snapshot.signing, f"{header}.{claims}".encode("ascii"))
        log.debug("signed a token", extra={"kid": snapshot.signing_kid, "keyset": snapshot.name})
        return api_pb2.SignJWTResponse(header=header, signature=b64url(signature))

    def FetchKeys(
        self, request: api_pb2.FetchKeysRequest, context: grpc.ServicerContext
    ) -> api_pb2.FetchKeysResponse:
        snapshot, confirmed_at = self._snapshot(context)
        stamp = Timestamp()
        stamp.FromDatetime(confirmed_at)
        keys = [
            api_pb2.Key(key_id=k.kid, key=k.der, exclude_from_oidc_discovery=k.exclude_from_oidc_discovery)
            for k in (*snapshot.verifying, *self._legacy)
        ]
        return api_pb2.FetchKeysResponse(
            keys=keys,
            data_timestamp=stamp,
            refresh_hint_seconds=rules.refresh_hint_seconds(snapshot.spec, snapshot.ring, self._clock()),
        )

    def Metadata(
        self, request: api_pb2.MetadataRequest, context: grpc.ServicerContext
    ) -> api_pb2.MetadataResponse:
        snapshot, _ = self._snapshot(context)
        try:
            seconds = rules.max_token_expiration_seconds(snapshot.spec)
        except KeysetRefused as exc:  # a served snapshot passed this check; kept total all the same
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return api_pb2.MetadataResponse(max_token_expiration_seconds=seconds)
