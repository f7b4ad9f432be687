"""Addresses of the local control plane: everything listens on loopback, on ports the kernel picks."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Sequence

LOOPBACK = "127.0.0.1"
# Kept away from KWOK's pod CIDR so a Pod IP can never be mistaken for a Service IP.
SERVICE_CIDR = "10.96.0.0/12"
POD_CIDR = "10.244.0.0/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"


def free_ports(names: Sequence[str]) -> dict[str, int]:
    """A port per name, all held open together while being chosen so none is handed out twice."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in names]
        for s in socks:
            s.bind((LOOPBACK, 0))
        return {name: int(s.getsockname()[1]) for name, s in zip(names, socks, strict=True)}
