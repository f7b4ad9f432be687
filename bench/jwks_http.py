"""`keyturn serve-jwks` against Debian's nginx serving the same JWKS file, same machine, same wrk.

A local control plane and the operator publish one RS256 keyset's JWKS; the JWKS server serves it
from the ConfigMap and nginx from a file holding the same bytes, with the headers nginx can give
(strong ETag, the same Cache-Control). Each server is measured with wrk (keep-alive, 64
connections) for 200 responses and for 304 responses (If-None-Match with the server's own ETag);
one server process each (nginx worker_processes 1, serve-jwks --workers 1) unless told otherwise.

    .venv/bin/python bench/jwks_http.py [--duration 30] [--connections 64] [--workers 1]

Prints JSON: requests/s and p99 latency per server and response, and keyturn / nginx ratios.
nginx and wrk are Debian packages: installed with apt-get when missing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from common import environment, say, wait
from keyturn import GROUP, PLURAL, VERSION

NS = "bench"
HOST = "auth.bench.example"
ROTATION = {"interval": "30d", "publishAhead": "1h", "gracePeriod": "7d", "retention": "14d"}
PATH = f"/{NS}/keys/.well-known/jwks.json"
NGINX_PORT, KEYTURN_PORT = 18480, 18481
CACHE_CONTROL = "public, max-age=3600, must-revalidate"


def ensure_tools() -> None:
    missing = [
        tool for tool in ("wrk", "nginx") if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists()
    ]
    if not missing:
        return
    say(f"installing {', '.join(missing)} (Debian packages)")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True)


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_config(prefix: Path, document: Path) -> Path:
    config = prefix / "nginx.conf"
    config.write_text(
        f"""worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  etag on;
  client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy; fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;
  server {{
    listen 127.0.0.1:{NGINX_PORT};
    location = {PATH} {{
      default_type application/jwk-set+json;
      add_header Cache-Control "{CACHE_CONTROL}";
      alias {document};
    }}
  }}
}}
"""
    )
    return config


def fetch(port: int, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", PATH, headers={"Host": HOST, **headers})
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(port: int, headers: dict[str, str], duration: int, connections: int) -> dict[str, float]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-H", f"Host: {HOST}"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*argv, f"http://127.0.0.1:{port}{PATH}"], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    assert p99 is not None, out
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": round(rps),
        "p99_ms": round(float(p99[1]) * UNITS[p99[2]], 2),
        "errors": int(errors[1]) if errors else 0,
    }


def start(argv: list[str], log: Path, ready: Any) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait(ready, 30, f"{argv[0]} ready (log: {log.read_text()[-2000:]})", interval=0.05)
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def up(port: int) -> bool:
    try:
        return fetch(port, {})[0] == 200
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (reported figures: 30)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--workers", type=int, default=1, help="serve-jwks --workers and nginx worker_processes"
    )
    args = parser.parse_args()
    ensure_tools()
    with environment(NS) as (cluster, api), tempfile.TemporaryDirectory(prefix="jwks-bench-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # nginx's workers run as www-data: they must read the document
        custom = client.CustomObjectsApi(api)
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "JwtKeySet",
            "metadata": {"name": "keys"},
            "spec": {"algorithm": "RS256", "rotation": ROTATION, "jwks": {"issuer": f"https://{HOST}"}},
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
        core = client.CoreV1Api(api)

        def published() -> str | None:
            try:
                cm = core.read_namespaced_config_map("keys-jwks", NS)
            except client.ApiException:
                return None
            text = (cm.data or {}).get("jwks.json")
            return text if text and '"kid"' in text and text.count('"kid"') >= 2 else None

        document_text = wait(published, 60, "the JWKS ConfigMap")
        document = work / "jwks.json"
        document.write_bytes(document_text.encode())
        config = nginx_config(work, document)
        if args.workers != 1:
            config.write_text(
                config.read_text().replace("worker_processes 1;", f"worker_processes {args.workers};")
            )
        nginx = start(
            [nginx_binary(), "-c", str(config), "-p", str(work), "-g", "daemon off;"],
            work / "nginx.log",
            lambda: up(NGINX_PORT),
        )
        server = start(
            [
                sys.executable, "-m", "keyturn", "serve-jwks",
                f"--listen=127.0.0.1:{KEYTURN_PORT}", f"--namespace={NS}",
                f"--kubeconfig={cluster.kubeconfig}", f"--workers={args.workers}", "--log-format=json",
            ],
            work / "serve-jwks.log",
            lambda: up(KEYTURN_PORT),
        )  # fmt: skip
        try:
            results: dict[str, Any] = {}
            for name, port in (("nginx", NGINX_PORT), ("keyturn", KEYTURN_PORT)):
                status, headers, served = fetch(port, {})
                if status != 200 or served != document_text.encode():
                    raise SystemExit(f"{name} does not serve the document: {status}")
                cached_status, _, _ = fetch(port, {"If-None-Match": headers["etag"]})
                if cached_status != 304:
                    raise SystemExit(f"{name} answers {cached_status} to its own ETag")
                results[name] = {
                    "headers": {k: headers.get(k) for k in ("content-type", "etag", "cache-control")},
                    "200": wrk(port, {}, args.duration, args.connections),
                    "304": wrk(port, {"If-None-Match": headers["etag"]}, args.duration, args.connections),
                }
                say(f"{name}: {json.dumps({k: results[name][k] for k in ('200', '304')})}")
        finally:
            stop(server)
            stop(nginx)
        ratio = {
            code: {
                "requests_per_s": round(
                    results["keyturn"][code]["requests_per_s"] / results["nginx"][code]["requests_per_s"], 2
                ),
                "p99_ms": round(
                    results["keyturn"][code]["p99_ms"] / max(results["nginx"][code]["p99_ms"], 0.01), 2
                ),
            }
            for code in ("200", "304")
        }
        summary = {
            "date": time.strftime("%Y-%m-%d"),
            "cores": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "wrk": {
                "threads": 1,
                "connections": args.connections,
                "duration_s": args.duration,
                "keep_alive": True,
            },
            "workers": args.workers,
            "document_bytes": len(document_text.encode()),
            "nginx": results["nginx"],
            "keyturn": results["keyturn"],
            "keyturn_over_nginx": ratio,
            "goal_200_met": results["keyturn"]["200"]["requests_per_s"] >= 10_000
            and results["keyturn"]["200"]["p99_ms"] < 10,
        }
        print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
