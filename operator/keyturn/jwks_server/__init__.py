"""`keyturn serve-jwks`: the JWKS ConfigMaps Keyturn writes, served over HTTP from memory.

- documents: a ConfigMap (hostile until parsed) into the bytes and headers served for it;
- responses: cache headers, ETag matching, gzip negotiation, the discovery document (pure);
- routing: which resource a request names, or why it is refused (pure);
- store: the documents by keyset and by issuer, swapped whole on every change;
- watch: the list+watch of the ConfigMaps that feeds the store (a thread per scope);
- metrics: request counters kept as plain integers on the hot path, exported at scrape time;
- app: the RSGI application granian runs; server: the process (granian) and its options.

It needs no planner and no access to JwtKeySets: the operator writes what it needs as annotations
on the ConfigMap (domain.annotations). It never imports kopf.
"""
