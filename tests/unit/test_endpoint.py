"""fleet.endpoint: the hub's credentials from the operator's kubeconfig or its service
account, and an operator process that never imports the ``kubernetes`` package."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from computegrid.fleet import endpoint as ep
from computegrid.fleet.endpoint import Authorization, Endpoint, EndpointError, hub_endpoint


def write_kubeconfig(folder: Path, user: dict[str, object], cluster: dict[str, object]) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "hub",
        "clusters": [{"name": "hub", "cluster": {"server": "https://127.0.0.1:6443/", **cluster}}],
        "users": [{"name": "me", "user": user}],
        "contexts": [{"name": "hub", "context": {"cluster": "hub", "user": "me"}}],
    }
    path = folder / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_a_kubeconfig_with_files_resolves_them_next_to_it(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path,
        {"client-certificate": "pki/me.crt", "client-key": "pki/me.key"},
        {"certificate-authority": "pki/ca.crt"},
    )
    hub = hub_endpoint(str(path))
    assert hub.server == "https://127.0.0.1:6443"
    assert hub.ca_file == str(tmp_path / "pki/ca.crt")
    assert (hub.cert_file, hub.key_file) == (
        str(tmp_path / "pki/me.crt"),
        str(tmp_path / "pki/me.key"),
    )
    assert not hub.insecure and hub.token is None


def test_a_kubeconfig_with_inline_data_and_a_token(tmp_path: Path) -> None:
    ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    path = write_kubeconfig(
        tmp_path,
        {"token": "t0ken-marker"},
        {"certificate-authority-data": base64.b64encode(ca.encode()).decode()},
    )
    hub = hub_endpoint(str(path))
    assert hub.ca_data == ca and hub.token == "t0ken-marker"
    assert "t0ken-marker" not in repr(hub)
    assert Authorization(hub).header() == "Bearer t0ken-marker"


@pytest.mark.parametrize("plugin", ["exec", "auth-provider"])
def test_plugins_are_refused_naming_the_field(tmp_path: Path, plugin: str) -> None:
    path = write_kubeconfig(tmp_path, {plugin: {"command": "x"}}, {})
    with pytest.raises(EndpointError, match=rf"users\[\]\.user\.{plugin}: not supported"):
        hub_endpoint(str(path))


def test_unreadable_kubeconfig_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("clusters: [\n  token: secret-marker", encoding="utf-8")
    with pytest.raises(EndpointError) as caught:
        hub_endpoint(str(path))
    assert "secret-marker" not in str(caught.value) and "\n" not in str(caught.value)


def test_in_a_pod_the_service_account_is_used_and_its_token_reread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setattr(ep, "SERVICE_ACCOUNT", tmp_path)
    (tmp_path / "token").write_text("first\n", encoding="utf-8")
    hub = hub_endpoint(None)
    assert hub.server == "https://10.96.0.1:443" and hub.ca_file == str(tmp_path / "ca.crt")
    auth = Authorization(hub)
    assert auth.header() == "Bearer first"
    (tmp_path / "token").write_text("rotated", encoding="utf-8")
    assert auth.header() == "Bearer first"  # not re-read on every request
    monkeypatch.setattr(ep, "TOKEN_REREAD_S", 0.0)
    time.sleep(0.01)
    assert auth.header() == "Bearer rotated"


def test_outside_a_pod_without_kubeconfig_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(EndpointError, match="KUBERNETES_SERVICE_HOST"):
        hub_endpoint(None)


def test_a_plain_http_endpoint_builds_a_pool_without_tls_options() -> None:
    pool = Endpoint("http://127.0.0.1:8080").pool(3)
    assert "cert_reqs" not in pool.connection_pool_kw
    assert pool.connection_pool_kw["maxsize"] == 3


def test_the_operator_process_never_imports_the_kubernetes_package() -> None:
    """The operator's modules and Kopf load without it (it cost start-up time and memory)."""
    code = (
        "import sys, computegrid.handlers.operator, computegrid.cli.run; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('kubernetes', 'kubernetes_asyncio', 'pykube')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
