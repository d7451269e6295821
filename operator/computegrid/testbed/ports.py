"""Port reservations and fleet locks shared by every fleet on this machine.

Why: a fleet's ports are chosen before kwokctl starts its components, so between "this port
is free" and "etcd listens on it" another fleet starting at the same moment could pick the
same port. Every choice is therefore made under one machine-wide lock (``fcntl.flock`` on a
file under the cache root) and recorded in a reservation file per fleet work dir, which
later choices avoid until ``down`` releases it. A record whose work dir is gone (a deleted
pytest temp dir) is stale and dropped.

Ports come from below the kernel's ephemeral range: a port in that range that a stopped
component left free could be taken as the local port of any outgoing connection before
``repair`` restarts the component; below it only a listener can take it. kwokctl's own port
scan (used only when a port is not given, never here) counts down from 32767, so the range
stops well short of that.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import random
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from computegrid.testbed.paths import cache_root

PORT_RANGE = (20000, 30000)  # [low, high): below kwokctl's scan and Linux's ephemeral range
LOCK_WAIT_SECONDS = 60.0


class FleetBusyError(RuntimeError):
    """Another command is changing the same fleet right now."""


class PortsExhaustedError(RuntimeError):
    """Not enough free, unreserved ports in the range."""


def registry_dir() -> Path:
    """``<cache>/testbed-registry``: the reservations and locks of every fleet."""
    return cache_root() / "testbed-registry"


def fleet_key(workdir: Path) -> str:
    """A fleet is its work dir (names may repeat across temp dirs); a short stable key."""
    return hashlib.sha256(str(workdir.resolve()).encode()).hexdigest()[:16]


@contextmanager
def _registry_lock() -> Iterator[IO[str]]:
    """Hold the machine-wide lock of the registry, waiting up to LOCK_WAIT_SECONDS."""
    path = registry_dir() / "ports.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def fleet_lock(name: str, workdir: Path) -> Iterator[None]:
    """Only one ``up``/``repair``/``down`` at a time per fleet; a second one fails at once.

    The lock file is removed on release (no litter of one file per temp-dir fleet); a holder
    that locked a file just removed sees that it is no longer the one at the path, and
    takes the new one.
    """
    path = registry_dir() / f"{fleet_key(workdir)}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        with path.open("a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise FleetBusyError(
                    f"fleet {name!r} ({workdir}) is being changed by pid {holder}; try again later"
                ) from exc
            try:
                if not path.exists() or os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino:
                    continue  # locked a file the previous holder just removed
                handle.seek(0)
                handle.truncate()
                handle.write(f"{os.getpid()} {name}\n")
                handle.flush()
                try:
                    yield
                finally:
                    path.unlink(missing_ok=True)
                return
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _records() -> dict[Path, dict[str, object]]:
    found = {}
    for path in sorted(registry_dir().glob("*.ports.json")):
        with suppress(OSError, ValueError):
            found[path] = json.loads(path.read_text(encoding="utf-8"))
    return found


def _is_free(port: int) -> bool:
    """Nothing listens on ``port`` on any address (binding the wildcard checks them all)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))  # every address: a listener on any one conflicts
        except OSError:
            return False
    return True


def reserve(name: str, workdir: Path, count: int) -> list[int]:
    """``count`` distinct free ports for the fleet in ``workdir``, recorded until ``release``.

    Raises ValueError when another fleet name already holds ``workdir`` (two fleets never
    share a folder), PortsExhaustedError when the range has too few free ports.
    """
    work = workdir.resolve()
    mine = registry_dir() / f"{fleet_key(work)}.ports.json"
    with _registry_lock():
        taken: set[int] = set()
        for path, record in _records().items():
            owner = Path(str(record.get("workdir", "")))
            if path == mine:
                if record.get("name") != name and owner.is_dir():
                    raise ValueError(
                        f"workdir {work} belongs to fleet {record.get('name')!r}, not {name!r}"
                    )
                continue
            if not owner.is_dir():  # its fleet's folder is gone: a stale record
                path.unlink(missing_ok=True)
                continue
            taken.update(int(p) for p in record.get("ports", []))  # type: ignore[attr-defined]
        low, high = PORT_RANGE
        candidates = [p for p in range(low, high) if p not in taken]
        random.shuffle(candidates)  # two fleets' scans should not walk the same order
        ports: list[int] = []
        for port in candidates:
            if _is_free(port):
                ports.append(port)
                if len(ports) == count:
                    break
        if len(ports) < count:
            raise PortsExhaustedError(
                f"only {len(ports)} free ports of {count} in {low}-{high - 1} "
                f"({len(taken)} reserved by other fleets)"
            )
        record = {"name": name, "workdir": str(work), "ports": ports, "pid": os.getpid()}
        mine.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return ports


def owner(workdir: Path) -> str | None:
    """The fleet name holding a reservation for ``workdir``, if any."""
    path = registry_dir() / f"{fleet_key(workdir)}.ports.json"
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["name"])
    except (OSError, ValueError, KeyError):
        return None


def reserved(workdir: Path) -> list[int]:
    """The ports recorded for the fleet in ``workdir`` (empty when none)."""
    path = registry_dir() / f"{fleet_key(workdir)}.ports.json"
    try:
        return [int(p) for p in json.loads(path.read_text(encoding="utf-8"))["ports"]]
    except (OSError, ValueError, KeyError):
        return []


def release(workdir: Path) -> None:
    """Forget the fleet's reservation (``down`` calls this once its processes are gone)."""
    with _registry_lock():
        (registry_dir() / f"{fleet_key(workdir)}.ports.json").unlink(missing_ok=True)
