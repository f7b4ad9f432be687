"""A small real service that signs and verifies with keys Keyturn rotates (keyturn.client).

It is what the end-to-end tests roll, probe and measure, and a template for an application:

    POST|GET /token            sign a short-lived token with the current key
    POST|GET /verify           verify `Authorization: Bearer <t>`, {"token": t} or a raw body
    GET      /health/jwt       sign and verify a test token now (Keyturn's keyturn.dev/health-url)
    GET      /healthz          liveness only (keys not consulted)
    GET      /metrics          Prometheus: jwt_validations_total, jwt_keys_loaded, ...
    POST|GET /admin/reject-kids  fault injection, only with --enable-admin:
                               {"kids": ["k1"]} makes /verify and /health/jwt refuse tokens with
                               those kids (reason rejected_by_test); {"kids": []} clears it

Every flag can also be given as KEYTURN_APP_<FLAG> (e.g. KEYTURN_APP_SECRET_DIR), so the same
image runs from a Deployment's env. Run with --help for the list.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, Final

import jwt
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest

from keyturn.client import (
    ClientMetrics,
    HmacVerifier,
    JwksVerifier,
    KeySourceError,
    Signer,
    ValidationReason,
    VerificationError,
    Verifier,
)
from keyturn.keys import signing
from keyturn.keys.algorithms import is_symmetric
from keyturn.keys.jwk import public_jwk

log = logging.getLogger("keyturn.example.app")

MAX_BODY: Final = 64 * 1024
HEALTH_AUDIENCE: Final = "keyturn-health-check"
HMAC_DEFAULT: Final = "HS256"
ASYMMETRIC_DEFAULT: Final = "RS256"


class App:
    """The service's behaviour, independent of HTTP so that it reads like an application."""

    def __init__(
        self,
        *,
        signer: Signer | None,
        verifier: Verifier | None,
        metrics: ClientMetrics,
        registry: CollectorRegistry,
        issuer: str,
        audience: str,
        token_ttl: int,
        admin: bool,
    ) -> None:
        self.signer = signer
        self.verifier = verifier
        self.metrics = metrics
        self.registry = registry
        self.issuer = issuer
        self.audience = audience
        self.token_ttl = token_ttl
        self.admin = admin
        self._rejected: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ endpoints

    def issue(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.signer is None:
            return 503, {"error": "this instance does not sign (no --secret-dir or --secret-env)"}
        subject = body.get("sub", "example-user")
        ttl = body.get("ttl", self.token_ttl)
        if not isinstance(subject, str) or not isinstance(ttl, int) or not 1 <= ttl <= 86400:
            return 400, {"error": "sub must be a string and ttl an integer number of seconds (1..86400)"}
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.audience, "sub": subject, "iat": now, "exp": now + ttl}
        key = self.signer.current()  # one snapshot: the kid we report is the kid we signed with
        token = self.signer.sign(claims, key=key)
        return 200, {"token": token, "kid": key.kid, "alg": key.algorithm, "expires_at": now + ttl}

    def verify(self, token: str) -> tuple[int, dict[str, Any]]:
        if self.verifier is None:
            return 503, {"error": "this instance does not verify (no --jwks-file, --jwks-url or --hmac)"}
        kid = _header_kid(token)
        if kid is not None and kid in self.rejected_kids():
            # Counted like any other failure, so the analysis gate sees the drop.
            self.metrics.record_validation(ValidationReason.REJECTED_BY_TEST, kid)
            return 401, {"valid": False, "reason": ValidationReason.REJECTED_BY_TEST.value, "kid": kid}
        try:
            claims = self.verifier.verify(token, audience=self.audience, issuer=self.issuer)
        except VerificationError as exc:
            return 401, {"valid": False, "reason": exc.reason.value, "kid": exc.kid}
        return 200, {"valid": True, "kid": kid, "claims": claims}

    def health(self) -> tuple[int, dict[str, Any]]:
        """Sign and verify a test token with the keys loaded right now (not counted in metrics)."""
        body: dict[str, Any] = {}
        if self.verifier is not None:
            body["verifier_kids"] = list(self.verifier.kids)
        try:
            if self.signer is None:
                if not body.get("verifier_kids"):
                    return 500, {**body, "status": "failing", "reason": ValidationReason.NO_KEYS.value}
                return 200, {**body, "status": "ok"}
            now = int(time.time())
            claims = {"iss": self.issuer, "sub": "health-check", "aud": HEALTH_AUDIENCE, "iat": now}
            key = self.signer.current()
            token = self.signer.sign({**claims, "exp": now + 60}, key=key)
            body["kid"] = key.kid
            if key.kid in self.rejected_kids():
                return 500, {**body, "status": "failing", "reason": ValidationReason.REJECTED_BY_TEST.value}
            if self.verifier is not None:
                self.verifier.verify(token, audience=HEALTH_AUDIENCE, issuer=self.issuer, record=False)
            elif not is_symmetric(key.algorithm):
                jwk = public_jwk(key.material, key.kid)
                signing.verify(token, jwk, key.algorithm, audience=HEALTH_AUDIENCE)
        except VerificationError as exc:
            return 500, {**body, "status": "failing", "reason": exc.reason.value}
        except (signing.TokenVerificationError, ValueError) as exc:
            return 500, {**body, "status": "failing", "reason": type(exc).__name__}
        return 200, {**body, "status": "ok"}

    def rejected_kids(self) -> frozenset[str]:
        return self._rejected

    def set_rejected_kids(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        kids = body.get("kids")
        if not isinstance(kids, list) or not all(isinstance(k, str) for k in kids):
            return 400, {"error": 'expected {"kids": ["kid", ...]}'}
        with self._lock:
            self._rejected = frozenset(kids)
        log.warning("fault injection: rejecting kids %s", sorted(self._rejected) or "none")
        return 200, {"rejected_kids": sorted(self._rejected)}

    def metrics_text(self) -> bytes:
        return generate_latest(self.registry)

    def close(self) -> None:
        if self.signer is not None:
            self.signer.close()
        if self.verifier is not None:
            self.verifier.close()


def _header_kid(token: str) -> str | None:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return None
    return kid if isinstance(kid, str) else None


# ---------------------------------------------------------------------- HTTP


def make_handler(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the load script reuses connections
        # Headers and body leave in one segment; otherwise Nagle + delayed ACK add ~40 ms.
        wbufsize = 64 * 1024
        disable_nagle_algorithm = True
        server_version = "keyturn-example-app"

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            try:
                body = self._body()
            except ValueError as exc:
                self._json(400, {"error": str(exc)})
                return
            routes: dict[str, Callable[[], tuple[int, dict[str, Any]]]] = {
                "/token": lambda: app.issue(_json_object(body)),
                "/verify": lambda: self._verify(body),
                "/health/jwt": app.health,
                "/healthz": lambda: (200, {"status": "ok"}),
            }
            if path == "/metrics" and method == "GET":
                self._send(200, app.metrics_text(), CONTENT_TYPE_LATEST)
            elif path == "/admin/reject-kids" and app.admin:
                if method == "POST":
                    self._json(*app.set_rejected_kids(_json_object(body)))
                else:
                    self._json(200, {"rejected_kids": sorted(app.rejected_kids())})
            elif path in routes:
                self._json(*routes[path]())
            else:
                self._json(404, {"error": f"no route {method} {path}"})

        def _verify(self, body: bytes) -> tuple[int, dict[str, Any]]:
            token = _token_from(self.headers.get("Authorization"), body)
            if token is None:
                return 400, {"error": "no token: send Authorization: Bearer <token> or {'token': ...}"}
            return app.verify(token)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0 or length > MAX_BODY:
                raise ValueError(f"request body must be at most {MAX_BODY} bytes")
            return self.rfile.read(length) if length else b""

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json")

        def _send(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return Handler


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _token_from(authorization: str | None, body: bytes) -> str | None:
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    obj = _json_object(body)
    if isinstance(obj.get("token"), str):
        return str(obj["token"])
    text = body.decode("utf-8", "replace").strip()
    return text if text and not text.startswith("{") else None


# ---------------------------------------------------------------------- configuration


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"KEYTURN_APP_{name.upper().replace('-', '_')}", default)


def _env_flag(name: str) -> bool:
    return (_env(name) or "").lower() in ("1", "true", "yes", "on")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="app.py",
        description="Example service signing and verifying JWTs with keys rotated by Keyturn.",
        epilog="Every option defaults to the environment variable KEYTURN_APP_<OPTION>.",
    )
    p.add_argument("--host", default=_env("host", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(_env("port", "8000") or 8000), help="0: any free port")
    p.add_argument("--algorithm", default=_env("algorithm"), help="the keyset's spec.algorithm")
    p.add_argument(
        "--hmac", action="store_true", default=_env_flag("hmac"), help="HS* keyset (default HS256)"
    )
    p.add_argument("--secret-dir", default=_env("secret_dir"), help="the keyset's Secret mounted as a volume")
    p.add_argument(
        "--secret-env", action="store_true", default=_env_flag("secret_env"), help="Secret via envFrom"
    )
    p.add_argument("--jwks-file", default=_env("jwks_file"), help="<mount>/jwks.json of the JWKS ConfigMap")
    p.add_argument("--jwks-url", default=_env("jwks_url"), help="a JWKS served over HTTP(S)")
    p.add_argument("--jwks-cache-ttl", type=float, default=float(_env("jwks_cache_ttl", "300") or 300))
    p.add_argument("--private-key-item", default=_env("private_key_item", "JWT_PRIVATE_KEY"))
    p.add_argument("--secret-item", default=_env("secret_item", "JWT_SECRET"))
    p.add_argument("--previous-item", default=_env("previous_item", "JWT_SECRET_PREVIOUS"))
    p.add_argument("--next-item", default=_env("next_item", "JWT_SECRET_NEXT"))
    p.add_argument("--kid-item", default=_env("kid_item", "JWT_KID"))
    p.add_argument("--passphrase-file", default=_env("passphrase_file"), help="for encrypted PKCS#8 keys")
    p.add_argument("--issuer", default=_env("issuer", "keyturn-example-app"))
    p.add_argument("--audience", default=_env("audience", "keyturn-example"))
    p.add_argument("--token-ttl", type=int, default=int(_env("token_ttl", "300") or 300), help="seconds")
    p.add_argument("--check-interval", type=float, default=float(_env("check_interval", "1") or 1))
    p.add_argument(
        "--enable-admin",
        action="store_true",
        default=_env_flag("enable_admin"),
        help="serve /admin/reject-kids (fault injection for tests; never in production)",
    )
    p.add_argument("--log-level", default=_env("log_level", "INFO"))
    args = p.parse_args(argv)
    if args.algorithm is None:
        args.algorithm = HMAC_DEFAULT if args.hmac else ASYMMETRIC_DEFAULT
    args.hmac = args.hmac or is_symmetric(args.algorithm)
    if args.hmac and not is_symmetric(args.algorithm):
        p.error(f"--hmac needs an HS* --algorithm, not {args.algorithm}")
    if args.secret_dir and args.secret_env:
        p.error("give --secret-dir or --secret-env, not both")
    if args.jwks_file and args.jwks_url:
        p.error("give --jwks-file or --jwks-url, not both")
    if args.hmac and (args.jwks_file or args.jwks_url):
        p.error("HMAC keysets have no JWKS: verification uses the Secret's secrets")
    has_secret = bool(args.secret_dir or args.secret_env)
    if not has_secret and not (args.jwks_file or args.jwks_url):
        p.error("nothing to do: give --secret-dir/--secret-env (sign) and/or --jwks-file/--jwks-url (verify)")
    return args


def build_app(args: argparse.Namespace) -> App:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    metrics = ClientMetrics(registry)
    interval = args.check_interval
    passphrase_file = args.passphrase_file
    signer: Signer | None = None
    verifier: Verifier | None = None
    key_item = args.secret_item if args.hmac else args.private_key_item
    kid_item = args.kid_item or None
    if args.secret_dir:
        signer = Signer.from_dir(
            args.secret_dir,
            args.algorithm,
            key_item=key_item,
            kid_item=kid_item,
            passphrase_file=passphrase_file,
            check_interval=interval,
            metrics=metrics,
        )
    elif args.secret_env:
        passphrase = None
        if passphrase_file:
            with open(passphrase_file, "rb") as handle:
                passphrase = handle.read()
        signer = Signer.from_env(
            args.algorithm, key_var=key_item, kid_var=kid_item, passphrase=passphrase, metrics=metrics
        )
    if args.hmac:
        names = {
            "previous": args.previous_item or None,
            "next": args.next_item or None,
        }
        if args.secret_dir:
            verifier = HmacVerifier.from_dir(
                args.secret_dir,
                algorithm=args.algorithm,
                current_item=args.secret_item,
                previous_item=names["previous"],
                next_item=names["next"],
                kid_item=kid_item,
                check_interval=interval,
                metrics=metrics,
            )
        else:
            verifier = HmacVerifier.from_env(
                algorithm=args.algorithm,
                current_var=args.secret_item,
                previous_var=names["previous"],
                next_var=names["next"],
                kid_var=kid_item,
                metrics=metrics,
            )
    elif args.jwks_file:
        verifier = JwksVerifier.from_file(
            args.jwks_file, algorithms=[args.algorithm], check_interval=interval, metrics=metrics
        )
    elif args.jwks_url:
        verifier = JwksVerifier.from_url(
            args.jwks_url,
            algorithms=[args.algorithm],
            cache_ttl=args.jwks_cache_ttl,
            metrics=metrics,
        )
    # Watchers keep jwt_keys_loaded / jwt_signing_key current even while no request arrives.
    if signer is not None:
        signer.start_watching(interval)
    if verifier is not None:
        verifier.start_watching(interval)
    return App(
        signer=signer,
        verifier=verifier,
        metrics=metrics,
        registry=registry,
        issuer=args.issuer,
        audience=args.audience,
        token_ttl=args.token_ttl,
        admin=args.enable_admin,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        app = build_app(args)
    except KeySourceError as exc:
        log.error("cannot start: %s", exc)
        return 2
    server = ThreadingHTTPServer((args.host, args.port), make_handler(app))
    server.daemon_threads = True
    host, port = args.host, server.server_port

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: shutting down", signal.Signals(signum).name)
        # shutdown() waits for serve_forever(), which runs in this very thread: hand it off.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    role = " + ".join(r for r, on in (("signer", app.signer), ("verifier", app.verifier)) if on is not None)
    print(f"listening on http://{host}:{port} ({args.algorithm}, {role})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
