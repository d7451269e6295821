"""The fault proxy's mechanics against a small HTTPS upstream of the test's own (seconds).

Why a stand-in upstream here: these tests pin the proxy's own behaviour (TLS both ways,
credentials, streaming, each fault) quickly and without the test bed; the same faults are
proved against a real kube-apiserver in tests/integration/test_faultproxy.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from aiohttp import web
from tests.tools.faultproxy import RESUMED_WATCH, FaultProxy, Rule, make_serving_cert, resource_of

TOKEN = "s3cret-token"


class Upstream:
    """An HTTPS server that checks the bearer token, stores POSTs and streams a watch."""

    def __init__(self, workdir: Path) -> None:
        self.ca, cert, key = make_serving_cert(workdir)
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.stored: list[dict[str, Any]] = []
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self.ctx)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.ready.set()
        self.loop.run_forever()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        if request.query.get("watch") == "true":
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            with contextlib.suppress(ConnectionResetError):  # the proxy cut the stream
                for n in range(1000):
                    await response.write(json.dumps({"type": "ADDED", "n": n}).encode() + b"\n")
                    await asyncio.sleep(0.05)
            return response
        if request.method == "POST":
            if request.headers.get("Content-Type", "application/json") != "application/json":
                return web.json_response({"kind": "Status", "code": 415}, status=415)
            self.stored.append(json.loads(await request.read()))
            return web.json_response(self.stored[-1], status=201)
        return web.json_response({"kind": "List", "items": self.stored})

    def kubeconfig(self) -> str:
        ca = base64.b64encode(self.ca.read_bytes()).decode()
        return yaml.safe_dump(
            {
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": f"https://127.0.0.1:{self.port}",
                            "certificate-authority-data": ca,
                        },
                    }
                ],
                "users": [{"name": "u", "user": {"token": TOKEN}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    return Upstream(tmp_path_factory.mktemp("upstream"))


@pytest.fixture
def proxy(upstream: Upstream, tmp_path: Path) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.kubeconfig(), tmp_path) as p:
        yield p


def http(proxy: FaultProxy) -> urllib3.PoolManager:
    """A client that trusts only the proxy's CA (from the kubeconfig the proxy emits)."""
    doc = yaml.safe_load(proxy.kubeconfig_text())
    ca = base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
    assert doc["users"][0]["user"] == {"token": TOKEN}
    return urllib3.PoolManager(ca_cert_data=ca, retries=False, timeout=5)


def test_forwards_with_upstream_credentials_and_counts(proxy: FaultProxy) -> None:
    client = http(proxy)
    path = "/api/v1/namespaces/ns/configmaps"
    # No Content-Type, as the kubernetes client sends it: the proxy must not invent one.
    created = client.request("POST", proxy.url + path, body=b'{"metadata": {"name": "a"}}')
    listed = client.request("GET", proxy.url + path)
    assert created.status == 201
    assert listed.status == 200
    assert {"metadata": {"name": "a"}} in listed.json()["items"]
    assert proxy.summary()["requests"] == {"GET configmaps": 1, "POST configmaps": 1}


def test_drop_response_forwards_then_resets(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.drop_response("POST", r"/configmaps$", count=1)
    client = http(proxy)
    url = proxy.url + "/api/v1/namespaces/ns/configmaps"
    with pytest.raises(urllib3.exceptions.ProtocolError):
        client.request("POST", url, json={"metadata": {"name": "dropped"}})
    assert {"metadata": {"name": "dropped"}} in upstream.stored  # the upstream acted
    assert client.request("POST", url, json={"metadata": {"name": "b"}}).status == 201  # count=1
    assert proxy.summary()["faults"] == {"drop_response": 1}


def test_status_answers_without_forwarding(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.status(429, "POST")
    before = len(upstream.stored)
    answer = http(proxy).request("POST", proxy.url + "/api/v1/namespaces/ns/configmaps", json={})
    assert answer.status == 429
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()["reason"] == "TooManyRequests"
    assert len(upstream.stored) == before
    with pytest.raises(ValueError, match="code must be an HTTP error"):
        proxy.status(200)


def test_delay_holds_requests(proxy: FaultProxy) -> None:
    proxy.delay(0.6, "GET")
    started = time.monotonic()
    assert http(proxy).request("GET", proxy.url + "/api/v1/nodes").status == 200
    assert time.monotonic() - started >= 0.6


def test_watch_streams_and_is_cut(proxy: FaultProxy) -> None:
    url = proxy.url + "/api/v1/namespaces/ns/configmaps?watch=true"
    answer = http(proxy).request("GET", url, preload_content=False)
    lines = answer.stream(1024)
    first = next(lines)  # arrives long before the stream ends: nothing is buffered
    assert b'"n": 0' in first
    assert proxy.reset_watches() == 1
    with pytest.raises(urllib3.exceptions.ProtocolError):
        for _ in lines:
            pass


def test_partition_refuses_then_resumes(proxy: FaultProxy) -> None:
    client = http(proxy)
    url = proxy.url + "/api/v1/nodes"
    proxy.partition(True)
    with pytest.raises(urllib3.exceptions.HTTPError):
        client.request("GET", url)
    proxy.partition(False)
    assert client.request("GET", url).status == 200


def test_resource_of_names_verbs_and_subresources() -> None:
    assert resource_of("/apis/batch/v1/namespaces/a/jobs", "") == ("", "jobs")
    assert resource_of("/apis/batch/v1/namespaces/a/jobs/j/status", "") == ("", "jobs/status")
    assert resource_of("/api/v1/pods", "watch=true&rv=1") == ("WATCH", "pods")
    assert resource_of("/api/v1/namespaces/a", "") == ("", "namespaces")
    assert resource_of("/readyz", "") == ("", "/readyz")
    assert resource_of("/apis/batch/v1", "") == ("", "/apis/batch/v1")


def test_partition_hang_holds_until_resumed(proxy: FaultProxy) -> None:
    client = http(proxy)
    url = proxy.url + "/api/v1/nodes"
    proxy.partition(True, mode="hang")
    with pytest.raises(urllib3.exceptions.HTTPError):  # read timeout: nothing answers
        client.request("GET", url, timeout=urllib3.Timeout(connect=2, read=0.5))
    proxy.partition(False)
    assert client.request("GET", url).status == 200


def test_a_resumed_watch_gets_an_in_stream_410_once_then_is_forwarded(proxy: FaultProxy) -> None:
    """As kube-apiserver answers a watch from a resourceVersion it has compacted away: 200, one
    ERROR event carrying a Status with code 410, end of stream (the client must relist)."""
    rule = proxy.watch_gone(r"/configmaps$", count=1)
    client = http(proxy)
    base = proxy.url + "/api/v1/namespaces/ns/configmaps"
    listed = client.request("GET", base + "?resourceVersion=42")  # a list, not a watch
    assert listed.status == 200 and listed.json()["kind"] == "List"
    fresh = client.request("GET", base + "?watch=true", preload_content=False)
    assert b'"ADDED"' in next(fresh.stream(1024))  # a watch without a version: forwarded
    proxy.reset_watches()
    gone = client.request("GET", base + "?allowWatchBookmarks=true&resourceVersion=42&watch=true")
    assert gone.status == 200 and gone.headers["Content-Type"].startswith("application/json")
    [line] = gone.data.decode().splitlines()  # one event, then the stream ends
    event = json.loads(line)
    assert event["type"] == "ERROR"
    assert event["object"]["kind"] == "Status" and event["object"]["code"] == 410
    assert event["object"]["reason"] == "Expired"
    assert "too old resource version: 42" in event["object"]["message"]
    again = client.request("GET", base + "?resourceVersion=42&watch=true", preload_content=False)
    assert b'"ADDED"' in next(again.stream(1024))  # count=1: the next resume is forwarded
    proxy.reset_watches()
    assert rule.hits == 1 and proxy.summary()["faults"] == {"watch_gone": 1}


@pytest.mark.parametrize(
    ("query", "matched"),
    [
        ("watch=true&resourceVersion=5", True),
        ("resourceVersion=5&allowWatchBookmarks=true&watch=true&timeoutSeconds=120", True),
        ("watch=1&resourceVersion=5", True),
        ("watch=true", False),  # a fresh watch
        ("watch=true&resourceVersion=", False),  # no version to be too old
        ("resourceVersion=5", False),  # a list at a version
        ("watch=false&resourceVersion=5", False),
        ("watch=trueish&resourceVersion=5", False),
    ],
)
def test_the_resumed_watch_rule_is_matched_on_the_query(query: str, matched: bool) -> None:
    rule = Rule(
        "watch_gone",
        re.compile("GET"),
        re.compile("/computejobs$"),
        query=re.compile(RESUMED_WATCH),
    )
    assert rule.matches("GET", "/apis/computegrid.io/v1alpha1/computejobs", query) == matched
    assert not rule.matches("GET", "/api/v1/pods", query)
    assert Rule("status", re.compile(".*"), re.compile(".*")).matches("GET", "/x", query)
