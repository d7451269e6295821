"""A fault-injecting HTTPS proxy in front of one kube-apiserver of the test bed.

Why: the dispatch loop's proofs (issue 12) need faults a real network and a real API server
produce only by luck: a create the member stored whose response never arrived, 429/5xx
answers, a 30 s stall, a watch cut mid-stream, a partition. The proxy terminates TLS with a
CA of its own (so it can see and answer HTTP), forwards to the real API server over TLS with
the original kubeconfig's client credentials, streams every response as it arrives (watches
included), and switches faults on and off while a test runs.

Use from a test::

    with FaultProxy.from_kubeconfig(member.kubeconfig) as proxy:
        kube.put_secret(hub, ns, member.name, {"kubeconfig": proxy.kubeconfig_text()}, labels)
        proxy.drop_response("POST", r"/apis/batch/v1/namespaces/[^/]+/jobs$", count=1)
        proxy.watch_gone(r"/computejobs$", count=1)  # the next resumed watch: 410, relist
        ...
        proxy.summary()  # requests per (verb, resource), faults injected

or by hand: ``python -m tests.tools.faultproxy --kubeconfig X --listen 127.0.0.1:0
--out-kubeconfig Y`` (faults then come from the test's code only; the CLI forwards).

Every fault method is thread-safe: rules live behind a lock and connection-level actions are
handed to the proxy's own event loop (a background thread).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import yaml
from aiohttp import web

from computegrid.testbed import FleetInfo, kube

STALL_SECONDS = 30.0
#: The query of a watch resumed from a resourceVersion (either order of the parameters).
RESUMED_WATCH = r"^(?=.*(?:^|&)watch=(?:true|1)(?:&|$))(?=.*(?:^|&)resourceVersion=[^&]+)"
# Hop-by-hop headers (RFC 9110 §7.6.1) and those aiohttp sets itself: never copied across.
_HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
        "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length",
    )
)  # fmt: skip
_REASONS = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class Upstream:
    """Where and how to reach the real API server (from a kubeconfig's current context)."""

    server: str
    ca_file: Path | None
    insecure: bool
    cert_file: Path | None
    key_file: Path | None
    token: str | None
    user: dict[str, Any]  # the kubeconfig's user entry, re-emitted for the proxy's clients

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert_file and self.key_file:
            ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx


def _material(body: dict[str, Any], name: str, base: Path, out: Path) -> tuple[Path | None, str]:
    """A file holding ``name`` (given as ``name`` or ``name-data``) and its base64 data."""
    if body.get(f"{name}-data"):
        data = base64.b64decode(body[f"{name}-data"])
    elif body.get(name):
        data = (base / str(body[name])).read_bytes()
    else:
        return None, ""
    out.write_bytes(data)
    out.chmod(0o600)
    return out, base64.b64encode(data).decode("ascii")


def upstream_from_kubeconfig(text: str, base: Path, workdir: Path) -> Upstream:
    """Parse a kubeconfig's current context; file references are relative to ``base``."""
    doc = yaml.safe_load(text) or {}
    contexts = {c["name"]: c["context"] for c in doc.get("contexts") or []}
    current = doc.get("current-context") or next(iter(contexts), None)
    if current not in contexts:
        raise ValueError(f"kubeconfig: current-context {current!r} is not among its contexts")
    ctx = contexts[current]
    clusters = {c["name"]: c["cluster"] for c in doc.get("clusters") or []}
    users = {u["name"]: u.get("user") or {} for u in doc.get("users") or []}
    if ctx.get("cluster") not in clusters:
        raise ValueError(f"kubeconfig: context {current!r} names an unknown cluster")
    cluster = clusters[ctx["cluster"]]
    user = users.get(ctx.get("user"), {})
    ca, _ = _material(cluster, "certificate-authority", base, workdir / "upstream-ca.crt")
    cert, cert_b64 = _material(user, "client-certificate", base, workdir / "client.crt")
    key, key_b64 = _material(user, "client-key", base, workdir / "client.key")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (base / str(user["tokenFile"])).read_text(encoding="utf-8").strip()
    emitted: dict[str, Any] = {}
    if cert_b64 and key_b64:
        emitted = {"client-certificate-data": cert_b64, "client-key-data": key_b64}
    if token:
        emitted["token"] = token
    return Upstream(
        server=str(cluster["server"]).rstrip("/"),
        ca_file=ca,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        cert_file=cert,
        key_file=key,
        token=token,
        user=emitted,
    )


def make_serving_cert(workdir: Path, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for ``host`` (openssl CLI; no extra deps).

    ``cryptography`` is not in the lock, and the openssl binary is on every test machine.
    """
    ca_key, ca_crt = workdir / "proxy-ca.key", workdir / "proxy-ca.crt"
    key, csr, crt = workdir / "proxy.key", workdir / "proxy.csr", workdir / "proxy.crt"
    ext = workdir / "proxy.ext"
    ext.write_text(
        f"subjectAltName=IP:{host},DNS:localhost\n"
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n",
        encoding="utf-8",
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    commands = [
        ["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_crt, "-days", "2",
         "-subj", "/CN=faultproxy-ca"],
        ["openssl", "req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=faultproxy"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
         "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext],
    ]  # fmt: skip
    for cmd in commands:
        done = subprocess.run([str(c) for c in cmd], capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"openssl failed: {done.stderr.decode(errors='replace').strip()}")
    return ca_crt, crt, key


# --------------------------------------------------------------------------- faults


@dataclass
class Rule:
    """One fault: applies to requests whose method, path and (if given) raw query string match,
    ``count`` times (None: ∞)."""

    kind: str  # "drop_response" | "status" | "delay" | "watch_gone"
    method: re.Pattern[str]
    path: re.Pattern[str]
    count: int | None = None
    code: int = 0
    seconds: float = 0.0
    retry_after: int = 1
    hits: int = 0
    query: re.Pattern[str] | None = None

    def matches(self, method: str, path: str, query: str = "") -> bool:
        return bool(
            self.method.fullmatch(method)
            and self.path.search(path)
            and (self.query is None or self.query.search(query))
        )


def resource_of(path: str, query: str) -> tuple[str, str]:
    """(verb, resource[/subresource]) of an API request path, kube-apiserver style.

    ``GET`` of a collection with ``watch=true`` is ``WATCH``; non-resource paths (``/version``,
    ``/readyz``) keep their path.
    """
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return "", path
    if not rest:  # discovery (/api, /apis/<group>/<version>)
        return "", path
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]  # a namespaced resource
    elif rest[:1] == ["namespaces"]:
        return "", "namespaces"  # the namespaces collection or one namespace
    watch = parse_qs(query).get("watch", [""])[0] in ("true", "1")
    if rest[:1] == ["watch"]:  # the legacy /watch/ prefix
        rest, watch = rest[1:], True
    resource = rest[0] if rest else ""
    if len(rest) >= 3:
        resource += "/" + rest[2]
    return ("WATCH" if watch else ""), resource


def _status_body(code: int, message: str) -> dict[str, Any]:
    """A ``metav1.Status`` as the API server writes it for this code."""
    reason = _REASONS.get(code, "InternalError")
    if code == 410:
        reason = "Expired"  # what a resourceVersion the server no longer has gets
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"retryAfterSeconds": 1} if code == 429 else {},
        "code": code,
    }


# --------------------------------------------------------------------------- the proxy


@dataclass
class _Stats:
    requests: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    watches_reset: int = 0


class FaultProxy:
    """The proxy; ``start()`` runs it in a background thread, ``stop()`` ends it."""

    def __init__(
        self,
        kubeconfig_text: str,
        base: Path,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        workdir: Path | None = None,
    ) -> None:
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="faultproxy-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.upstream = upstream_from_kubeconfig(kubeconfig_text, base, self.workdir)
        self.ca_file, self._cert, self._key = make_serving_cert(self.workdir, listen_host)
        self.host, self.port = listen_host, listen_port
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._stats = _Stats()
        self._partition: str | None = None  # None | "refuse" | "hang"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._session: aiohttp.ClientSession | None = None
        self._watches: dict[int, tuple[asyncio.Transport | None, aiohttp.ClientResponse]] = {}
        self._resumed: asyncio.Event | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | Path, **kwargs: Any) -> FaultProxy:
        path = Path(path)
        return cls(path.read_text(encoding="utf-8"), path.parent, **kwargs)

    # ---- lifecycle

    def start(self, timeout: float = 15.0) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="faultproxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("faultproxy did not start in time")
        if self._error is not None:
            raise RuntimeError(f"faultproxy failed to start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            # A request still stalled (the 30 s fault) or a watch held open can keep a
            # graceful shutdown waiting: give it 15 s, then stop the loop regardless.
            with contextlib.suppress(TimeoutError):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=15)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def kubeconfig_text(self) -> str:
        """A kubeconfig for the proxy: its CA, the upstream's client credentials, inline."""
        ca = base64.b64encode(self.ca_file.read_bytes()).decode("ascii")
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "faultproxy",
                    "cluster": {"server": self.url, "certificate-authority-data": ca},
                }
            ],
            "users": [{"name": "faultproxy", "user": dict(self.upstream.user)}],
            "contexts": [
                {"name": "faultproxy", "context": {"cluster": "faultproxy", "user": "faultproxy"}}
            ],
            "current-context": "faultproxy",
        }
        return str(yaml.safe_dump(doc, sort_keys=False))

    def write_kubeconfig(self, path: str | Path) -> Path:
        out = Path(path)
        out.write_text(self.kubeconfig_text(), encoding="utf-8")
        out.chmod(0o600)
        return out

    # ---- faults (thread-safe)

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    @staticmethod
    def _rule(
        kind: str, method: str, path: str, count: int | None, query: str | None = None, **kw: Any
    ) -> Rule:
        compiled = None if query is None else re.compile(query)
        return Rule(kind, re.compile(method, re.I), re.compile(path), count, query=compiled, **kw)

    def drop_response(self, method: str = ".*", path: str = ".*", count: int | None = None) -> Rule:
        """Forward matching requests, then reset the client's connection without an answer."""
        return self._add(self._rule("drop_response", method, path, count))

    def status(
        self,
        code: int,
        method: str = ".*",
        path: str = ".*",
        count: int | None = None,
        retry_after: int = 1,
    ) -> Rule:
        """Answer matching requests with ``code`` and a Status body, without forwarding."""
        if not 400 <= code <= 599:
            raise ValueError(f"status: code must be an HTTP error (400-599), got {code}")
        return self._add(
            self._rule("status", method, path, count, code=code, retry_after=retry_after)
        )

    def delay(
        self, seconds: float, method: str = ".*", path: str = ".*", count: int | None = None
    ) -> Rule:
        """Hold matching requests ``seconds`` before forwarding them (other faults still apply)."""
        if seconds < 0:
            raise ValueError(f"delay: seconds must be >= 0, got {seconds}")
        return self._add(self._rule("delay", method, path, count, seconds=seconds))

    def watch_gone(
        self, path: str = ".*", count: int | None = None, query: str = RESUMED_WATCH
    ) -> Rule:
        """Answer matching watches as the API server answers one resumed from a resourceVersion
        it no longer has (compacted): ``200``, one event ``{"type": "ERROR", "object": <Status
        code 410, reason Expired>}``, then the end of the stream, without forwarding.

        The default ``query`` matches only a watch that carries ``resourceVersion=`` (a resume,
        or the watch after a list), so the client must list afresh, and a list reports no
        deletions: what happened while it was not watching is not delivered as events.
        """
        return self._add(self._rule("watch_gone", "GET", path, count, query=query, code=410))

    def stall(self, method: str = ".*", path: str = ".*", count: int | None = None) -> Rule:
        """A 30 s delay: longer than the usual client request timeout."""
        return self.delay(STALL_SECONDS, method, path, count)

    def remove(self, rule: Rule) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r is not rule]

    def clear(self) -> None:
        """Remove every fault rule (a partition stays as it is)."""
        with self._lock:
            self._rules = []

    def reset_watches(self) -> int:
        """Cut every open watch stream now (connection reset); returns how many were cut."""
        return int(self._call(self._reset_watches))

    def partition(self, on: bool, mode: str = "refuse") -> None:
        """Stop forwarding anything (``on``) or resume.

        ``refuse``: the listener closes, so new connections are refused; ``hang``: requests are
        accepted and held without an answer until the partition ends, then their connection is
        reset (as a timed-out TCP path looks). Either way every open connection is cut at once.
        """
        if mode not in ("refuse", "hang"):
            raise ValueError(f"partition: mode must be 'refuse' or 'hang', got {mode!r}")
        self._call(lambda: self._set_partition(mode if on else None))

    def summary(self) -> dict[str, Any]:
        """Requests seen per "VERB resource" and faults injected, for the JSON summaries."""
        with self._lock:
            return {
                "upstream": self.upstream.server,
                "requests": dict(sorted(self._stats.requests.items())),
                "faults": dict(sorted(self._stats.faults.items())),
                "watches_reset": self._stats.watches_reset,
                "partitioned": self._partition,
            }

    def requests_seen(self, key: str) -> int:
        """How many requests of this "VERB resource" (e.g. "POST jobs") have arrived."""
        with self._lock:
            return self._stats.requests[key]

    # ---- the event loop side

    def _call(self, fn: Any) -> Any:
        loop = self._loop
        if loop is None:
            raise RuntimeError("faultproxy is not running")

        async def run() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=15)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _startup(self) -> None:
        self._resumed = asyncio.Event()
        self._resumed.set()
        connector = aiohttp.TCPConnector(ssl=self.upstream.ssl_context(), limit=0)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None)
        )
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await self._listen()

    def _server_ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self._cert), str(self._key))
        return ctx

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(
            self._runner, self.host, self.port, ssl_context=self._server_ssl(), reuse_address=True
        )
        await self._site.start()
        if self.port == 0:  # learn the port the OS chose, and keep it across partitions
            server = self._site._server
            assert isinstance(server, asyncio.base_events.Server)
            self.port = int(server.sockets[0].getsockname()[1])

    async def _shutdown(self) -> None:
        self._reset_watches()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def _cut_connections(self) -> None:
        server = self._runner.server if self._runner else None
        for conn in server.connections if server else []:
            conn.force_close()

    def _reset_watches(self) -> int:
        cut = 0
        for transport, upstream in list(self._watches.values()):
            if transport is not None:
                transport.abort()
            upstream.close()
            cut += 1
        self._watches.clear()
        with self._lock:
            self._stats.watches_reset += cut
        return cut

    async def _set_partition(self, mode: str | None) -> None:
        assert self._resumed is not None
        with self._lock:
            before, self._partition = self._partition, mode
        if mode is not None and before is None:
            self._resumed.clear()
            self._reset_watches()
            if mode == "refuse" and self._site is not None:
                await self._site.stop()
                self._site = None
            self._cut_connections()
        elif mode is None and before is not None:
            if self._site is None:
                await self._listen()
            self._resumed.set()

    def _pick(self, method: str, path: str, query: str = "") -> tuple[float, Rule | None]:
        """Total delay and the terminal fault (status/drop/gone) for this request; counts them."""
        with self._lock:
            delay, terminal = 0.0, None
            for rule in self._rules:
                if not rule.matches(method, path, query) or (terminal and rule.kind != "delay"):
                    continue
                rule.hits += 1
                if rule.count is not None:
                    rule.count -= 1
                self._stats.faults[
                    rule.kind if rule.kind != "status" else f"status_{rule.code}"
                ] += 1
                if rule.kind == "delay":
                    delay += rule.seconds
                else:
                    terminal = rule
            self._rules = [r for r in self._rules if r.count is None or r.count > 0]
            return delay, terminal

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self._resumed is not None and self._session is not None
        split = urlsplit(str(request.rel_url))
        verb, resource = resource_of(split.path, split.query)
        with self._lock:
            self._stats.requests[f"{verb or request.method} {resource}"] += 1
            partitioned = self._partition
        if partitioned:  # "hang": hold until the partition ends, then reset
            await self._resumed.wait()
            return self._abort(request)
        delay, fault = self._pick(request.method, split.path, split.query)
        if delay:
            await asyncio.sleep(delay)
        if fault is not None and fault.kind == "watch_gone":
            return await self._gone(request, split.query)
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": str(fault.retry_after)} if fault.code == 429 else {}
            status = _status_body(fault.code, f"faultproxy: injected {fault.code}")
            return web.json_response(status, status=fault.code, headers=headers)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        if self.upstream.token:
            headers["Authorization"] = f"Bearer {self.upstream.token}"
        upstream = await self._session.request(
            request.method,
            self.upstream.server + str(request.rel_url),
            headers=headers,
            data=body or None,
            allow_redirects=False,
            # As sent: the kubernetes client may omit Content-Type, which the API server reads
            # as JSON; aiohttp's default (octet-stream) would be refused with a 415.
            skip_auto_headers=("Content-Type",),
        )
        try:
            if fault is not None:  # drop_response: the upstream acted, the client never hears
                await upstream.read()
                return self._abort(request)
            return await self._relay(request, upstream, watch=verb == "WATCH")
        finally:
            upstream.release()

    async def _gone(self, request: web.Request, query: str) -> web.StreamResponse:
        """A watch answered with an in-stream 410, as kube-apiserver does for a resourceVersion
        older than its history (the "too old resource version" ERROR event)."""
        since = parse_qs(query).get("resourceVersion", ["0"])[0]
        status = _status_body(410, f"too old resource version: {since} (faultproxy: injected)")
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
        await response.write_eof()
        return response

    def _abort(self, request: web.Request) -> web.StreamResponse:
        """Reset the client's connection; aiohttp finds it closed and writes nothing."""
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=204)

    async def _relay(
        self, request: web.Request, upstream: aiohttp.ClientResponse, *, watch: bool
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for key, value in upstream.headers.items():
            if key.lower() not in _HOP_BY_HOP:
                response.headers.add(key, value)
        if upstream.content_length is not None and not watch:
            response.content_length = upstream.content_length
        else:
            response.enable_chunked_encoding()
        watch_id = id(response)
        if watch:
            self._watches[watch_id] = (request.transport, upstream)
        try:
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():  # as it arrives: no buffering
                await response.write(chunk)
            await response.write_eof()
        except (aiohttp.ClientError, ConnectionError):  # cut by reset_watches or a partition
            if request.transport is not None:
                request.transport.abort()
        finally:
            self._watches.pop(watch_id, None)
        return response


# --------------------------------------------------------------------------- test bed wiring


def _secret_labels(info: FleetInfo, member: str) -> dict[str, str]:
    return {"computegrid.io/fleet": info.name, "computegrid.io/member": member}


def route_member_through(proxy: FaultProxy, hub_api: Any, info: FleetInfo, member: str) -> None:
    """Point the hub's kubeconfig Secret of ``member`` at the proxy (the operator re-reads it)."""
    info.member(member)  # KeyError naming the member when the fleet has none of that name
    text = proxy.kubeconfig_text()
    kube.put_secret(
        hub_api, info.secret_namespace, member, {"kubeconfig": text}, _secret_labels(info, member)
    )


def restore_member_route(hub_api: Any, info: FleetInfo, member: str) -> None:
    """Put back the Secret the test bed wrote: the member's own API server, no proxy."""
    text = kube.inline_kubeconfig(Path(info.member(member).kubeconfig))
    kube.put_secret(
        hub_api, info.secret_namespace, member, {"kubeconfig": text}, _secret_labels(info, member)
    )


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.tools.faultproxy",
        description="A TLS-terminating proxy in front of one API server (no faults from the CLI).",
    )
    parser.add_argument("--kubeconfig", required=True, type=Path, help="the upstream's kubeconfig")
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port (port 0: any free)")
    parser.add_argument("--out-kubeconfig", type=Path, help="write the proxy's kubeconfig here")
    parser.add_argument("--summary-every", type=float, default=0.0, help="print counters every N s")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"--listen: expected host:port, got {args.listen!r}")
    if not args.kubeconfig.is_file():
        parser.error(f"--kubeconfig: no such file {args.kubeconfig}")
    proxy = FaultProxy.from_kubeconfig(args.kubeconfig, listen_host=host, listen_port=int(port))
    proxy.start()
    if args.out_kubeconfig:
        proxy.write_kubeconfig(args.out_kubeconfig)
    print(json.dumps({"url": proxy.url, "kubeconfig": str(args.out_kubeconfig or "")}), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(args.summary_every or 3600):
        if args.summary_every:
            print(json.dumps(proxy.summary()), flush=True)
    proxy.stop()
    print(json.dumps(proxy.summary()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
