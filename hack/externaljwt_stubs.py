"""`make externaljwt-stubs`: the Python stubs of kube-apiserver's external JWT signer API.

The proto is `k8s.io/externaljwt/apis/v1/api.proto` of the Go module k8s.io/externaljwt, at the
version hack/gobuild/kubernetes/go.mod pins (the control plane the tests build uses the same one).
This script copies it into operator/keyturn/sasigner/pb/ and generates next to it, with
grpcio-tools and mypy-protobuf (dev dependencies):

    api_pb2.py, api_pb2.pyi             the messages (protobuf runtime)
    api_pb2_grpc.py, api_pb2_grpc.pyi   the service (grpcio runtime)

The generated files are committed, so installing Keyturn needs neither protoc nor Go. The proto
is compiled as keyturn/sasigner/pb/api.proto, so the generated service module imports its messages
as `keyturn.sasigner.pb.api_pb2` (a bare `import api_pb2` would only work from that folder); the
proto's own package, `v1`, is unchanged, so the gRPC method names stay `/v1.ExternalJWTSigner/...`.

    python hack/externaljwt_stubs.py            # copy the proto, regenerate
    python hack/externaljwt_stubs.py --check    # exit 1 if the committed files differ from a fresh run
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
GO_MOD: Final = ROOT / "hack" / "gobuild" / "kubernetes" / "go.mod"
PACKAGE: Final = "keyturn/sasigner/pb"
TARGET: Final = ROOT / "operator" / PACKAGE
MODULE: Final = "k8s.io/externaljwt"
PROTO_IN_MODULE: Final = "apis/v1/api.proto"
GENERATED: Final = ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py", "api_pb2_grpc.pyi")


class StubError(RuntimeError):
    """The proto cannot be found or the generator failed; the message says what to do."""


def pinned_version(go_mod: Path = GO_MOD) -> str:
    """The k8s.io/externaljwt version the Kubernetes build replaces the staging module with."""
    found = re.search(rf"^\s*{re.escape(MODULE)} => {re.escape(MODULE)} (v\S+)\s*$", go_mod.read_text(), re.M)
    if found is None:
        raise StubError(f"{go_mod.relative_to(ROOT)} has no `{MODULE} => {MODULE} vX` replace line")
    return found.group(1)


def _go(*args: str) -> str:
    go = shutil.which("go")
    if go is None:
        raise StubError("the Go toolchain is needed to find the proto in the module cache (`go` not on PATH)")
    return subprocess.run([go, *args], check=True, capture_output=True, text=True).stdout.strip()


def module_proto(version: str) -> Path:
    """The proto in the Go module cache; `go mod download` fetches the module when it is missing."""
    cache = Path(_go("env", "GOMODCACHE"))
    proto = cache / f"{MODULE}@{version}" / PROTO_IN_MODULE
    if not proto.is_file():
        _go("mod", "download", f"{MODULE}@{version}")
    if not proto.is_file():
        raise StubError(f"{proto} not found after `go mod download {MODULE}@{version}`")
    return proto


def generate(proto: Path, out_root: Path) -> None:
    """Compile `proto` as PACKAGE/api.proto into out_root/PACKAGE (protoc from grpcio-tools)."""
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as staging:
        staged = Path(staging) / PACKAGE / "api.proto"
        staged.parent.mkdir(parents=True)
        shutil.copyfile(proto, staged)
        (out_root / PACKAGE).mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={staging}",
            f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
            f"--python_out={out_root}",
            f"--mypy_out={out_root}",
            f"--grpc_python_out={out_root}",
            f"--mypy_grpc_out={out_root}",
            f"{PACKAGE}/api.proto",
        ]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise StubError(f"grpc_tools.protoc failed (is `make venv` done?): {done.stderr.strip()}")


def regenerate() -> None:
    proto = module_proto(pinned_version())
    shutil.copyfile(proto, TARGET / "api.proto")
    generate(TARGET / "api.proto", ROOT / "operator")


def differences() -> list[str]:
    """Files whose committed content differs from what a fresh run would write."""
    changed = []
    proto = module_proto(pinned_version())
    if not filecmp.cmp(proto, TARGET / "api.proto", shallow=False):
        changed.append(f"{PACKAGE}/api.proto (not the proto of {MODULE} {pinned_version()})")
    with tempfile.TemporaryDirectory() as out:
        generate(proto, Path(out))
        for name in GENERATED:
            fresh, committed = Path(out) / PACKAGE / name, TARGET / name
            if not committed.is_file() or not filecmp.cmp(fresh, committed, shallow=False):
                changed.append(f"{PACKAGE}/{name}")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare with a fresh run instead of writing")
    args = parser.parse_args(argv)
    try:
        if args.check:
            changed = differences()
            for name in changed:
                print(f"stale: {name} (run `make externaljwt-stubs`)", file=sys.stderr)
            return 1 if changed else 0
        regenerate()
    except (StubError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"generated {', '.join(GENERATED)} in {TARGET.relative_to(ROOT)} from {MODULE} {pinned_version()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
