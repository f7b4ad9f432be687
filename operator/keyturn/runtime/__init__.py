"""The operator's runtime: which keyset runs when (scheduler), who acts (leader), and the engine
that ties them to the watch (fed by handlers.py) and to the executor."""
