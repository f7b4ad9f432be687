"""Every certificate and key of the local cluster, and the kubeconfigs made from them."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from localcluster.network import LOOPBACK, SERVICE_CIDR
from localcluster.pki import CertificateAuthority, Identity, KeyPair, write_service_account_keys

ADMIN = Identity("admin", "system:masters")
_APISERVER_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class Credentials:
    ca: KeyPair
    service_account: KeyPair  # ``cert`` holds the public key
    front_proxy_ca: KeyPair
    front_proxy_client: KeyPair
    apiserver: KeyPair
    serving: KeyPair  # the other components' HTTPS endpoints
    admin: KeyPair
    clients: Mapping[str, KeyPair]  # one per component that talks to the apiserver

    def ca_tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca.cert))

    def admin_tls(self) -> ssl.SSLContext:
        context = self.ca_tls()
        context.load_cert_chain(str(self.admin.cert), str(self.admin.key))
        return context


def issue_credentials(directory: Path, clients: Mapping[str, Identity]) -> Credentials:
    """A cluster CA, its server and client certificates, the front-proxy CA and the SA key pair."""
    ca = CertificateAuthority(directory, "ca", "keyturn-local-ca")
    # The apiserver's authenticating-proxy CA. Nothing proxies here, but without it every
    # component's delegated authentication logs an error per second about the missing
    # bundle, burying real failures in the logs.
    front_proxy = CertificateAuthority(directory, "front-proxy-ca", "keyturn-front-proxy-ca")
    service_ip = str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))
    return Credentials(
        ca=ca.ca,
        service_account=write_service_account_keys(directory),
        front_proxy_ca=front_proxy.ca,
        front_proxy_client=front_proxy.issue(
            "front-proxy-client", Identity("front-proxy-client"), client=True
        ),
        apiserver=ca.issue(
            "apiserver",
            Identity("kube-apiserver"),
            server=True,
            dns=_APISERVER_NAMES,
            ips=[LOOPBACK, service_ip],
        ),
        serving=ca.issue("serving", Identity("localhost"), server=True, dns=["localhost"], ips=[LOOPBACK]),
        admin=ca.issue("admin", ADMIN, client=True),
        clients={name: ca.issue(name, who, client=True) for name, who in clients.items()},
    )


def write_kubeconfig(path: Path, server: str, ca: Path, pair: KeyPair, user: str) -> None:
    # Paths rather than embedded data: the Python client would copy embedded data into
    # temp files that outlive the cluster.
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "keyturn", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [
            {"name": user, "user": {"client-certificate": str(pair.cert), "client-key": str(pair.key)}}
        ],
        "contexts": [{"name": "keyturn", "context": {"cluster": "keyturn", "user": user}}],
        "current-context": "keyturn",
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
