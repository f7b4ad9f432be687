"""The executor layer: one reconcile pass of a JwtKeySet (see reconcile.py for its steps)."""

from keyturn.executor.reconcile import MAX_SLEEP, Executor, Outcome, utcnow

__all__ = ["MAX_SLEEP", "Executor", "Outcome", "utcnow"]
