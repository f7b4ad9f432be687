# Keyturn developer entry points. `make test` is what CI runs (.ci/run); `make demo` is the quick start.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv binaries system-deps lint typecheck unit test demo clean kind-e2e client-wheel image externaljwt-stubs

help:
	@echo "make demo   - local control plane + operator + examples/quickstart.yaml (1m interval) + the"
	@echo "              example app signing and verifying under load, one line per rotation (Ctrl-C to stop)"
	@echo "make test   - lint (ruff, import contracts), types (mypy --strict) and the whole test suite;"
	@echo "              installs the Debian packages some tests need (make system-deps) and skips none"
	@echo "make lint   - ruff check, ruff format --check and the import contracts (lint-imports)"
	@echo "make unit   - unit tests only (no control plane); tests whose Debian package is missing are skipped"
	@echo "make client-wheel - the keyturn-client wheel (the application library alone) into dist/"
	@echo "make image  - the operator image as an OCI archive in dist/, with no Docker (mmdebstrap + buildah)"
	@echo "make kind-e2e - on a machine with Docker and kind: the image in a kind cluster, then the suite"
	@echo "make externaljwt-stubs - regenerate keyturn/sasigner/pb from the pinned k8s.io/externaljwt proto"

# The venv is rebuilt when the dependency pins change.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test,dev]'
	touch $@

venv: $(STAMP)

# Control plane, KWOK and Helm from the Go module proxy, cached outside the checkout (~/.cache/keyturn).
binaries:
	@bash hack/build-binaries.sh >/dev/null

# Debian packages some tests run (Prometheus for the analysis gate, Lua for the Argo CD check, OpenSSL).
# Such tests carry `@pytest.mark.debian(...)`: skipped without the package, a failure under
# KEYTURN_REQUIRE_SYSTEM_DEPS=1, which `make test` sets after installing them.
system-deps:
	@bash hack/system-deps.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache --no-logo

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit -q

test: venv binaries system-deps lint typecheck
	KEYTURN_REQUIRE_SYSTEM_DEPS=1 $(BIN)/pytest

demo: venv binaries
	$(BIN)/python hack/demo.py

# The application library as its own distribution (cryptography, PyJWT, prometheus-client only),
# staged from operator/keyturn at build time: docs/consumers.md#python.
client-wheel: venv
	$(BIN)/python hack/client_wheel.py dist

# The operator image without a container engine or registry: two Debian bases made by mmdebstrap
# (a builder, and a runtime with Python and nothing else; cached in ~/.cache/keyturn/image), the
# Dockerfile built on them by buildah, an OCI archive and its digest and sizes in dist/
# (docs/install.md#the-image). Reused when nothing it is built from changed.
image: system-deps
	@$(PYTHON) hack/image.py

# kube-apiserver's external JWT signer API for `keyturn sa-signer`: the proto of the k8s.io/externaljwt
# version hack/gobuild/kubernetes/go.mod pins, compiled with grpcio-tools and mypy-protobuf; the
# output is committed (tests/unit/sasigner/test_stubs.py fails when it drifts).
externaljwt-stubs: venv
	$(BIN)/python hack/externaljwt_stubs.py

clean:
	rm -rf $(VENV) .keyturn .mypy_cache .ruff_cache .pytest_cache dist

# End to end on kind, for machines with Docker and kind (not the CI machine: it has no container
# engine). Builds the image, loads it into a fresh kind cluster, installs the chart from it
# watching only keyturn-e2e, proves the installed operator serves a JwtKeySet, then runs the
# integration suite against the same cluster (its tests install the chart with this image too).
KIND ?= kind
KIND_CLUSTER ?= keyturn-e2e
KIND_IMAGE ?= keyturn:e2e
KIND_KUBECONFIG ?= $(CURDIR)/.keyturn/kind-$(KIND_CLUSTER).kubeconfig

kind-e2e: venv binaries system-deps
	@command -v $(KIND) >/dev/null || { echo "kind-e2e needs kind (https://kind.sigs.k8s.io)" >&2; exit 1; }
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || { echo "kind-e2e needs a running Docker engine" >&2; exit 1; }
	mkdir -p $(dir $(KIND_KUBECONFIG))
	$(KIND) delete cluster --name $(KIND_CLUSTER) >/dev/null 2>&1 || true
	$(KIND) create cluster --name $(KIND_CLUSTER) --kubeconfig $(KIND_KUBECONFIG) --wait 180s
	docker build --build-arg REVISION=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown) -t $(KIND_IMAGE) .
	$(KIND) load docker-image $(KIND_IMAGE) --name $(KIND_CLUSTER)
	set -euo pipefail; bin=$$(bash hack/build-binaries.sh); export PATH=$$bin:$$PATH KUBECONFIG=$(KIND_KUBECONFIG); \
	kubectl create namespace keyturn-e2e; \
	helm install keyturn-e2e charts/keyturn --namespace keyturn-e2e-system --create-namespace --wait --timeout 5m \
	  --set image.repository=$(firstword $(subst :, ,$(KIND_IMAGE))) --set image.tag=$(lastword $(subst :, ,$(KIND_IMAGE))) \
	  --set 'watchNamespaces={keyturn-e2e}'; \
	sed 's/namespace: default/namespace: keyturn-e2e/' examples/quickstart.yaml | kubectl apply -f -; \
	kubectl wait --namespace keyturn-e2e --for=condition=Ready jwtkeyset/quickstart --timeout=180s; \
	kubectl get --namespace keyturn-e2e jwtkeyset,secret,configmap; \
	kubectl delete --namespace keyturn-e2e jwtkeyset/quickstart --wait --timeout=120s
	KEYTURN_REQUIRE_SYSTEM_DEPS=1 KEYTURN_KUBECONFIG=$(KIND_KUBECONFIG) KEYTURN_BIN_DIR=$$(bash hack/build-binaries.sh) KEYTURN_TEST_IMAGE=$(KIND_IMAGE) \
	  $(BIN)/pytest -m integration tests/integration $(wildcard tests/e2e)
	$(KIND) delete cluster --name $(KIND_CLUSTER)
