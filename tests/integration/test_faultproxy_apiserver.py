"""The fault proxy in front of a real member API server of the test fleet.

Why: the dispatch loop's fault suites trust the proxy to do exactly what it says to a real
kube-apiserver through the real kubernetes client (TLS both ways, client certificates,
chunked watches). Each fault is checked here from both ends: what the client saw and what
the API server behind the proxy holds.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from tests.tools.faultproxy import FaultProxy, restore_member_route, route_member_through
from urllib3.exceptions import HTTPError

from computegrid import testbed


@pytest.fixture
def proxied(fleet: testbed.FleetInfo, tmp_path: Path) -> Iterator[tuple[FaultProxy, Any]]:
    """A proxy in front of the first member and a kubernetes ApiClient that goes through it."""
    member = fleet.members[0]
    with FaultProxy.from_kubeconfig(member.kubeconfig, workdir=tmp_path / "proxy") as proxy:
        configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(proxy.write_kubeconfig(tmp_path / "proxied.kubeconfig")),
            client_configuration=configuration,
        )
        configuration.retries = 0  # the proxy's faults, not urllib3's retries, are tested
        api = client.ApiClient(configuration)
        yield proxy, api
        api.close()


def configmap(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": {"k": "v"}}


def test_lists_nodes_through_the_proxy(
    proxied: tuple[FaultProxy, Any], fleet: testbed.FleetInfo
) -> None:
    proxy, api = proxied
    names = {n.metadata.name for n in client.CoreV1Api(api).list_node().items}
    assert names == set(fleet.members[0].nodes)
    assert proxy.requests_seen("GET nodes") == 1
    assert proxy.upstream.server == fleet.members[0].server


def test_dropped_create_raises_but_the_object_exists(
    proxied: tuple[FaultProxy, Any], member_apis: dict[str, Any], namespace: str
) -> None:
    proxy, api = proxied
    proxy.drop_response("POST", r"/namespaces/[^/]+/configmaps$", count=1)
    with pytest.raises((HTTPError, ConnectionError)):
        client.CoreV1Api(api).create_namespaced_config_map(namespace, configmap("ambiguous"))
    upstream = client.CoreV1Api(member_apis[proxy_member(proxy, member_apis)])
    assert upstream.read_namespaced_config_map("ambiguous", namespace).data == {"k": "v"}
    assert proxy.summary()["faults"] == {"drop_response": 1}


def test_injected_504_is_answered_without_forwarding(
    proxied: tuple[FaultProxy, Any], member_apis: dict[str, Any], namespace: str
) -> None:
    proxy, api = proxied
    proxy.status(504, "POST")
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(api).create_namespaced_config_map(namespace, configmap("never"))
    assert caught.value.status == 504
    upstream = client.CoreV1Api(member_apis[proxy_member(proxy, member_apis)])
    assert (
        upstream.list_namespaced_config_map(namespace, field_selector="metadata.name=never").items
        == []
    )


def test_a_watch_streams_events_and_is_cut_by_reset(
    proxied: tuple[FaultProxy, Any], member_apis: dict[str, Any], namespace: str
) -> None:
    proxy, api = proxied
    events: list[str] = []
    ended: list[BaseException | None] = []
    seen = threading.Event()  # not just any first event: kube-root-ca.crt may come first

    def follow() -> None:
        try:
            for event in watch.Watch().stream(
                client.CoreV1Api(api).list_namespaced_config_map, namespace, timeout_seconds=120
            ):
                events.append(f"{event['type']} {event['object'].metadata.name}")
                if event["object"].metadata.name == "watched":
                    seen.set()
            ended.append(None)
        except Exception as exc:
            ended.append(exc)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    upstream = client.CoreV1Api(member_apis[proxy_member(proxy, member_apis)])
    # The watch may connect after this create: its initial list then reports it as ADDED too.
    upstream.create_namespaced_config_map(namespace, configmap("watched"))
    assert seen.wait(30), f"no event of 'watched' through the proxy; saw {events}"
    assert "ADDED watched" in events
    assert proxy.reset_watches() == 1
    follower.join(timeout=30)
    assert not follower.is_alive(), "the watch was not cut"
    assert ended and ended[0] is not None  # cut mid-stream: an error, not a clean end


def test_partition_fails_calls_until_it_ends(proxied: tuple[FaultProxy, Any]) -> None:
    proxy, api = proxied
    core = client.CoreV1Api(api)
    for mode in ("refuse", "hang"):
        proxy.partition(True, mode=mode)
        with pytest.raises((HTTPError, ConnectionError)):
            core.list_node(_request_timeout=2)
        proxy.partition(False)
        assert core.list_node(_request_timeout=10).items


def proxy_member(proxy: FaultProxy, member_apis: dict[str, Any]) -> str:
    """The member whose API server the proxy forwards to."""
    for name, api in member_apis.items():
        if api.configuration.host.rstrip("/") == proxy.upstream.server:
            return name
    raise AssertionError(f"no member at {proxy.upstream.server}")


def test_the_hub_secret_routes_a_member_through_the_proxy(
    proxied: tuple[FaultProxy, Any], fleet: testbed.FleetInfo, hub_api: Any
) -> None:
    proxy, _ = proxied
    member = fleet.members[0].name
    core = client.CoreV1Api(hub_api)

    def via_secret() -> Any:
        secret = core.read_namespaced_secret(member, fleet.secret_namespace)
        text = base64.b64decode(secret.data["kubeconfig"]).decode()
        return config.new_client_from_config_dict(yaml.safe_load(text))

    route_member_through(proxy, hub_api, fleet, member)
    try:
        before = proxy.requests_seen("GET nodes")
        assert client.CoreV1Api(via_secret()).list_node().items
        assert proxy.requests_seen("GET nodes") == before + 1  # it went through the proxy
    finally:
        restore_member_route(hub_api, fleet, member)
    assert client.CoreV1Api(via_secret()).list_node().items
    assert proxy.requests_seen("GET nodes") == before + 1  # and now it does not
