"""Key material: the only package that ever holds private keys or HMAC secrets.

Everything else passes `KeyMaterial` (or a stored PEM/secret string) around opaquely, so the rule
"no secret in status, events, logs or metrics" (DESIGN.md invariant 8) is kept here: the repr of
every object holding material and every exception message raised here are free of it.

The client library imports `algorithms`, `material`, `jwk`, `pem` (and `der` through it) and
`thumbprints`; those need only the standard library, `cryptography` and PyJWT, so the client can
ship on its own. `fresh_keys` and `secret_data` serve the operator and import `keyturn.domain`.
Nothing here imports kopf, kubernetes, prometheus_client or aiohttp, and this file re-exports
nothing, so importing one module never drags in the others.
"""
