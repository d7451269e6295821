"""The strict member kubeconfig reader: what it accepts, what it refuses, what it never says."""

from __future__ import annotations

import base64
import gc
import os
import ssl
import traceback
from pathlib import Path
from typing import Any

import pytest
import yaml

from computegrid.fleet.kubeconfig import KubeconfigError, read_kubeconfig
from computegrid.fleet.rest import Rest

# Marker strings standing for secret content: none may ever appear in an error.
TOKEN = "MARKER-TOKEN-7f3a9c"
KEY = "MARKER-KEY-2b8e41"
PASSWORD = "MARKER-PASSWORD-c0ffee"
COMMAND = "MARKER-COMMAND-d15ea5e"
MARKERS = (TOKEN, KEY, PASSWORD, COMMAND, "MARKER")

CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kubeconfig(
    cluster: dict[str, Any] | None = None, user: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "m",
                "cluster": cluster
                if cluster is not None
                else {"server": "https://10.0.0.1:6443", "certificate-authority-data": b64(CA_PEM)},
            }
        ],
        "users": [{"name": "op", "user": user if user is not None else {"token": TOKEN}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "m", "user": "op"}}],
        "current-context": "ctx",
        "preferences": {},
    }


def text(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc)


def assert_no_secret(exc: BaseException) -> None:
    """Neither the message, nor repr, nor any traceback line carries a marker."""
    rendered = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)
    for marker in MARKERS:
        assert marker not in rendered
    assert exc.__cause__ is None and exc.__context__ is None


def test_a_token_kubeconfig_builds_a_verified_endpoint() -> None:
    member = read_kubeconfig(text(kubeconfig()))
    assert TOKEN not in repr(member)
    endpoint = member.endpoint()
    assert TOKEN not in repr(endpoint)
    assert endpoint.server == "https://10.0.0.1:6443" and endpoint.ca_data == CA_PEM
    assert not endpoint.insecure and endpoint.cert_data is None
    rest = Rest(endpoint)
    assert rest._headers()["Authorization"] == f"Bearer {TOKEN}"
    pool = rest.pool.connection_pool_kw
    assert pool["cert_reqs"] == ssl.CERT_REQUIRED and pool["ca_cert_data"] == CA_PEM
    assert "cert_file" not in pool and pool["retries"].total is False


def test_a_client_certificate_goes_to_files_only_this_user_reads() -> None:
    user = {"client-certificate-data": b64("CERT"), "client-key-data": b64(KEY)}
    member = read_kubeconfig(text(kubeconfig(user=user)))
    assert KEY not in repr(member) and KEY not in repr(member.endpoint())
    pool = member.endpoint().pool(2)
    key_file = pool.connection_pool_kw["key_file"]
    assert Path(key_file).read_text(encoding="ascii") == KEY
    assert os.stat(key_file).st_mode & 0o077 == 0
    assert os.stat(os.path.dirname(key_file)).st_mode & 0o077 == 0
    del pool  # the files go with the pool
    gc.collect()
    assert not Path(key_file).exists()


@pytest.mark.parametrize(
    ("cluster", "user", "field"),
    [
        (None, {"exec": {"command": COMMAND, "apiVersion": "x"}}, "users[0].user.exec: refused"),
        (
            None,
            {"auth-provider": {"name": "oidc", "config": {"id-token": TOKEN}}},
            "user.auth-provider",
        ),
        (
            None,
            {"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"},
            "user.tokenFile",
        ),
        (
            None,
            {"client-certificate": "/etc/x.crt", "client-key": "/etc/x.key"},
            "user.client-certificate",
        ),
        (None, {"username": "admin", "password": PASSWORD}, "user.password: refused"),
        (None, {"token": TOKEN, "as": "system:admin"}, "user.as: refused"),
        (None, {"token": TOKEN, TOKEN: "x"}, "user.<an unknown field>: refused"),
        (None, {"client-key-data": b64(KEY)}, "go together"),
        (None, {}, "a token or client-certificate-data"),
        (None, {"token": ""}, "user.token: must be a non-empty string"),
        (
            None,
            {"client-certificate-data": "x", "client-key-data": KEY},
            "client-certificate-data: not base64",
        ),
        (
            {"server": "https://a", "certificate-authority": "/ca.crt"},
            None,
            "cluster.certificate-authority: refused",
        ),
        (
            {"server": "https://a", "insecure-skip-tls-verify": True},
            None,
            "insecure-skip-tls-verify: must be false",
        ),
        ({"server": "https://a", "proxy-url": "http://evil"}, None, "cluster.proxy-url: refused"),
        ({"server": "http://10.0.0.1"}, None, "cluster.server: must be an https:// URL"),
        ({"server": f"https://u:{PASSWORD}@10.0.0.1"}, None, "credentials in the URL are refused"),
        (
            {"server": "https://a", "certificate-authority-data": b64(KEY)},
            None,
            "not a PEM certificate",
        ),
        ({"server": "https://a", "certificate-authority-data": KEY + "!"}, None, "not base64"),
    ],
)
def test_refusals_name_the_field_and_never_the_secret(
    cluster: dict[str, Any] | None, user: dict[str, Any] | None, field: str
) -> None:
    with pytest.raises(KubeconfigError) as info:
        read_kubeconfig(text(kubeconfig(cluster, user)))
    assert field in str(info.value)
    assert_no_secret(info.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (f"users:\n- name: op\n  user: {{token: {TOKEN}\n  bad: [", "malformed YAML at line"),
        (f"token: '{TOKEN}\n", "malformed YAML at line"),
        (f"a: &x {TOKEN}\nb: *x\n", "YAML aliases are not accepted"),
        (f"- {TOKEN}\n", "expected a mapping at the top"),
        (f"{TOKEN}: 1\n", "kubeconfig: <an unknown field>: field not accepted"),
        ("clusters: []\nusers: []\ncontexts: []\n", "at least one context"),
        (b"\xff\xfe" + TOKEN.encode(), "not UTF-8"),
        ("[" * 3000 + TOKEN, "kubeconfig: "),
        ("x: " + "A" * (300 * 1024), "larger than"),
    ],
)
def test_malformed_text_is_located_never_quoted(raw: str | bytes, message: str) -> None:
    with pytest.raises(KubeconfigError) as info:
        read_kubeconfig(raw)
    assert message in str(info.value)
    assert_no_secret(info.value)


def test_the_current_context_chooses_the_cluster_and_user() -> None:
    doc = kubeconfig()
    doc["clusters"].insert(0, {"name": "other", "cluster": {"server": "https://other"}})
    doc["users"].insert(0, {"name": "other", "user": {"exec": {"command": COMMAND}}})
    assert read_kubeconfig(text(doc)).server == "https://10.0.0.1:6443"  # the others unread
    doc["current-context"] = "nope"
    with pytest.raises(KubeconfigError, match="no entry named by current-context"):
        read_kubeconfig(text(doc))
