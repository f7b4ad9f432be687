"""The one error the harness raises for a control plane it could not start or use."""

from __future__ import annotations


class ClusterError(RuntimeError):
    """The control plane could not be started or used; the message carries the evidence."""
