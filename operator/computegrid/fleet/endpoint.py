"""Where a cluster's API server is and how to authenticate to it, and the one urllib3 pool
built from that.

Why not the ``kubernetes`` library's ``Configuration``: importing that package (its config
loaders pull in OAuth, requests and every generated model) cost the operator a sixth of its
start-up CPU before the first placement after a restart, and 9 MB, for a server URL, a CA,
a client certificate and a token. The operator talks plain JSON
(``rest.py``); this module builds the pool for it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
import yaml
from urllib3.util.ssl_ import create_urllib3_context

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: A projected service-account token is rotated by the kubelet; re-read it this often.
TOKEN_REREAD_S = 60.0


class EndpointError(ValueError):
    """Credentials that cannot be used; the message names the field, never its content."""


@dataclass(frozen=True)
class Endpoint:
    """One API server: its URL, how to trust it, and who we are to it. Secrets stay out of
    ``repr``."""

    server: str
    ca_data: str | None = field(default=None, repr=False)  # PEM text
    ca_file: str | None = None
    insecure: bool = False  # only from the operator's own kubeconfig, never a member Secret
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    cert_data: bytes | None = field(default=None, repr=False)
    key_data: bytes | None = field(default=None, repr=False)
    cert_file: str | None = None
    key_file: str | None = None

    def pool(self, size: int) -> urllib3.PoolManager:
        """A pool of at most ``size`` connections that verifies the server (unless the
        operator's own kubeconfig says ``insecure-skip-tls-verify``)."""
        options: dict[str, Any] = {"maxsize": size, "block": False, "retries": False}
        if self.server.startswith("https"):
            options["cert_reqs"] = ssl.CERT_NONE if self.insecure else ssl.CERT_REQUIRED
            if self.ca_data:
                options["ca_cert_data"] = self.ca_data
            if self.ca_file:
                options["ca_certs"] = self.ca_file
            if self.cert_data and self.key_data:  # inline data wins over paths, as in kubectl
                options["ssl_context"] = self._context_with_client_certificate(options["cert_reqs"])
            elif self.cert_file and self.key_file:
                options["cert_file"], options["key_file"] = self.cert_file, self.key_file
        return urllib3.PoolManager(num_pools=2, **options)

    def _context_with_client_certificate(self, cert_reqs: int) -> ssl.SSLContext:
        """A TLS context holding the inline client certificate and key.

        Why files at all: Python's TLS stack loads a certificate chain from paths only. They
        live for the one ``load_cert_chain`` call, in a folder only this user can read: a
        pool's lifetime would leave the member's private key on disk after every SIGKILL
        (400 such folders were found in /tmp after a day of crash tests).
        """
        context = create_urllib3_context(cert_reqs=cert_reqs)
        folder = tempfile.mkdtemp(prefix="cg-client-")  # mode 0700
        cert = key = None
        failure = ""
        try:
            cert = _private_file(folder, "tls.crt", self.cert_data or b"")
            key = _private_file(folder, "tls.key", self.key_data or b"")
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            # The type only: an SSL error may quote the PEM it could not read.
            failure = f"not a usable pair ({type(exc).__name__})"
        finally:
            _remove(folder, (cert, key))
        if failure:  # raised outside the handler: no exception holding the key is chained
            raise EndpointError(f"client-certificate-data/client-key-data: {failure}")
        return context


class Authorization:
    """The ``Authorization`` header for an endpoint, re-reading a token file now and then."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._value = f"Bearer {endpoint.token}" if endpoint.token else ""
        self._read = 0.0

    def header(self) -> str:
        path = self.endpoint.token_file
        if path and time.monotonic() - self._read > TOKEN_REREAD_S:
            with contextlib.suppress(OSError):  # keep the last token until the file is back
                self._value = "Bearer " + Path(path).read_text(encoding="utf-8").strip()
            self._read = time.monotonic()
        return self._value


def hub_endpoint(kubeconfig_path: str | None) -> Endpoint:
    """The hub as the operator sees it: the kubeconfig Kopf logs in with, or, without one,
    the pod's service account (the same two ways ``kopf.login_with_*`` know)."""
    if kubeconfig_path:
        return _from_kubeconfig_file(Path(kubeconfig_path))
    host, port = (
        os.environ.get("KUBERNETES_SERVICE_HOST"),
        os.environ.get("KUBERNETES_SERVICE_PORT"),
    )
    if not host or not port:
        raise EndpointError(
            "no kubeconfig given and not running in a pod (no KUBERNETES_SERVICE_HOST)"
        )
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    return Endpoint(
        server,
        ca_file=str(SERVICE_ACCOUNT / "ca.crt"),
        token_file=str(SERVICE_ACCOUNT / "token"),
    )


def _from_kubeconfig_file(path: Path) -> Endpoint:
    """The current context of the operator's own kubeconfig. Unlike a member Secret this is
    the operator's configuration, so file paths are fine (relative to the file); exec and
    auth-provider plugins are not supported (Kopf's own kubeconfig login has neither)."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise EndpointError(f"kubeconfig {path}: cannot be read ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise EndpointError(f"kubeconfig {path}: expected a mapping at the top")
    context = _named(doc, "contexts", "context", doc.get("current-context"), path)
    cluster = _named(doc, "clusters", "cluster", context.get("cluster"), path)
    user = _named(doc, "users", "user", context.get("user"), path) if context.get("user") else {}
    for plugin in ("exec", "auth-provider"):
        if plugin in user:
            raise EndpointError(f"kubeconfig {path}: users[].user.{plugin}: not supported")
    if not cluster.get("server"):
        raise EndpointError(f"kubeconfig {path}: clusters[].cluster.server: required")
    base = path.parent

    def local(value: Any) -> str | None:
        return str(base / str(value)) if value else None

    def decoded(value: Any) -> bytes | None:
        return base64.b64decode(value) if value else None

    ca = decoded(cluster.get("certificate-authority-data"))
    return Endpoint(
        str(cluster["server"]).rstrip("/"),
        ca_data=ca.decode("ascii") if ca else None,
        ca_file=local(cluster.get("certificate-authority")),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        token=str(user["token"]) if user.get("token") else None,
        token_file=local(user.get("tokenFile")),
        cert_data=decoded(user.get("client-certificate-data")),
        key_data=decoded(user.get("client-key-data")),
        cert_file=local(user.get("client-certificate")),
        key_file=local(user.get("client-key")),
    )


def _named(doc: dict[str, Any], section: str, key: str, name: Any, path: Path) -> dict[str, Any]:
    entries = doc.get(section) or []
    if name in (None, "") and len(entries) == 1:
        name = entries[0].get("name")
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(key) or {}
            if isinstance(value, dict):
                return value
    raise EndpointError(f"kubeconfig {path}: {section}: no entry named {name!r}")


def _private_file(folder: str, name: str, data: bytes) -> str:
    path = os.path.join(folder, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return path


def _remove(folder: str, files: tuple[str | None, ...]) -> None:
    for path in files:
        if path:
            with contextlib.suppress(OSError):
                os.remove(path)
    with contextlib.suppress(OSError):
        os.rmdir(folder)
