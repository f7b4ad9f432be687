"""The signer's named errors: each says what is wrong and where, never with key material in it.

The class name is the `reason` of the log line, so an alert or a person can tell them apart.
"""

from __future__ import annotations


class SignerError(Exception):
    """Something the signer cannot use; it keeps serving what it had (if anything) and says so."""

    @property
    def reason(self) -> str:
        return type(self).__name__


class KeysetRefused(SignerError):
    """The JwtKeySet cannot sign ServiceAccount tokens (its algorithm, tokens.maxLifetime, its spec)."""


class SecretUnusable(SignerError):
    """The keyset's Secret is missing, not Keyturn's, or damaged (record, material, a key that differs)."""


class CacheRejected(SignerError):
    """The cache file is not safe to trust (mode, owner, not a regular file) or not a valid cache."""


class LegacyKeyRefused(SignerError):
    """A --legacy-public-key file is not a public key kube-apiserver can verify with."""
