"""The image recipe, checked offline.

The Dockerfile is checked here for what a reviewer would check by reading it, so that a mistake
shows before any build. The image itself is built (`make image`: mmdebstrap and buildah) and run
as the chart's operator in tests/integration/test_image.py; what needs Helm (lint, rendering,
applying) lives in tests/integration/test_chart.py."""

from __future__ import annotations

import re
import shlex
import tomllib

import keyturn
import keyturn.metrics  # importing it registers the operator's metrics
from keyturn import cli
from unit.packaging.dockerfile import DOCKERFILE, ROOT, dockerfile_lines, exec_form, expand, parse_dockerfile


def test_the_image_is_multi_stage_with_pinned_bases() -> None:
    _, stages = parse_dockerfile()
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    for stage in stages:
        repo, _, tag = stage.base.partition(":")
        assert repo
        if "@sha256:" in stage.base:
            continue
        if repo.startswith("gcr.io/distroless/"):
            # Distroless has no version tags, only moving ones; the Dockerfile says to pin a digest.
            assert tag == "nonroot", f"{stage.base}: distroless's nonroot tag or a digest, never 'latest'"
            assert "pin it by digest" in DOCKERFILE.read_text()
            continue
        assert re.fullmatch(r"\d+\.\d+(\.\d+)?(-[a-z0-9.-]+)?", tag), (
            f"{stage.base}: pin the base image to a full version tag or a digest, never 'latest'"
        )


def test_the_venv_is_built_on_the_python_the_runtime_base_has() -> None:
    """The venv links its interpreter by path: both bases are Debian 12 (bookworm), whose Python
    3.11 is /usr/bin/python3.11 in both (make image's two mmdebstrap bases are bookworm too)."""
    _, stages = parse_dockerfile()
    builder, final = stages[0], stages[-1]
    assert builder.base.startswith("debian:12.") and "-debian12" in final.base
    assert "python3.11 -m venv /opt/keyturn" in " ".join(builder.all("RUN"))


def test_one_python_image_may_still_serve_both_stages() -> None:
    """PYTHON_IMAGE, as earlier versions took it, overrides both bases (the venv links that image's
    Python, the same in both stages); empty, the two bases apply."""
    args, _ = parse_dockerfile()
    assert args["PYTHON_IMAGE"] == ""
    froms = [line for keyword, line in dockerfile_lines() if keyword == "FROM"]
    one = {**args, "PYTHON_IMAGE": "python:3.11.14-slim-bookworm"}
    assert {expand(line.split()[0], one) for line in froms} == {"python:3.11.14-slim-bookworm"}


def test_the_builder_installs_with_the_lock_file() -> None:
    _, stages = parse_dockerfile()
    builder = stages[0]
    runs = " ".join(builder.all("RUN"))
    assert re.search(r"pip install (\S+ )*-c requirements\.lock", runs), runs
    copied = " ".join(builder.all("COPY"))
    assert "requirements.lock" in copied and "pyproject.toml" in copied


def test_the_runtime_stage_is_slim_non_root_and_read_only_friendly() -> None:
    _, stages = parse_dockerfile()
    final = stages[-1]
    assert "distroless" in final.base
    assert not final.all("RUN"), "the runtime base has no shell: the builder prepares what it needs"
    (user,) = final.all("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root USER (runAsNonRoot can only check numbers)"
    copies = final.all("COPY")
    assert copies and all(c.startswith("--from=") for c in copies), "only the builder's output, no sources"
    env = " ".join(final.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert not final.all("VOLUME"), "the chart mounts /tmp; a VOLUME would hide writes elsewhere"


def test_the_entrypoint_runs_the_operator() -> None:
    _, stages = parse_dockerfile()
    final = stages[-1]
    entrypoint = exec_form(final.all("ENTRYPOINT")[-1])
    cmd = exec_form(final.all("CMD")[-1]) if final.all("CMD") else []
    assert [*entrypoint, *cmd][:2] == ["keyturn", "run"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["keyturn"] == "keyturn.cli:main"
    cli.parser().parse_args([*entrypoint, *cmd][1:])  # the CLI accepts what the image runs


def test_the_image_has_oci_labels() -> None:
    global_args, stages = parse_dockerfile()
    final = stages[-1]
    labels = " ".join(final.all("LABEL"))
    for key in ("source", "version", "title", "licenses", "revision"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    version_args = [a for a in final.all("ARG") if a.startswith("VERSION=")]
    assert version_args == [f"VERSION={keyturn.__version__}"], "the default version is the package's"
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    licence = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert f'org.opencontainers.image.licenses="{licence}"' in labels
    assert global_args


def test_no_remote_add() -> None:
    for keyword, args in dockerfile_lines():
        if keyword == "ADD":
            assert not re.search(r"\b(https?|git)://|git@", args), f"ADD of a remote source: {args}"


def test_the_build_context_is_an_allow_list_covering_every_copy() -> None:
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*", "exclude everything, then allow what the build copies"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    _, stages = parse_dockerfile()
    for stage in stages:
        for copy in stage.all("COPY"):
            words = [w for w in shlex.split(copy) if not w.startswith("--")]
            if any(w.startswith("--from=") for w in shlex.split(copy)):
                continue
            for source in words[:-1]:
                assert source.rstrip("/") in allowed, f"COPY {source} is excluded by .dockerignore"
