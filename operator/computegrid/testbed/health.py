"""Is each component of a kwok cluster alive and healthy? From its process and its endpoint.

Why both: a process can be alive and hung (an API server that no longer answers), and an
endpoint can answer from a process that is not ours (a port another fleet took over after
ours died). So a component is ok only when the pid kwokctl recorded for it runs the expected
binary AND its health endpoint on the fleet's port says ok. The endpoints are the ones each
component serves: etcd ``/health`` (JSON ``{"health": "true"}``), kube-apiserver ``/readyz``
(which includes its etcd check), kube-controller-manager and kube-scheduler ``/healthz``
(kwokctl lets anyone read those paths), kwok's ``/healthz``.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

LOG_TAIL_LINES = 12
_TAIL_BYTES = 16384


@dataclass(frozen=True)
class Component:
    """How to find and probe one kind of component."""

    name: str  # kwokctl's component name, as in --disable
    binary: str  # the pid and log files are named after the program kwokctl runs
    port_key: str  # the KwokctlConfiguration option holding its port
    scheme: str
    path: str


# In start-up order: each depends on the ones before it.
COMPONENTS = (
    Component("etcd", "etcd", "etcdPort", "http", "/health"),
    Component("kube-apiserver", "kube-apiserver", "kubeApiserverPort", "https", "/readyz"),
    Component(
        "kube-controller-manager",
        "kube-controller-manager",
        "kubeControllerManagerPort",
        "https",
        "/healthz",
    ),
    Component("kube-scheduler", "kube-scheduler", "kubeSchedulerPort", "https", "/healthz"),
    Component("kwok-controller", "kwok-controller", "kwokControllerPort", "http", "/healthz"),
)
BY_NAME = {c.name: c for c in COMPONENTS}


@dataclass(frozen=True)
class ComponentHealth:
    """One component of one cluster, as probed now."""

    name: str
    pid: int | None
    running: bool  # the recorded pid is alive and runs this component's binary
    healthy: bool  # its health endpoint answered ok
    detail: str  # "ok", or what is wrong
    log: str  # path of its log file

    @property
    def ok(self) -> bool:
        return self.running and self.healthy

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def components_of(cluster_dir: Path) -> list[Component]:
    """The components kwokctl runs for this cluster, from its saved ``kwok.yaml``."""
    names: list[str] = []
    config = cluster_dir / "kwok.yaml"
    if config.exists():
        for doc in yaml.safe_load_all(config.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "KwokctlConfiguration":
                names = [str(c.get("name")) for c in doc.get("components") or []]
    return [c for c in COMPONENTS if c.name in names]


def pid_of(cluster_dir: Path, component: Component) -> int | None:
    try:
        return int((cluster_dir / "pids" / f"{component.binary}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def log_of(cluster_dir: Path, component: Component) -> Path:
    return cluster_dir / "logs" / f"{component.binary}.log"


def process_runs(pid: int, binary: str) -> bool:
    """``pid`` is alive (not a zombie) and its program is ``binary``.

    The name check guards against a recycled pid: kwokctl's pid file outlives its process.
    """
    proc = Path("/proc") / str(pid)
    if not Path("/proc/self").exists():  # no procfs (macOS): liveness only
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        argv0 = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
        # A dying process has no cmdline left; its name (cut to 15 bytes) is still there.
        comm = (proc / "comm").read_text().strip()
        # Every thread: a killed Go program's main thread is a zombie a moment before the
        # others are gone, and until then they still hold its listening port.
        states = [_state(task / "stat") for task in (proc / "task").iterdir()]
    except OSError:
        return False
    alive = any(state not in ("Z", "X", "") for state in states)
    return alive and (Path(argv0).name == binary if argv0 else comm == binary[:15])


def _state(stat: Path) -> str:
    try:
        return stat.read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return ""


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log (read from its end; logs can be large)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _TAIL_BYTES))
            text = handle.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(no log: {exc.strerror})"
    return "\n".join(text.splitlines()[-lines:])


def _tls_context(kubeconfig: Path | None) -> ssl.SSLContext:
    """Loopback endpoints with kwokctl's self-signed certificates: no verification (and no
    system CA bundle to load); the API server gets the cluster's client certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if kubeconfig is not None and kubeconfig.exists():
        doc = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
        user = (doc.get("users") or [{}])[0].get("user") or {}
        cert, key = user.get("client-certificate"), user.get("client-key")
        if cert and key:
            context.load_cert_chain(kubeconfig.parent / cert, kubeconfig.parent / key)
    return context


def _get(url: str, context: ssl.SSLContext | None, timeout: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
        return str(response.read(4096).decode("utf-8", "replace").strip())


def server_version(port: int, kubeconfig: Path, timeout: float = 3.0) -> str | None:
    """The API server's ``/version`` gitVersion, or None when it does not answer."""
    try:
        body = _get(f"https://127.0.0.1:{port}/version", _tls_context(kubeconfig), timeout)
        return str(json.loads(body)["gitVersion"])
    except (OSError, ValueError, KeyError):
        return None


def probe_endpoint(
    component: Component, port: int, kubeconfig: Path | None, timeout: float
) -> tuple[bool, str]:
    """(healthy, detail) from the component's health endpoint on 127.0.0.1:``port``."""
    url = f"{component.scheme}://127.0.0.1:{port}{component.path}"
    context = None
    if component.scheme == "https":
        context = _tls_context(kubeconfig if component.name == "kube-apiserver" else None)
    try:
        body = _get(url, context, timeout)
    except urllib.error.HTTPError as exc:
        text = exc.read(300).decode("utf-8", "replace").strip().splitlines()
        failing = [line for line in text if "failed" in line] or text[-1:]
        return False, f"{component.path} HTTP {exc.code}: {'; '.join(failing)[:200]}"
    except (OSError, ValueError) as exc:  # refused, timed out, TLS: not answering
        reason = getattr(exc, "reason", exc)
        return False, f"{component.path} not answering: {reason}"
    if component.name == "etcd":
        try:
            healthy = json.loads(body).get("health") == "true"
        except ValueError:
            healthy = False
    else:
        healthy = body == "ok"
    return healthy, "ok" if healthy else f"{component.path} says {body[:200]!r}"


def probe(
    cluster_dir: Path,
    ports: dict[str, int],
    kubeconfig: Path | None,
    timeout: float = 3.0,
) -> list[ComponentHealth]:
    """Every component of one cluster, in start-up order."""
    found = []
    for component in components_of(cluster_dir):
        pid = pid_of(cluster_dir, component)
        running = pid is not None and process_runs(pid, component.binary)
        if running:
            healthy, detail = probe_endpoint(
                component, ports[component.port_key], kubeconfig, timeout
            )
        else:
            healthy = False
            detail = "process not running" if pid is not None else "never started (no pid file)"
        found.append(
            ComponentHealth(
                name=component.name,
                pid=pid,
                running=running,
                healthy=healthy,
                detail=detail,
                log=str(log_of(cluster_dir, component)),
            )
        )
    return found
