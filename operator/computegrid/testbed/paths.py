"""Where the test bed's binaries and fleets live, and the environment its tools run in.

Why a module of its own: the binaries are built by ``deploy/testbed/build.sh`` into a cache
outside git, keyed by the Kubernetes version, and every caller (``up``, the CLI, the test
fixtures) must agree on that place and must put it FIRST on ``PATH``: kwokctl runs
``kubectl`` from ``PATH``, and the Debian ``kubectl`` on developer machines is far older.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

# Kept in step with deploy/testbed/versions.env, which wins when this is a source checkout.
DEFAULT_VERSIONS = {"K8S_VERSION": "v1.36.3", "ETCD_VERSION": "v3.6.10", "KWOK_VERSION": "v0.8.0"}

BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "kwokctl",
)

_REPO_ROOT = Path(__file__).resolve().parents[3]


class BinariesMissingError(RuntimeError):
    """The control-plane binaries are not built: run ``make testbed-build``."""


def repo_root() -> Path | None:
    """The source checkout this package runs from, or None for an installed wheel."""
    return _REPO_ROOT if (_REPO_ROOT / "deploy" / "testbed").is_dir() else None


def versions() -> dict[str, str]:
    """The pinned versions: versions.env of the checkout, else the defaults above."""
    found = dict(DEFAULT_VERSIONS)
    root = repo_root()
    if root is not None:
        env_file = root / "deploy" / "testbed" / "versions.env"
        for line in env_file.read_text(encoding="utf-8").splitlines():
            match = re.fullmatch(r"\s*([A-Z0-9_]+)=(\S+)\s*", line)
            if match:
                found[match.group(1)] = match.group(2)
    return found


def cache_root() -> Path:
    """``$COMPUTEGRID_CACHE`` or ``~/.cache/computegrid``: shared by build.sh and the fleets."""
    configured = os.environ.get("COMPUTEGRID_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "computegrid"


def bin_dir() -> Path:
    """The versioned folder build.sh writes to (``$COMPUTEGRID_TESTBED_BIN`` overrides)."""
    configured = os.environ.get("COMPUTEGRID_TESTBED_BIN")
    if configured:
        return Path(configured)
    return cache_root() / f"k8s-{versions()['K8S_VERSION']}" / "bin"


def missing_binaries(directory: Path | None = None) -> list[str]:
    """Names of the binaries not (yet) in ``directory``; empty when the bed can start."""
    folder = directory or bin_dir()
    return [name for name in BINARIES if not os.access(folder / name, os.X_OK)]


def require_binaries() -> Path:
    """The bin folder, or a clear error naming what is missing and how to build it."""
    folder = bin_dir()
    missing = missing_binaries(folder)
    if missing:
        raise BinariesMissingError(
            f"test bed binaries missing in {folder}: {', '.join(missing)}; "
            "run `make testbed-build` (tens of minutes cold, seconds when cached)"
        )
    return folder


def fleets_root() -> Path:
    """Default parent of fleet work dirs: one folder per fleet name under the cache."""
    return cache_root() / "fleets"


@dataclass(frozen=True)
class ToolEnv:
    """The environment kwokctl and kubectl run in for one fleet."""

    bin_dir: Path
    kwok_workdir: Path

    def as_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["KWOK_WORKDIR"] = str(self.kwok_workdir)
        # kwokctl would add every new cluster to ~/.kube/config; the fleet keeps its own.
        env.pop("KUBECONFIG", None)
        return env
