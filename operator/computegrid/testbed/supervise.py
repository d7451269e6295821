"""Bring every component of one cluster to healthy: restart what exited, a bounded number
of times, and say why it exited (its log tail).

Why: kwokctl starts the components and returns; on a loaded machine a component can exit
during start-up (kube-controller-manager gives the API server a fixed 10 s to answer) or
later (a killed process, an out-of-memory kill). ``up`` runs this after creating a cluster,
``repair`` and ``start_member`` after starting a stopped one. kwokctl's ``start cluster``
starts only the components whose process is gone, on the same ports and with the same etcd
data folder, so restarting never loses the cluster's objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from computegrid.testbed import health, kwokctl
from computegrid.testbed.paths import ToolEnv

START_ATTEMPTS = 3
SETTLE_SECONDS = 120.0  # a loaded 2-core machine took up to ~60 s to serve a new API server


@dataclass(frozen=True)
class Restart:
    """One component restarted by ``settle``, and why."""

    cluster: str
    component: str
    attempt: int
    reason: str  # "exited" or "hung: <what its endpoint said>"
    log_tail: str  # the end of its log before the restart: why it exited

    def describe(self) -> str:
        tail = "\n".join(f"      | {line}" for line in self.log_tail.splitlines()[-6:])
        return (
            f"  {self.cluster}: restarting {self.component} "
            f"(attempt {self.attempt}/{START_ATTEMPTS}; {self.reason}); its log ended:\n{tail}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ComponentsUnhealthyError(RuntimeError):
    """Components of a cluster stayed down or unhealthy; the message has their log tails."""

    def __init__(self, cluster: str, failing: list[health.ComponentHealth], why: str) -> None:
        self.cluster = cluster
        self.failing = failing
        parts = [f"cluster {cluster}: {why}"]
        for item in failing:
            parts.append(f"  {item.name} (pid {item.pid}): {item.detail}; log {item.log}:")
            tail = health.log_tail(Path(item.log))
            parts.extend(f"    | {line}" for line in tail.splitlines())
        super().__init__("\n".join(parts))


def settle(
    env: ToolEnv,
    cluster: str,
    ports: dict[str, int],
    kubeconfig: Path,
    log: Path,
    *,
    timeout: float = SETTLE_SECONDS,
    attempts: int = START_ATTEMPTS,
    restart_hung: bool = False,
    say: Callable[[str], object] | None = None,
) -> list[Restart]:
    """Wait until every component is running and healthy, restarting those that exit.

    A component still running but unhealthy after ``timeout`` is restarted too when
    ``restart_hung`` (``repair``: the earliest in start-up order only, since the later ones
    may just be waiting on it); otherwise the error names it. Raises
    ComponentsUnhealthyError after ``attempts`` restarts or when the time is up.
    """
    folder = kwokctl.cluster_dir(env, cluster)
    restarts: list[Restart] = []
    used = 0
    deadline = time.monotonic() + timeout
    while True:
        found = health.probe(folder, ports, kubeconfig)
        if not found:
            raise ComponentsUnhealthyError(cluster, [], f"no components known in {folder}")
        failing = [item for item in found if not item.ok]
        if not failing:
            return restarts
        to_start = [(item, "exited") for item in failing if not item.running]
        timed_out = time.monotonic() >= deadline
        if not to_start and timed_out and restart_hung and used < attempts:
            hung = failing[0]
            if hung.pid is not None:
                kwokctl.kill([hung.pid])
            to_start = [(hung, f"hung: {hung.detail}")]
        if to_start:
            if used >= attempts:
                raise ComponentsUnhealthyError(
                    cluster, failing, f"still failing after {attempts} restarts"
                )
            used += 1
            for item, reason in to_start:
                restart = Restart(cluster, item.name, used, reason, health.log_tail(Path(item.log)))
                restarts.append(restart)
                if say is not None:
                    say(restart.describe())
            for item, _ in to_start:
                # kwokctl skips a component whose recorded pid still answers kill(pid, 0), as
                # a zombie that init has not reaped yet does: forget that pid first.
                pid_file = folder / "pids" / f"{health.BY_NAME[item.name].binary}.pid"
                pid_file.unlink(missing_ok=True)
            kwokctl.start(env, cluster, log)
            deadline = max(deadline, time.monotonic() + timeout / 2)
            continue
        if timed_out:
            raise ComponentsUnhealthyError(cluster, failing, f"not healthy within {timeout:.0f}s")
        time.sleep(1.0)
