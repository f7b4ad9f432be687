"""`keyturn sa-signer`: kube-apiserver's external JWT signer, serving one JwtKeySet's keys.

kube-apiserver (`--service-account-signing-endpoint`) asks it over a Unix socket to sign every
ServiceAccount token and for the keys that verify them (gRPC `v1.ExternalJWTSigner`: Sign,
FetchKeys, Metadata; the stubs are in pb/). The keys are the keyset's, as the operator keeps them
in its Secret; the signer never changes them, so the keyset's lifecycle (publish ahead, grace,
revocation, rollback, audit) applies to the cluster's own tokens.

`rules.py` decides (pure); `snapshot.py` reads the keyset and its Secret into what is served
(hostile input: total, named errors); `cache.py` keeps it on the node (the apiserver needs the
signer before it can serve the Secret); `legacy.py` reads the old public keys from files;
`source.py` watches the Secret; `service.py` answers the apiserver; `server.py` wires it all.
See docs/serviceaccount-signer.md.
"""
