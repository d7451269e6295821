"""The strict member kubeconfig reader: what it accepts, what it refuses, what it never says."""

from __future__ import annotations

import base64
import ssl
import subprocess
import tempfile
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


@pytest.fixture(scope="module")
def client_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A real self-signed certificate and its key (PEM), as a member Secret would inline."""
    folder = tmp_path_factory.mktemp("pair")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=computegrid-test",
         "-keyout", str(folder / "k.pem"), "-out", str(folder / "c.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return (folder / "c.pem").read_text("ascii"), (folder / "k.pem").read_text("ascii")


def test_a_client_certificate_is_loaded_and_its_files_removed_at_once(
    client_pair: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key is on disk only for the one load: a SIGKILLed operator leaves nothing behind."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cert, key = client_pair
    user = {"client-certificate-data": b64(cert), "client-key-data": b64(key)}
    member = read_kubeconfig(text(kubeconfig(user=user)))
    assert key not in repr(member) and key not in repr(member.endpoint())
    pool = member.endpoint().pool(2).connection_pool_kw
    context = pool["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert "key_file" not in pool and "cert_file" not in pool
    assert list(tmp_path.iterdir()) == []  # neither the files nor their folder remain


def test_a_certificate_that_is_not_a_pair_is_one_line_naming_the_fields(
    client_pair: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    user = {"client-certificate-data": b64(client_pair[0]), "client-key-data": b64(KEY)}
    member = read_kubeconfig(text(kubeconfig(user=user)))
    with pytest.raises(ValueError, match="client-certificate-data/client-key-data") as caught:
        member.endpoint().pool(2)
    assert KEY not in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert list(tmp_path.iterdir()) == []


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


def test_a_member_pool_holds_every_call_at_once_and_the_watch() -> None:
    """The member thread pool's calls and the Job watch's long-lived connection all fit: a
    33rd connection was opened and discarded once a minute when the pool held exactly 32."""
    from computegrid.fleet.client import KubeMemberClient
    from computegrid.fleet.registry import Fleet

    member = KubeMemberClient.from_kubeconfig("m", text(kubeconfig()))
    fleet = Fleet(None, hub_name="hub")
    try:
        calls_at_once = fleet.pool._max_workers
        assert member.rest.pool.connection_pool_kw["maxsize"] >= calls_at_once + 1
    finally:
        fleet.pool.shutdown()
