"""Two fleets started at the same moment both come up, each on its own ports and folder.

Why: test sessions of several worktrees, a developer's own fleet and CI run side by side on
one machine; ports used to be chosen by each ``up`` alone, so two started together could
pick the same one and one fleet would lose a component. Both are started as real
``computegrid testbed up`` processes (hub + 1 member each, to stay quick), released at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from computegrid import testbed

BASE = os.environ.get("COMPUTEGRID_TEST_FLEET", "cgtest")
NAMES = (f"{BASE}2a", f"{BASE}2b")


def test_two_fleets_started_together_come_up_on_their_own_ports(
    tmp_path: Path, testbed_binaries: None
) -> None:
    workdirs = {name: tmp_path / name for name in NAMES}
    command = [sys.executable, "-m", "computegrid.cli", "testbed", "up", "--fresh"]
    command += ["--members", "1", "--nodes-per-member", "1"]
    procs = {
        name: subprocess.Popen(
            [*command, "--name", name, "--workdir", str(workdir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, workdir in workdirs.items()
    }
    try:
        outputs = {name: proc.communicate(timeout=420)[0] for name, proc in procs.items()}
        for name, proc in procs.items():
            assert proc.returncode == 0, f"{name}:\n{outputs[name]}"
        infos = [testbed.load(name, workdirs[name]) for name in NAMES]
        used = [sorted(p for c in info.clusters for p in c.ports.values()) for info in infos]
        assert all(len(set(ports)) == len(ports) == 12 for ports in used)
        assert not set(used[0]) & set(used[1]), "the two fleets share a port"
        folders = [
            {Path(c.kubeconfig).parent for c in info.clusters} | {Path(info.workdir)}
            for info in infos
        ]
        assert not folders[0] & folders[1]
        for info in infos:  # every component runs and answers on its own fleet's ports
            rows = testbed.status(info.name, info.workdir)
            assert all(row.healthy for row in rows), [c.to_dict() for r in rows for c in r.failing]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for name, workdir in workdirs.items():
            testbed.down(name, workdir)
