"""`make image`: the operator's OCI image, built here with no container engine and no registry.

The Dockerfile's default bases (debian:12.x-slim, distroless's python3-debian12) need a registry.
Instead:

1. mmdebstrap makes two Debian bookworm root filesystems from the Debian mirror this machine's apt
   uses: the builder base (the essential set, with Debian's Python 3.11, venv, CA certificates and
   binutils) and the runtime base (Python 3.11 and the libraries it links, extracted, not
   installed: no shell, dpkg or apt). The tarballs are cached in ~/.cache/keyturn/image, keyed
   together by what goes into either (suite, packages, sources, options): both are made again
   when one changes.
2. They are imported into buildah's own storage there (vfs driver: no overlay mounts) as
   `localhost/keyturn-base:<key>-builder` and `-runtime`, and passed to the Dockerfile as
   BUILDER_IMAGE and RUNTIME_IMAGE.
3. `buildah bud` builds the repository's Dockerfile on them (chroot isolation: no daemon, no
   cgroups), pip inside the build fetching the pinned dependencies from PyPI.
4. The image is written to dist/ as an OCI archive, with a JSON record beside it: its digest, its
   layers' sizes, and the inputs it was built from. An archive built from the same inputs (the
   bases, the Dockerfile, the files it copies, the build arguments, this script) is reused.

Needs mmdebstrap, buildah and umoci (`make system-deps`); runs as root, like CI.
`unpack()` gives the image's root filesystem and configuration (tests/integration/test_image.py).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
DIST: Final = ROOT / "dist"
SUITE: Final = "bookworm"
# The builder stage's base: Debian's Python with venv (and the pip wheel venv installs from), CA
# certificates (for pip, and the bundle the final stage gets) and binutils (strip). The essential
# variant: a shell and coreutils for the Dockerfile's RUN steps, and no apt.
BUILDER_PACKAGES: Final = ("python3", "python3-venv", "ca-certificates", "binutils")
# The final stage's base: Debian's Python 3.11 and the libraries it links, the package set of
# distroless's python3-debian12. Extracted rather than installed (no maintainer script runs), so no
# dpkg, apt, shell, Perl or coreutils come with it; it can RUN nothing.
# libstdc++6: the C++ and Rust extensions (grpcio, cryptography, granian, pydantic-core) link it.
# install-info: readline-common needs `dpkg | install-info`; the small one keeps dpkg out.
# base-files: /etc/os-release (how scanners tell the distribution), /run, /proc, common licences.
RUNTIME_PACKAGES: Final = (
    "python3.11-minimal",
    "libpython3.11-stdlib",
    "libstdc++6",
    "install-info",
    "base-files",
)
# As Debian's own slim images: no manuals, documentation or translations (licences stay).
NO_DOCS: Final = (
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
)
BUILDER_OPTIONS: Final = (
    "--variant=essential",
    # merged /usr set up directly, rather than by the usrmerge package (which pulls in all of Perl)
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    *NO_DOCS,
)
RUNTIME_OPTIONS: Final = (
    "--variant=extract",
    # merged /usr: its directory symlinks alone (the hook directory above also installs a
    # placeholder package with dpkg, which only the essential variant replaces)
    '--setup-hook=for d in bin sbin lib lib64; do mkdir -p "$1/usr/$d"; ln -s "usr/$d" "$1/$d"; done',
    *NO_DOCS,
    # Unused at run time: glibc's iconv modules (9 MB; Python has its own codecs), pydoc's topics
    # and the regression tests' support package.
    "--dpkgopt=path-exclude=/usr/lib/*/gconv/*",
    "--dpkgopt=path-exclude=/usr/lib/python3.11/pydoc_data*",
    "--dpkgopt=path-exclude=/usr/lib/python3.11/test",
    "--dpkgopt=path-exclude=/usr/lib/python3.11/test/*",
    # Of what the maintainer scripts would have done, what matters here: base-files' /var/run and
    # /var/lock as links into /run (where a kubelet mounts /var/run/secrets/...), and dpkg's status
    # database listing the packages, which vulnerability scanners read. The standard library stays
    # uncompiled, as in distroless (11 MB less; Python compiles what it imports at each start, about
    # 0.25 s of CPU, since it cannot cache it on the read-only root).
    '--extract-hook=rmdir "$1/var/run" "$1/var/lock"'
    ' && ln -s /run "$1/var/run" && ln -s /run/lock "$1/var/lock"',
    '--extract-hook=for deb in "$1"/var/cache/apt/archives/*.deb; do dpkg-deb --field "$deb"'
    ' | sed "/^Package:/a Status: install ok installed"; echo; done > "$1/var/lib/dpkg/status"',
)
BASE_ENV: Final = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
)
APT_SOURCES: Final = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
# pip inside the build trusts what the host trusts (a TLS-inspecting proxy's CA, say): the first
# of these that is a file is passed as the build secret `ca-bundle` (the Dockerfile says how).
CA_BUNDLE_ENV: Final = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
CA_BUNDLE_FILES: Final = (
    Path("/etc/ssl/certs/ca-certificates.crt"),
    Path("/etc/pki/tls/certs/ca-bundle.crt"),
)
TOOLS: Final = {"mmdebstrap": "mmdebstrap", "buildah": "buildah", "umoci": "umoci"}  # command: package

Log = Callable[[str], None]


class ImageError(Exception):
    """The image could not be built or unpacked; the message says which step and why."""


def cache_dir() -> Path:
    """Where the binaries are cached too (hack/build-binaries.sh), in its own folder."""
    base = os.environ.get("KEYTURN_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "keyturn"
    )
    return Path(base) / "image"


def missing_tools() -> list[str]:
    """`command (Debian package)` for every tool that is not on PATH."""
    return [f"{cmd} (Debian package {pkg})" for cmd, pkg in TOOLS.items() if shutil.which(cmd) is None]


# ------------------------------------------------------------------------------------ the base


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    fields: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            continue
        if not line.strip():
            if fields:
                yield fields
            fields = {}
        elif line[0].isspace() and fields:
            continue  # a continuation line (e.g. an inline Signed-By key): nothing used here
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()


def debian_sources(files: Mapping[str, str], suite: str = SUITE) -> list[str]:
    """One-line apt sources for `suite` and its -updates and -security suites, main only, taken
    from apt's configuration (file name to text; `.sources` files are deb822, others one-line).

    Only plain `deb` entries of those suites count; options (`[signed-by=...]`) are dropped: mmdebstrap
    checks signatures with the host's Debian keyring. Empty when apt uses no such mirror (e.g. on a
    machine that is not Debian bookworm): mmdebstrap's own default mirrors apply then.
    """
    wanted = (suite, f"{suite}-updates", f"{suite}-security")
    out: list[str] = []
    for name, text in sorted(files.items()):
        if name.endswith(".sources"):
            for stanza in _deb822_stanzas(text):
                if "deb" not in stanza.get("types", "").split() or stanza.get("enabled", "yes") == "no":
                    continue
                if "main" not in stanza.get("components", "").split():
                    continue
                for uri in stanza.get("uris", "").split():
                    out += [f"deb {uri} {s} main" for s in stanza.get("suites", "").split() if s in wanted]
        elif name.endswith(".list"):
            for raw in text.splitlines():
                words = re.sub(r"\[[^]]*\]", " ", raw.split("#", 1)[0]).split()
                if len(words) >= 4 and words[0] == "deb" and words[2] in wanted and "main" in words[3:]:
                    out.append(f"deb {words[1]} {words[2]} main")
    return list(dict.fromkeys(out))


def host_apt_files() -> dict[str, str]:
    files: dict[str, str] = {}
    for path in APT_SOURCES:
        for file in sorted(path.iterdir()) if path.is_dir() else [path]:
            if file.is_file():
                files[file.name] = file.read_text(errors="replace")
    return files


@dataclass(frozen=True)
class BaseRecipe:
    """Everything that goes into one base: mmdebstrap's command line and the image's environment."""

    suite: str
    packages: tuple[str, ...]
    sources: tuple[str, ...]
    options: tuple[str, ...]
    env: tuple[str, ...] = BASE_ENV

    @property
    def key(self) -> str:
        return _digest(json.dumps(self.__dict__, sort_keys=True).encode())[:16]

    def argv(self, target: Path) -> list[str]:
        return [
            "mmdebstrap",
            *self.options,
            f"--include={','.join(self.packages)}",
            "--format=tar",
            self.suite,
            str(target),
            *self.sources,
        ]


@dataclass(frozen=True)
class Bases:
    """The builder stage's base and the final stage's. One key names both: they are made together,
    from one state of the mirror, since the venv built on the one runs on the other's Python."""

    builder: BaseRecipe
    runtime: BaseRecipe

    @property
    def key(self) -> str:
        return _digest(f"{self.builder.key} {self.runtime.key}".encode())[:16]

    def roles(self) -> dict[str, BaseRecipe]:
        """Role (the Dockerfile's build argument is `<ROLE>_IMAGE`) to recipe."""
        return {"builder": self.builder, "runtime": self.runtime}


def base_recipes() -> Bases:
    mirror = os.environ.get("KEYTURN_DEBIAN_SOURCES")  # apt one-line sources, separated by `;`
    sources = [s.strip() for s in mirror.split(";") if s.strip()] if mirror else None
    found = tuple(sources or debian_sources(host_apt_files()))
    return Bases(
        BaseRecipe(SUITE, BUILDER_PACKAGES, found, BUILDER_OPTIONS),
        BaseRecipe(SUITE, RUNTIME_PACKAGES, found, RUNTIME_OPTIONS),
    )


# ------------------------------------------------------------------------------------ the inputs


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def context_files(root: Path = ROOT) -> list[Path]:
    """The files .dockerignore lets into the build context: its `!` entries, without bytecode and
    egg-info (the file's other lines say so too)."""
    allowed = [
        line.strip()[1:].rstrip("/")
        for line in (root / ".dockerignore").read_text().splitlines()
        if line.strip().startswith("!")
    ]
    out: list[Path] = []
    for entry in allowed:
        path = root / entry
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            parts = file.relative_to(root).parts
            if not file.is_file() or file.suffix == ".pyc":
                continue
            if any(p == "__pycache__" or p.endswith(".egg-info") for p in parts):
                continue
            out.append(file)
    return out


def inputs_key(base: Bases, build_args: Mapping[str, str], root: Path = ROOT) -> str:
    """What the image is built from: the base, this script, the Dockerfile, the build context and
    the build arguments. The same key means the same image, so an archive with it is reused."""
    h = hashlib.sha256()
    h.update(base.key.encode())
    h.update(json.dumps(dict(sorted(build_args.items()))).encode())
    for file in [Path(__file__).resolve(), root / "Dockerfile", root / ".dockerignore", *context_files(root)]:
        h.update(str(file.relative_to(root) if file.is_relative_to(root) else file.name).encode() + b"\0")
        h.update(_digest(file.read_bytes()).encode())
    return h.hexdigest()[:16]


def version(root: Path = ROOT) -> str:
    return str(tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"])


def revision(root: Path = ROOT) -> str:
    """The commit, `-dirty` when a file the image is built from differs from it."""
    try:
        head = _run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"]).strip()
        paths = ["Dockerfile", ".dockerignore", *(str(f.relative_to(root)) for f in context_files(root))]
        dirty = _run(["git", "-C", str(root), "status", "--porcelain", "--", *paths]).strip()
    except (OSError, ImageError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def ca_bundle() -> Path | None:
    for var in CA_BUNDLE_ENV:
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    return next((f for f in CA_BUNDLE_FILES if f.is_file()), None)


# ------------------------------------------------------------------------------------ running


def _run(argv: Sequence[str], log_file: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """Runs a command; its output goes to `log_file` when given. A failure names the command and
    ends with the last lines it printed."""
    environ = {**os.environ, **(env or {})}
    if log_file is None:
        result = subprocess.run(list(argv), capture_output=True, text=True, env=environ, check=False)
        if result.returncode != 0:
            raise ImageError(f"{' '.join(argv[:3])} ... exited {result.returncode}:\n{result.stderr[-3000:]}")
        return result.stdout
    with log_file.open("a") as handle:
        handle.write(f"\n$ {' '.join(argv)}\n")
        handle.flush()
        code = subprocess.run(list(argv), stdout=handle, stderr=subprocess.STDOUT, env=environ, check=False)
    if code.returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-40:])
        raise ImageError(f"{' '.join(argv[:3])} ... exited {code.returncode} (log: {log_file}):\n{tail}")
    return ""


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One build at a time per cache (two test sessions may start at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Buildah:
    """buildah on its own storage in the cache: vfs (no overlay mounts), chroot isolation."""

    def __init__(self, storage: Path, run_root: Path, log_file: Path) -> None:
        self.flags = ["--root", str(storage), "--runroot", str(run_root), "--storage-driver", "vfs"]
        self.log_file = log_file

    def __call__(self, *args: str, quiet: bool = False) -> str:
        argv = ["buildah", *self.flags, *args]
        return _run(argv, env={"BUILDAH_ISOLATION": "chroot"}) if quiet else self._logged(argv)

    def _logged(self, argv: list[str]) -> str:
        _run(argv, self.log_file, env={"BUILDAH_ISOLATION": "chroot"})
        return ""

    def has_image(self, name: str) -> bool:
        try:
            self("inspect", "--type", "image", name, quiet=True)
        except ImageError:
            return False
        return True

    def image_names(self) -> list[str]:
        out = self("images", "--format", "{{.Name}}:{{.Tag}}", quiet=True)
        return [line.strip() for line in out.splitlines() if line.strip()]


# ------------------------------------------------------------------------------------ the record


@dataclass(frozen=True)
class Record:
    """What `make image` made: dist/keyturn-<version>.oci.json."""

    archive: Path
    reference: str  # the image's name inside the archive (oci-archive:<archive>:<reference>)
    digest: str  # of the manifest
    archive_bytes: int
    layers: list[dict[str, Any]]  # digest, compressedBytes, uncompressedBytes
    inputs: str
    base: str
    version: str
    revision: str
    build_seconds: float
    cached: bool = False

    @property
    def uncompressed_bytes(self) -> int:
        return sum(int(layer["uncompressedBytes"]) for layer in self.layers)

    @property
    def compressed_bytes(self) -> int:
        return sum(int(layer["compressedBytes"]) for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        return {
            "archive": self.archive.name,
            "reference": self.reference,
            "digest": self.digest,
            "archiveBytes": self.archive_bytes,
            "compressedBytes": self.compressed_bytes,
            "uncompressedBytes": self.uncompressed_bytes,
            "layers": self.layers,
            "inputs": self.inputs,
            "base": self.base,
            "version": self.version,
            "revision": self.revision,
            "buildSeconds": round(self.build_seconds, 1),
        }

    @classmethod
    def load(cls, path: Path) -> Record | None:
        """The record at `path` if its archive is there, whole; None otherwise."""
        try:
            doc = json.loads(path.read_text())
            archive = path.parent / str(doc["archive"])
            if not archive.is_file() or archive.stat().st_size != int(doc["archiveBytes"]):
                return None
            return cls(
                archive=archive,
                reference=str(doc["reference"]),
                digest=str(doc["digest"]),
                archive_bytes=int(doc["archiveBytes"]),
                layers=list(doc["layers"]),
                inputs=str(doc["inputs"]),
                base=str(doc["base"]),
                version=str(doc["version"]),
                revision=str(doc["revision"]),
                build_seconds=float(doc["buildSeconds"]),
                cached=True,
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def summary(self) -> str:
        mb = 1_000_000
        return "\n".join(
            [
                f"image   {self.archive}  ({self.reference}, revision {self.revision})",
                f"digest  {self.digest}",
                f"size    {self.archive_bytes / mb:.1f} MB archive, {len(self.layers)} layers: "
                f"{self.compressed_bytes / mb:.1f} MB compressed, {self.uncompressed_bytes / mb:.1f} MB "
                "uncompressed",
                f"built   {'reused (same inputs)' if self.cached else f'in {self.build_seconds:.0f} s'}"
                f"; record {self.archive.with_suffix('.json')}",
            ]
        )


def _oci_layout(directory: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(manifest, config, manifest digest) of the one image in an OCI layout."""
    index = json.loads((directory / "index.json").read_text())
    (descriptor,) = index["manifests"]
    digest = str(descriptor["digest"])

    def blob(d: str) -> dict[str, Any]:
        algorithm, _, hexdigest = d.partition(":")
        doc: dict[str, Any] = json.loads((directory / "blobs" / algorithm / hexdigest).read_text())
        return doc

    manifest = blob(digest)
    return manifest, blob(manifest["config"]["digest"]), digest


def _layer_sizes(directory: Path, manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for layer in manifest["layers"]:
        algorithm, _, hexdigest = str(layer["digest"]).partition(":")
        path = directory / "blobs" / algorithm / hexdigest
        size = 0
        opener = gzip.open if "gzip" in str(layer["mediaType"]) else open
        with opener(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
        out.append(
            {"digest": layer["digest"], "compressedBytes": int(layer["size"]), "uncompressedBytes": size}
        )
    return out


# ------------------------------------------------------------------------------------ building


def build(dist: Path = DIST, *, force: bool = False, log: Log = print) -> Record:
    """The image for the current checkout: reused from `dist` when built from the same inputs."""
    missing = missing_tools()
    if missing:
        raise ImageError(f"missing {', '.join(missing)}: run `make system-deps`")
    cache = cache_dir()
    base = base_recipes()
    build_args = {"VERSION": version(), "REVISION": revision()}
    key = inputs_key(base, build_args)
    archive = dist / f"keyturn-{build_args['VERSION']}.oci.tar"
    record_path = archive.with_suffix(".json")
    with _locked(cache / ".lock"):
        previous = Record.load(record_path)
        if previous is not None and previous.inputs == key and not force:
            return previous
        started = time.monotonic()
        cache.mkdir(parents=True, exist_ok=True)
        log_file = cache / "build.log"
        log_file.write_text(f"keyturn image build {key}\n")
        with tempfile.TemporaryDirectory(prefix="keyturn-buildah-") as run_root:
            buildah = Buildah(cache / "storage", Path(run_root), log_file)
            buildah("rm", "--all")  # working containers an interrupted build left
            base_images = _base_images(buildah, cache, base, log_file, log)
            tag = f"localhost/keyturn:build-{key}"
            secret = ca_bundle()
            phase = time.monotonic()
            log("image: buildah bud (vfs, chroot isolation): Dockerfile on the bases; pip fetches from PyPI")
            try:
                buildah(
                    "bud",
                    "--isolation=chroot",
                    "--pull=never",
                    "--format=oci",
                    *(f"--build-arg={role.upper()}_IMAGE={name}" for role, name in base_images.items()),
                    *(f"--build-arg={k}={v}" for k, v in build_args.items()),
                    *([f"--secret=id=ca-bundle,src={secret}"] if secret else []),
                    "--file",
                    str(ROOT / "Dockerfile"),
                    "--tag",
                    tag,
                    str(ROOT),
                )
                log(f"image: built in {time.monotonic() - phase:.0f} s; writing the OCI archive")
                record = _export(buildah, tag, archive, key, base, build_args, started)
            finally:
                with contextlib.suppress(ImageError):
                    buildah("rm", "--all")
                with contextlib.suppress(ImageError):
                    buildah("rmi", "--force", tag)
                with contextlib.suppress(ImageError):
                    buildah("rmi", "--prune")  # the builder stage's leftovers
        record_path.write_text(json.dumps(record.to_json(), indent=2) + "\n")
        return record


def _base_images(buildah: Buildah, cache: Path, bases: Bases, log_file: Path, log: Log) -> dict[str, str]:
    """Role to the name of its base in buildah's storage, made and imported unless already there.
    Both are made again when either is missing, so that they come from one state of the mirror."""
    names = {role: f"localhost/keyturn-base:{bases.key}-{role}" for role in bases.roles()}
    if all(buildah.has_image(name) for name in names.values()):
        log(f"image: bases {', '.join(names.values())} (cached)")
        return names
    tarballs = {role: cache / f"base-{bases.key}-{role}.tar" for role in bases.roles()}
    if not all(tarball.is_file() for tarball in tarballs.values()):
        for name in names.values():
            if buildah.has_image(name):
                buildah("rmi", name)
        for role, recipe in bases.roles().items():
            where = ", ".join(recipe.sources) if recipe.sources else "mmdebstrap's default mirrors"
            log(f"image: mmdebstrap {recipe.suite} {role} base: {' '.join(recipe.packages)} from {where}")
            phase = time.monotonic()
            partial = tarballs[role].with_suffix(".partial")
            _run(recipe.argv(partial), log_file)
            partial.rename(tarballs[role])
            log(f"image: {role} base made in {time.monotonic() - phase:.0f} s: {tarballs[role]}")
    for role, recipe in bases.roles().items():
        if buildah.has_image(names[role]):
            continue
        container = buildah("from", "scratch", quiet=True).strip()
        buildah("add", container, str(tarballs[role]), "/")  # a local tarball is extracted, owners kept
        buildah("config", *(f"--env={e}" for e in recipe.env), '--cmd=["python3.11"]', container)
        buildah("commit", "--rm", "--format=oci", container, names[role])
        log(f"image: {role} base imported as {names[role]}")
    for other in buildah.image_names():  # earlier bases, and their tarballs
        if other.startswith("localhost/keyturn-base:") and other not in names.values():
            with contextlib.suppress(ImageError):
                buildah("rmi", other)
    for old in cache.glob("base-*.tar"):
        if old not in tarballs.values():
            old.unlink()
    return names


def _export(
    buildah: Buildah,
    tag: str,
    archive: Path,
    key: str,
    base: Bases,
    build_args: Mapping[str, str],
    started: float,
) -> Record:
    archive.parent.mkdir(parents=True, exist_ok=True)
    reference = f"keyturn:{build_args['VERSION']}"
    partial = archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    buildah("push", "--format=oci", tag, f"oci-archive:{partial}:{reference}")
    with tempfile.TemporaryDirectory(prefix="keyturn-oci-") as tmp:
        layout = Path(tmp)
        _extract(partial, layout)
        manifest, _, digest = _oci_layout(layout)
        layers = _layer_sizes(layout, manifest)
    partial.rename(archive)
    return Record(
        archive=archive,
        reference=reference,
        digest=digest,
        archive_bytes=archive.stat().st_size,
        layers=layers,
        inputs=key,
        base=base.key,
        version=build_args["VERSION"],
        revision=build_args["REVISION"],
        build_seconds=time.monotonic() - started,
    )


def _extract(archive: Path, into: Path) -> None:
    """Our own archive; still, no member may land outside `into` (Python's "data" filter where it
    has one: Debian's 3.11.2 has not)."""
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
            return
        for member in tar.getmembers():
            target = (into / member.name).resolve()
            if not target.is_relative_to(into.resolve()) or member.issym() or member.islnk():
                raise ImageError(f"{archive}: unexpected member {member.name!r}")
        tar.extractall(into)  # noqa: S202 - every member checked above


# ------------------------------------------------------------------------------------ unpacking


@dataclass(frozen=True)
class Unpacked:
    """An image's root filesystem and the configuration a container runtime starts it with."""

    rootfs: Path
    config: dict[str, Any]  # the OCI image configuration's `config`: Env, Entrypoint, Cmd, User, ...
    labels: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        return dict(str(e).split("=", 1) for e in self.config.get("Env") or [])

    def argv(self, args: Iterable[str] | None = None) -> list[str]:
        """ENTRYPOINT plus `args` (a Pod's args replace CMD), or plus CMD."""
        cmd = list(args) if args is not None else list(self.config.get("Cmd") or [])
        return [*(self.config.get("Entrypoint") or []), *cmd]


def unpack(archive: Path, reference: str, into: Path) -> Unpacked:
    """The archive's image unpacked by umoci (layers applied in order, whiteouts honoured) under
    `into`/bundle/rootfs, owners kept (run as root)."""
    layout, bundle = into / "layout", into / "bundle"
    _extract(archive, layout)
    _run(["umoci", "unpack", "--image", f"{layout}:{reference}", str(bundle)])
    _, config, _ = _oci_layout(layout)
    shutil.rmtree(layout)
    inner: dict[str, Any] = config.get("config") or {}
    return Unpacked(bundle / "rootfs", inner, dict(inner.get("Labels") or {}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--dist", type=Path, default=DIST, help="where the archive goes (default: dist/)")
    parser.add_argument("--force", action="store_true", help="build even if an archive has the same inputs")
    args = parser.parse_args(argv)
    try:
        record = build(args.dist.resolve(), force=args.force, log=lambda line: print(line, file=sys.stderr))
    except ImageError as exc:
        print(f"make image: {exc}", file=sys.stderr)
        return 1
    print(record.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
