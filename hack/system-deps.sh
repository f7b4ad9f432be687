#!/usr/bin/env bash
# Installs the Debian packages the suite needs when they are missing: prometheus (the analysis
# gate scrapes a real process; promtool runs the alert rules), lua5.4 (the Argo CD health check is
# run, not just read), openssl (a second implementation reads the encrypted PEMs), and nodejs with
# npm (the Node.js consumer example is installed and run, docs/consumers.md), and the image
# tools (`make image`, hack/image.py, with no container engine: mmdebstrap makes the Debian base,
# buildah builds the Dockerfile on it, umoci unpacks the result, bubblewrap runs it read-only as
# a non-root user; tests/integration/test_image.py). Tests that need one
# carry `@pytest.mark.debian("<package>")`, and tests/conftest.py refuses a marker naming a package
# this script does not install.
set -euo pipefail
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v lua5.4 >/dev/null || need+=(lua5.4)
command -v openssl >/dev/null || need+=(openssl)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v buildah >/dev/null || need+=(buildah)
command -v umoci >/dev/null || need+=(umoci)
command -v bwrap >/dev/null || need+=(bubblewrap)
[[ ${#need[@]} -eq 0 ]] && exit 0
echo "[system-deps] installing ${need[*]} from Debian's packages" >&2
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
