"""Thin wrapper over the ``kwokctl`` binary (binary runtime, built binaries, own ports).

Why a wrapper: kwokctl picks the ports of a new cluster by scanning down from 32767 in each
process, so clusters created in parallel would collide. Every port is therefore reserved
here (``ports.reserve``: one machine-wide registry, so two fleets never share one) and
written into a per-cluster KwokctlConfiguration next to the Stages. ``--kubeconfig ""``
keeps kwokctl from touching ``~/.kube/config``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from computegrid.testbed import ports
from computegrid.testbed.paths import ToolEnv

PORT_KEYS = (
    "kubeApiserverPort",
    "etcdPort",
    "etcdPeerPort",
    "kubeControllerManagerPort",
    "kubeSchedulerPort",
    "kwokControllerPort",
)

# The hub only stores objects: no pods run there, so no scheduler and no fake kubelets.
HUB_DISABLED = ("kube-scheduler", "kwok-controller")
NODE_LEASE_SECONDS = 10


class KwokctlError(RuntimeError):
    """A kwokctl command failed; the message carries the tail of its output."""


@dataclass(frozen=True)
class ClusterSpec:
    """One kwok cluster to create."""

    cluster: str  # kwok cluster name (unique per KWOK_WORKDIR)
    ports: dict[str, int]
    disabled: tuple[str, ...] = ()


def port_sets(count: int, fleet: str, workdir: Path) -> list[dict[str, int]]:
    """One dict of component ports per cluster, all distinct and reserved for this fleet."""
    flat = ports.reserve(fleet, workdir, count * len(PORT_KEYS))
    return [
        dict(zip(PORT_KEYS, flat[i * len(PORT_KEYS) : (i + 1) * len(PORT_KEYS)], strict=True))
        for i in range(count)
    ]


def write_config(path: Path, spec: ClusterSpec, bin_dir: Path, stages_yaml: str) -> None:
    """The per-cluster kwokctl config: runtime, binaries, ports, then the Stages."""
    options: dict[str, Any] = {
        "runtime": "binary",
        "kubeApiserverBinary": str(bin_dir / "kube-apiserver"),
        "kubeControllerManagerBinary": str(bin_dir / "kube-controller-manager"),
        "kubeSchedulerBinary": str(bin_dir / "kube-scheduler"),
        "kwokControllerBinary": str(bin_dir / "kwok"),
        "etcdBinary": str(bin_dir / "etcd"),
        "kubectlBinary": str(bin_dir / "kubectl"),
        **spec.ports,
    }
    conf = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokctlConfiguration",
        "options": options,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(conf, sort_keys=False) + "---\n" + stages_yaml, "utf-8")


def run(env: ToolEnv, args: list[str], log: Path, timeout: float = 300.0) -> float:
    """Run ``kwokctl args`` appending its output to ``log``; returns the seconds it took."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ kwokctl {' '.join(args)}\n")
        out.flush()
        proc = subprocess.run(
            [str(env.bin_dir / "kwokctl"), *args],
            env=env.as_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-15:])
        raise KwokctlError(f"kwokctl {' '.join(args)} exited {proc.returncode}:\n{tail}")
    return time.monotonic() - started


def create(env: ToolEnv, spec: ClusterSpec, config: Path, log: Path) -> float:
    """Create and start one cluster; returns the seconds it took.

    ``--wait 0s``: kwokctl's own wait only logs a timeout (after 3 minutes) and succeeds
    anyway, so the caller waits instead, on every component's health (``supervise``).
    """
    args = ["--name", spec.cluster, "-c", str(config), "create", "cluster"]
    args += ["--runtime", "binary", "--kubeconfig", "", "--wait", "0s"]
    # kwok-controller holds one Lease per node; a restarted one has a new identity and must
    # wait out the old lease before it manages the nodes (and their pods) again. kwokctl's
    # default (40 s x heartbeat factor 5 = 200 s) would leave a restarted member's pods
    # Pending for minutes; 10 s leases renewed every 2.5 s cost nothing at this size.
    args += ["--heartbeat-factor", "1", "--node-lease-duration-seconds", str(NODE_LEASE_SECONDS)]
    # Each cluster runs exactly one kube-controller-manager and one kube-scheduler, so leader
    # election protects against nothing here, while its deadlines (renew within 10 s of a
    # 15 s lease) are what killed them on a loaded machine: a lease update that took longer
    # than 10 s made the component exit with "leaderelection lost". Longer deadlines would
    # only move that line; without election there is no lease to lose. (Their other start-up
    # exit, "failed to wait for apiserver being healthy", is a fixed 10 s wait in
    # kube-controller-manager with no flag: ``supervise`` restarts it once the API answers.)
    for component in ("kube-controller-manager", "kube-scheduler"):
        if component not in spec.disabled:
            args += ["--extra-args", f"{component}=leader-elect=false"]
    for component in spec.disabled:
        args += ["--disable", component]
    return run(env, args, log)


def delete(env: ToolEnv, cluster: str, log: Path) -> None:
    """Delete one cluster; if kwokctl cannot, end its processes by their pid files."""
    # delete insists on a kubeconfig to prune: give it a scratch file, never ~/.kube/config.
    scratch = env.kwok_workdir / "scratch-kubeconfig.yaml"
    try:
        run(env, ["--name", cluster, "delete", "cluster", "--kubeconfig", str(scratch)], log, 120)
    except (KwokctlError, subprocess.TimeoutExpired):
        kill_by_pid_files(cluster_dir(env, cluster))


def kill_by_pid_files(folder: Path) -> None:
    """SIGTERM then SIGKILL each component whose pid file is in ``folder/pids``."""
    pids = []
    for pid_file in sorted((folder / "pids").glob("*.pid")):
        try:
            pids.append(int(pid_file.read_text().strip()))
        except (OSError, ValueError):
            continue
    kill(pids)


def kill(pids: list[int], grace: float = 2.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds for those still there."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        if sig == signal.SIGTERM and pids:
            time.sleep(grace)


def stop(env: ToolEnv, cluster: str, log: Path) -> None:
    run(env, ["--name", cluster, "stop", "cluster"], log, timeout=120)


def start(env: ToolEnv, cluster: str, log: Path) -> None:
    """Start every component of the cluster that is not running (running ones are kept)."""
    # No --wait: like create's, it would only log a timeout; the caller probes health.
    run(env, ["--name", cluster, "start", "cluster"], log, timeout=240)


def kubeconfig_path(env: ToolEnv, cluster: str) -> Path:
    """Where kwokctl writes a cluster's kubeconfig (server on 127.0.0.1)."""
    return env.kwok_workdir / "clusters" / cluster / "kubeconfig.yaml"


def cluster_dir(env: ToolEnv, cluster: str) -> Path:
    return env.kwok_workdir / "clusters" / cluster
