# syntax=docker/dockerfile:1
# Keyturn's operator image. With Docker: `docker build -t keyturn:dev .` (make kind-e2e builds and
# loads it). Without a container engine, `make image` (hack/image.py) builds this same file with
# buildah on a Debian bookworm base made by mmdebstrap, passed as PYTHON_IMAGE: docs/install.md.
# The builder installs the package and its pinned dependencies into a venv; the final stage is the
# same Python base plus that venv: no compiler, no pip, no sources, a numeric non-root user, and
# nothing written at run time outside /tmp (the chart mounts it; the root filesystem is read-only).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The venv lives at the path it keeps in the final stage: its scripts hard-code their interpreter.
# `python3`: Debian's Python (make image's base) has no `python` command.
RUN python3 -m venv /opt/keyturn
COPY requirements.lock pyproject.toml README.md ./
COPY operator ./operator
# -c: every dependency resolves to the version requirements.lock pins. pip byte-compiles what it
# installs, so the read-only image never needs to write .pyc files.
# The optional build secret `ca-bundle` is a CA bundle for pip, for builds behind a TLS-inspecting
# proxy (make image passes the host's); it is mounted for this step only, never stored in a layer.
# kubernetes/aio is the client's asyncio twin (about 70 MB with its bytecode): Keyturn uses the
# synchronous client only, and the import check below proves the operator loads without it.
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && /opt/keyturn/bin/pip install -c requirements.lock . \
 && /opt/keyturn/bin/pip uninstall --yes pip setuptools \
 && rm -rf /opt/keyturn/lib/python3*/site-packages/kubernetes/aio \
 && /opt/keyturn/bin/python -c "import keyturn.operator_main, keyturn.cli.connection" \
 && /opt/keyturn/bin/keyturn --version

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/keyturn/keyturn
LABEL org.opencontainers.image.title="keyturn" \
      org.opencontainers.image.description="Kubernetes operator that rotates JWT signing keys declared as JwtKeySet resources" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# A passwd entry for the numeric user: getpass/pwd lookups fail for a uid without one. The base's
# own pip (python:*-slim's in /usr/local, the wheel Debian's venv module installs from) goes too:
# no pip anywhere in the image.
RUN groupadd --system --gid 65532 keyturn \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin keyturn \
 && rm -rf /usr/local/bin/pip* /usr/local/lib/python3*/site-packages/pip \
      /usr/local/lib/python3*/site-packages/pip-* /usr/share/python-wheels
COPY --from=builder /opt/keyturn /opt/keyturn
ENV PATH=/opt/keyturn/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp
USER 65532:65532
WORKDIR /tmp
# 8080: /metrics; 8081: kopf's /healthz.
EXPOSE 8080 8081
ENTRYPOINT ["keyturn"]
CMD ["run"]
