"""A strict reader of member kubeconfigs: a server, its CA, and a token or a client certificate.

Why not ``kubernetes.config``: the full loader runs ``exec`` plugins and ``auth-provider``
refreshes (a command of the Secret writer's choosing, inside the operator pod), reads
``tokenFile`` and certificate paths (the operator's own service-account token sent to a
server of the writer's choosing), and its YAML errors quote the offending line, token and
all. A member Secret is input from another team, so this reader accepts only the fields it
names, refuses every other one with an error naming the field, and never puts a byte of the
Secret's content in an error: not in the message, not in a chained exception.

    >>> member = read_kubeconfig(secret_text)
    >>> rest = Rest(member.endpoint())
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from computegrid.fleet.endpoint import Endpoint

MAX_BYTES = 256 * 1024  # a kubeconfig with one embedded CA and certificate is a few KiB

TOP_LEVEL = frozenset(
    {"apiVersion", "kind", "clusters", "contexts", "users", "current-context", "preferences"}
)
CLUSTER_FIELDS = frozenset({"server", "certificate-authority-data", "insecure-skip-tls-verify"})
USER_FIELDS = frozenset({"token", "client-certificate-data", "client-key-data"})
# Fields the full loader would act on, and why this reader refuses each.
REFUSED = {
    "exec": "runs a command in the operator",
    "auth-provider": "runs a token refresh in the operator",
    "tokenFile": "reads a file of the operator's",
    "token-file": "reads a file of the operator's",
    "certificate-authority": "a file path; embed certificate-authority-data instead",
    "client-certificate": "a file path; embed client-certificate-data instead",
    "client-key": "a file path; embed client-key-data instead",
    "username": "basic authentication is not accepted",
    "password": "basic authentication is not accepted",
    "proxy-url": "a proxy of the Secret writer's choosing is not accepted",
    "as": "impersonation is not accepted",
    "as-groups": "impersonation is not accepted",
    "as-uid": "impersonation is not accepted",
    "as-user-extra": "impersonation is not accepted",
}


class KubeconfigError(ValueError):
    """A kubeconfig this reader refuses; the message names the field, never its content."""


@dataclass(frozen=True)
class MemberKubeconfig:
    """What a member client needs, and nothing else. Secrets stay out of ``repr``."""

    server: str
    ca_data: str | None = field(default=None, repr=False)  # PEM text
    token: str | None = field(default=None, repr=False)
    client_cert: bytes | None = field(default=None, repr=False)
    client_key: bytes | None = field(default=None, repr=False)

    def endpoint(self) -> Endpoint:
        """The member as ``rest.Rest`` connects to it: always verified against the CA."""
        return Endpoint(
            self.server,
            ca_data=self.ca_data,
            token=self.token,
            cert_data=self.client_cert,
            key_data=self.client_key,
        )


def read_kubeconfig(text: str | bytes) -> MemberKubeconfig:
    """The member kubeconfig in ``text`` (a Secret's value), or KubeconfigError."""
    doc = _parse(text)
    if not isinstance(doc, dict):
        raise KubeconfigError("kubeconfig: expected a mapping at the top")
    for key in doc:
        if key not in TOP_LEVEL:
            raise KubeconfigError(f"kubeconfig: {_name(key)}: field not accepted")
    context = _current_context(doc)
    cluster_path, cluster = _named(doc, "clusters", "cluster", context.get("cluster"))
    user_path, user = _named(doc, "users", "user", context.get("user"))
    return MemberKubeconfig(**_cluster(cluster_path, cluster), **_user(user_path, user))


def _parse(text: str | bytes) -> Any:
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) > MAX_BYTES:
        raise KubeconfigError(f"kubeconfig: larger than {MAX_BYTES // 1024} KiB")
    failure = None
    try:
        source = raw.decode("utf-8")
        for event in yaml.parse(source, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                failure = "kubeconfig: YAML aliases are not accepted"
                break
        else:
            return yaml.safe_load(source)
    except UnicodeDecodeError:
        failure = "kubeconfig: not UTF-8 text"
    except yaml.YAMLError as exc:
        # The position only: PyYAML's own message quotes the offending line.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        failure = f"kubeconfig: malformed YAML{where}"
    except RecursionError:
        failure = "kubeconfig: nested too deeply"
    # Raised outside the handler so no exception holding the content is chained to it.
    raise KubeconfigError(failure)


def _current_context(doc: dict[str, Any]) -> dict[str, Any]:
    contexts = doc.get("contexts")
    if not isinstance(contexts, list) or not contexts:
        raise KubeconfigError("kubeconfig: contexts: at least one context is required")
    wanted = doc.get("current-context")
    if wanted in (None, "") and len(contexts) == 1:
        wanted = _obj(contexts[0], "contexts[0]").get("name")
    _, context = _named(doc, "contexts", "context", wanted)
    return context


def _named(doc: dict[str, Any], section: str, body: str, name: Any) -> tuple[str, dict[str, Any]]:
    """The ``body`` mapping of the entry of ``section`` called ``name``, and its path."""
    entries = doc.get(section)
    if not isinstance(entries, list):
        raise KubeconfigError(f"kubeconfig: {section}: expected a list")
    for i, entry in enumerate(entries):
        entry = _obj(entry, f"{section}[{i}]")
        if entry.get("name") == name:
            path = f"{section}[{i}].{body}"
            return path, _obj(entry.get(body), path)
    referrer = "current-context" if section == "contexts" else f"the context's {body}"
    raise KubeconfigError(f"kubeconfig: {section}: no entry named by {referrer}")


def _cluster(path: str, cluster: dict[str, Any]) -> dict[str, Any]:
    _only(path, cluster, CLUSTER_FIELDS)
    if cluster.get("insecure-skip-tls-verify", False) is not False:
        raise KubeconfigError(
            f"kubeconfig: {path}.insecure-skip-tls-verify: must be false: a member's "
            "certificate is always verified"
        )
    server = cluster.get("server")
    parts = urlsplit(server) if isinstance(server, str) else None
    if parts is None or parts.scheme != "https" or not parts.hostname:
        raise KubeconfigError(f"kubeconfig: {path}.server: must be an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise KubeconfigError(f"kubeconfig: {path}.server: credentials in the URL are refused")
    ca = cluster.get("certificate-authority-data")
    ca_pem = None
    if ca is not None:
        ca_pem = _base64(f"{path}.certificate-authority-data", ca).decode("ascii", "replace")
        if "-----BEGIN CERTIFICATE-----" not in ca_pem:
            raise KubeconfigError(
                f"kubeconfig: {path}.certificate-authority-data: not a PEM certificate"
            )
    return {"server": server, "ca_data": ca_pem}


def _user(path: str, user: dict[str, Any]) -> dict[str, Any]:
    _only(path, user, USER_FIELDS)
    token = user.get("token")
    if token is not None and (not isinstance(token, str) or not token.strip()):
        raise KubeconfigError(f"kubeconfig: {path}.token: must be a non-empty string")
    cert, key = user.get("client-certificate-data"), user.get("client-key-data")
    if (cert is None) != (key is None):
        raise KubeconfigError(
            f"kubeconfig: {path}: client-certificate-data and client-key-data go together"
        )
    if token is None and cert is None:
        raise KubeconfigError(
            f"kubeconfig: {path}: a token or client-certificate-data and client-key-data "
            "is required"
        )
    return {
        "token": token.strip() if token else None,
        "client_cert": _base64(f"{path}.client-certificate-data", cert) if cert else None,
        "client_key": _base64(f"{path}.client-key-data", key) if key else None,
    }


def _only(path: str, body: dict[str, Any], accepted: frozenset[str]) -> None:
    for key in body:
        if key in accepted:
            continue
        why = REFUSED.get(key, "field not accepted") if isinstance(key, str) else "not a name"
        raise KubeconfigError(f"kubeconfig: {path}.{_name(key)}: refused: {why}")


def _base64(path: str, value: Any) -> bytes:
    failure = f"kubeconfig: {path}: not base64 text"
    if isinstance(value, str):
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if decoded:
            return decoded
    raise KubeconfigError(failure)


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise KubeconfigError(f"kubeconfig: {path}: expected a mapping")
    return value


# Field names a kubeconfig may carry; only these are ever printed (a key could be a secret).
KNOWN_NAMES = (
    TOP_LEVEL
    | CLUSTER_FIELDS
    | USER_FIELDS
    | set(REFUSED)
    | {"extensions", "tls-server-name", "disable-compression", "namespace", "name"}
)


def _name(key: Any) -> str:
    return key if isinstance(key, str) and key in KNOWN_NAMES else "<an unknown field>"
