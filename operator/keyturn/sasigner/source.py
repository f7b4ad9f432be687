"""The signer's reads from the API server, with its own credentials: the JwtKeySet, its Secret (and
the passphrase Secret if the keys are encrypted), and a watch on that Secret.

The only module of the signer that talks to Kubernetes. It needs get on the JwtKeySet and get,
list, watch on the Secret (docs/serviceaccount-signer.md has the Role). Errors are raised as they
are: the refresher (server.py) keeps serving what it has and tries again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from keyturn import GROUP, PLURAL, VERSION
from keyturn.sasigner.errors import KeysetRefused
from keyturn.sasigner.snapshot import Snapshot, from_secret, keyset_spec

REQUEST_TIMEOUT: Final = 10  # seconds for one GET: an apiserver that hangs must not hang the refresh
# The watch ends after this many seconds and the keyset is read again: a change of the JwtKeySet
# itself (that writes nothing to the Secret) is seen within a minute.
WATCH_SECONDS: Final = 60


class KeysetSource:
    """Reads one keyset's Snapshot and waits for its Secret to change."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        name: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.namespace, self.name = namespace, name
        self._api = api
        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)
        self._clock = clock
        self._watch: watch.Watch | None = None
        self.secret_name = name

    def _secret(self, name: str) -> dict[str, Any] | None:
        try:
            secret = self._core.read_namespaced_secret(name, self.namespace, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        document: dict[str, Any] = self._api.sanitize_for_serialization(secret)
        return document

    def _listed_secret(self, name: str) -> tuple[dict[str, Any] | None, str]:
        """The Secret and the list's resourceVersion, which a watch can start from even right after
        an apiserver restart (the object's own version may be older than its watch cache)."""
        listed = self._core.list_namespaced_secret(
            self.namespace, field_selector=f"metadata.name={name}", _request_timeout=REQUEST_TIMEOUT
        )
        items = [self._api.sanitize_for_serialization(item) for item in listed.items]
        version = str(listed.metadata.resource_version or "") if listed.metadata is not None else ""
        return (items[0] if items else None), version

    def fetch(self) -> tuple[Snapshot, str]:
        """The keyset's Snapshot now and the resourceVersion to watch from; a SignerError names what
        is wrong with what was read."""
        fetched_at = self._clock()
        try:
            keyset = self._custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                raise KeysetRefused(f"JwtKeySet {self.namespace}/{self.name} does not exist") from None
            raise
        document, spec = keyset_spec(self.namespace, self.name, keyset)
        self.secret_name = spec.secret.name
        secret, version = self._listed_secret(spec.secret.name)
        ref = spec.secret.passphrase
        passphrase = self._secret(ref.name) if ref is not None and secret is not None else None
        return from_secret(document, spec, secret, passphrase, fetched_at), version

    def wait_for_change(self, resource_version: str) -> None:
        """Returns when the Secret changed after `resource_version`, or after WATCH_SECONDS."""
        self._watch = watch.Watch()
        try:
            for _event in self._watch.stream(
                self._core.list_namespaced_secret,
                self.namespace,
                field_selector=f"metadata.name={self.secret_name}",
                resource_version=resource_version or None,
                timeout_seconds=WATCH_SECONDS,
                _request_timeout=WATCH_SECONDS + REQUEST_TIMEOUT,
            ):
                return  # any event (a change, a deletion): read everything again
        except ApiException as exc:
            if exc.status != 410:  # 410 Gone: the version is too old to watch from; read again
                raise
        finally:
            self._watch.stop()

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.stop()
