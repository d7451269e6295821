"""Component probes of the test bed against stand-ins: a renamed process and local endpoints.

Why: ``status`` must not call a component alive because some process holds its recorded pid,
nor healthy because a port answers; the integration tests kill the real components, these
pin down the rules cheaply (a recycled pid, a zombie, an endpoint saying no).
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from computegrid.testbed import health

ETCD = health.BY_NAME["etcd"]
KWOK = health.BY_NAME["kwok-controller"]


class _Handler(http.server.BaseHTTPRequestHandler):
    replies: ClassVar[dict[str, tuple[int, str]]] = {}

    def do_GET(self) -> None:
        code, body = self.replies.get(self.path, (404, "no"))
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[int, dict[str, tuple[int, str]]]]:
    replies: ClassVar[dict[str, tuple[int, str]]] = {}
    handler = type("H", (_Handler,), {"replies": replies})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], replies
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def fake_etcd(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process whose program is named ``etcd`` (a copy of sleep), with a kwokctl pid file."""
    exe = tmp_path / "bin" / "etcd"
    exe.parent.mkdir()
    sleep = shutil.which("sleep")
    assert sleep is not None
    shutil.copy(sleep, exe)
    proc = subprocess.Popen([str(exe), "60"])
    deadline = time.monotonic() + 5
    while b"etcd" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():  # exec has happened
        assert time.monotonic() < deadline
        time.sleep(0.01)
    (tmp_path / "pids").mkdir()
    (tmp_path / "pids" / "etcd.pid").write_text(str(proc.pid))
    (tmp_path / "kwok.yaml").write_text(
        yaml.safe_dump({"kind": "KwokctlConfiguration", "components": [{"name": "etcd"}]})
    )
    yield proc
    proc.kill()
    proc.wait()


def test_a_pid_counts_only_while_it_runs_the_components_binary(
    fake_etcd: subprocess.Popen[bytes],
) -> None:
    assert health.process_runs(fake_etcd.pid, "etcd")
    assert not health.process_runs(fake_etcd.pid, "kube-apiserver")  # a recycled pid
    fake_etcd.kill()
    stat = Path(f"/proc/{fake_etcd.pid}/stat")
    deadline = time.monotonic() + 5
    while "Z" not in stat.read_text().rsplit(")", 1)[-1].split()[:1]:  # SIGKILL lands
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert not health.process_runs(fake_etcd.pid, "etcd")  # a zombie until reaped
    fake_etcd.wait()
    assert not health.process_runs(fake_etcd.pid, "etcd")


def test_endpoint_rules(server: tuple[int, dict[str, tuple[int, str]]]) -> None:
    port, replies = server
    replies["/health"] = (200, '{"health":"true","reason":""}')
    assert health.probe_endpoint(ETCD, port, None, 2) == (True, "ok")
    replies["/health"] = (200, '{"health":"false","reason":"RAFT NO LEADER"}')
    healthy, detail = health.probe_endpoint(ETCD, port, None, 2)
    assert not healthy and "RAFT NO LEADER" in detail
    replies["/healthz"] = (500, "[+]ping ok\n[-]informer-sync failed: not synced\nhealthz failed")
    healthy, detail = health.probe_endpoint(KWOK, port, None, 2)
    assert not healthy and "HTTP 500" in detail and "informer-sync failed" in detail
    replies["/healthz"] = (200, "ok")
    assert health.probe_endpoint(KWOK, port, None, 2) == (True, "ok")


def test_probe_combines_process_and_endpoint(
    tmp_path: Path,
    fake_etcd: subprocess.Popen[bytes],
    server: tuple[int, dict[str, tuple[int, str]]],
) -> None:
    port, replies = server
    replies["/health"] = (200, '{"health":"true"}')
    (item,) = health.probe(tmp_path, {"etcdPort": port}, None)
    assert item.name == "etcd" and item.ok and item.pid == fake_etcd.pid
    fake_etcd.kill()
    fake_etcd.wait()
    (item,) = health.probe(tmp_path, {"etcdPort": port}, None)  # the port still answers
    assert not item.ok and not item.running and item.detail == "process not running"


def test_log_tail_reads_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(5000)))
    assert health.log_tail(log, 3).splitlines() == ["line 4997", "line 4998", "line 4999"]
    assert health.log_tail(tmp_path / "missing.log").startswith("(no log:")
