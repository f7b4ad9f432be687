# syntax=docker/dockerfile:1
# Keyturn's operator image. With Docker: `docker build -t keyturn:dev .` (make kind-e2e builds and
# loads it). Without a container engine, `make image` (hack/image.py) builds this same file with
# buildah on two Debian bookworm bases made by mmdebstrap, passed as BUILDER_IMAGE and
# RUNTIME_IMAGE: docs/install.md.
# Both stages have Debian bookworm's Python 3.11 at /usr/bin/python3.11. The builder installs the
# package and its pinned dependencies into a venv that links that interpreter; the final stage is
# a distroless Python (no shell, no package manager) plus that venv: no compiler, no pip, no
# sources, a numeric non-root user, and nothing written at run time outside /tmp (the chart mounts
# it; the root filesystem is read-only).

# One Python image for both stages instead, as earlier versions took it (e.g.
# --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm): the venv then links that image's Python.
ARG PYTHON_IMAGE=
ARG BUILDER_IMAGE=debian:12.12-slim
# Distroless publishes no version tags: pin it by digest (@sha256:...) for a reproducible build.
ARG RUNTIME_IMAGE=gcr.io/distroless/python3-debian12:nonroot

FROM ${PYTHON_IMAGE:-${BUILDER_IMAGE}} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# Debian's Python with venv, the CA certificates and strip (binutils), from apt on debian:*-slim;
# make image's builder base has them already (and no apt).
RUN if ! command -v python3.11 >/dev/null || ! command -v strip >/dev/null; then \
      apt-get update \
   && DEBIAN_FRONTEND=noninteractive apt-get install --yes --no-install-recommends \
        python3-venv ca-certificates binutils \
   && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /src
# The venv lives at the path it keeps in the final stage (its scripts hard-code their interpreter)
# and links /usr/bin/python3.11, the same Debian Python in the runtime base.
RUN python3.11 -m venv /opt/keyturn
COPY requirements.lock pyproject.toml README.md ./
COPY operator ./operator
# -c: every dependency resolves to the version requirements.lock pins. pip byte-compiles what it
# installs, so the read-only image never needs to write .pyc files.
# The optional build secret `ca-bundle` is a CA bundle for pip, for builds behind a TLS-inspecting
# proxy (make image passes the host's); it is mounted for this step only, never stored in a layer.
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && /opt/keyturn/bin/pip install -c requirements.lock . \
 && /opt/keyturn/bin/pip uninstall --yes pip setuptools
# What the venv carries but nothing runs (docs/install.md has each step's saving):
# - kubernetes/aio, the client's asyncio twin (about 70 MB): Keyturn uses the synchronous client;
#   the packages' own test suites;
# - the extensions' symbol tables and debug sections (strip);
# - the sources of the Kubernetes client's generated API and model modules (about 900 files,
#   32 MB) and their docstrings (6 MB): their byte code stays, in place of the source
#   (`compileall -b`), as Python loads it without one; `-o 2` leaves the docstrings out (the
#   generated code has no asserts, and only pydantic's JSON schemas read docstrings). A traceback
#   through them has file names and line numbers but no source lines; the client's hand-written
#   modules (api_client, rest, configuration, ...) keep their sources.
# The import check proves the operator, the JWKS server (granian) and the ServiceAccount signer
# (grpcio) load without all that.
RUN cd /opt/keyturn/lib/python3.11/site-packages \
 && rm -rf kubernetes/aio ./*/tests \
 && find /opt/keyturn -name '*.so' -exec strip --strip-unneeded {} + \
 && /opt/keyturn/bin/python -m compileall -q -b -o 2 kubernetes/client/api kubernetes/client/models \
 && find kubernetes/client/api kubernetes/client/models -name '*.py' -delete \
 && rm -rf kubernetes/client/api/__pycache__ kubernetes/client/models/__pycache__ \
 && /opt/keyturn/bin/python -c "import keyturn.operator_main, keyturn.cli.connection, \
      keyturn.jwks_server.server, keyturn.sasigner.server" \
 && /opt/keyturn/bin/keyturn --version
# The final stage can run nothing, so what it needs beyond its base is made here: a passwd and
# group entry for the numeric user (getpass/pwd lookups fail for a uid without one) and the CA
# bundle (SSL_CERT_FILE below: the runtime base has no openssl package to point Python at it).
RUN mkdir -p /rootfs/etc/ssl/certs \
 && printf '%s\n' root:x:0:0:root:/root:/usr/sbin/nologin \
      keyturn:x:65532:65532:keyturn:/nonexistent:/usr/sbin/nologin > /rootfs/etc/passwd \
 && printf '%s\n' root:x:0: keyturn:x:65532: > /rootfs/etc/group \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/

FROM ${PYTHON_IMAGE:-${RUNTIME_IMAGE}}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/keyturn/keyturn
LABEL org.opencontainers.image.title="keyturn" \
      org.opencontainers.image.description="Kubernetes operator that rotates JWT signing keys declared as JwtKeySet resources" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /rootfs/ /
COPY --from=builder /opt/keyturn /opt/keyturn
ENV PATH=/opt/keyturn/bin:$PATH \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
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
