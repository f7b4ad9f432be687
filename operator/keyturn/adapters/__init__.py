"""The only code that talks to the outside world: Kubernetes, Prometheus, health URLs."""
