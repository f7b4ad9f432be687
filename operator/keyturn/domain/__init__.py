"""Pure decision logic: no kopf, no kubernetes, no prometheus_client, no clock, no I/O."""
