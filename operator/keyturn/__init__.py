"""Keyturn: rotates JWT signing keys declared as JwtKeySet custom resources."""

__version__ = "0.1.0"

GROUP = "keyturn.dev"
VERSION = "v1alpha1"
PLURAL = "jwtkeysets"
KIND = "JwtKeySet"
