"""Generated ComputeJob manifests: a valid job with random hostile or malformed edits.

The edits are the fields the issue's 300 seeded variants went through (capabilities in every
spelling, root, host namespaces and ports, seccomp, nodeName, service accounts, priority
classes, volume types) plus wrong types, out-of-range numbers, odd quantities and names at
and past the Kubernetes length limits. Shared by the unit property test (thousands of
manifests through the operator's parsing) and the integration test (a sample through the
hub's API server).
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from computegrid.api import restricted_template

CAPS = ["ALL", "SYS_ADMIN", "CAP_SYS_ADMIN", "sys_admin", "NET_ADMIN", "NET_BIND_SERVICE",
        "net_bind_service", "CHOWN", "NET_RAW"]  # fmt: skip
# (path from the ComputeJob root, candidate values); None deletes the field.
EDITS: list[tuple[str, list[Any]]] = [
    ("spec.template.spec.hostNetwork", [True, False, "true", 1]),
    ("spec.template.spec.hostPID", [True, False]),
    ("spec.template.spec.hostIPC", [True]),
    ("spec.template.spec.nodeName", ["", "control-plane-0"]),
    ("spec.template.spec.serviceAccountName", ["", "default", "job-controller", "Default"]),
    ("spec.template.spec.serviceAccount", ["admin", "default"]),
    ("spec.template.spec.automountServiceAccountToken", [True, False]),
    ("spec.template.spec.priorityClassName", ["", "system-node-critical", "batch-low"]),
    ("spec.template.spec.tolerations", [[{"operator": "Exists"}]]),
    ("spec.template.spec.securityContext.runAsNonRoot", [True, False, None, "true"]),
    ("spec.template.spec.securityContext.runAsUser", [0, 1000, -1, "0", 0.0]),
    ("spec.template.spec.securityContext.seccompProfile",
     [None, {"type": "Unconfined"}, {"type": "Localhost", "localhostProfile": "p.json"},
      {"type": "runtimedefault"}]),
    ("spec.template.spec.securityContext.sysctls",
     [[{"name": "kernel.msgmax", "value": "1"}], [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]]),
    ("spec.template.spec.securityContext.seLinuxOptions", [{"type": "spc_t"}, {"type": "container_t"}]),
    ("spec.template.spec.securityContext.windowsOptions", [{"hostProcess": True}]),
    ("spec.template.spec.volumes",
     [[{"name": "v", "hostPath": {"path": "/"}}], [{"name": "v", "nfs": {"server": "x", "path": "/"}}],
      [{"name": "v", "secret": {"secretName": "s"}}], [{"name": "v", "emptyDir": {}}], "volumes"]),
    ("spec.template.spec.containers[0].securityContext.privileged", [True, False]),
    ("spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
     [True, None, "false"]),
    ("spec.template.spec.containers[0].securityContext.capabilities.add",
     [[c] for c in CAPS] + [["ALL", "NET_ADMIN"], "SYS_ADMIN"]),
    ("spec.template.spec.containers[0].securityContext.capabilities.drop",
     [["all"], ["NET_RAW"], None, ["ALL"]]),
    ("spec.template.spec.containers[0].securityContext.procMount", ["Unmasked", "Default"]),
    ("spec.template.spec.containers[0].securityContext.runAsUser", [0, 65534]),
    ("spec.template.spec.containers[0].securityContext", [None, "root", {}]),
    ("spec.template.spec.containers[0].ports", [[{"containerPort": 22, "hostPort": 22}],
                                                [{"containerPort": 80, "hostPort": 0}]]),
    ("spec.template.spec.containers", [[], None, "busybox", [{"name": "x"}]]),
    ("spec.template.metadata.annotations",
     [{"container.apparmor.security.beta.kubernetes.io/main": "unconfined"}]),
    ("spec.template", [None, "pod", [], {}]),
    ("spec.parallelism", [-1, 0, 1, 10_000, 10_001, 10**6, "2", 2.5, None]),
    ("spec.completions", [0, 5, 10**6]),
    ("spec.resources", [{}, {"cpu": "0"}, {"cpu": "-1"}, {"cpu": "8 cores"}, {"cpu": "1e100"},
                        {"cpu": 2**70}, {"memory": "1Gi", "nvidia.com/gpu": "4"},
                        {"": "1"}, {"cpu": "1", "bad name": "1"}, "8"]),
    ("spec.computeType", ["quantum", "Intelligent", "supercomputing", 3]),
    ("spec.placement", [{"allowedRegions": []}, {"allowedRegions": ["mars"]},
                        {"tolerations": [{"operator": "Sideways"}]}]),
    ("spec.colour", ["green"]),
    ("metadata.annotations.computegrid.io/latency-sensitivity", ["urgent", "HIGH", ""]),
    ("metadata.annotations.computegrid.io/origin", ["atlantis", "", "上海", "Shang hai"]),
    ("metadata.annotations.computegrid.io/max-latency-ms", ["-5", "0", "1e9", "fast", "NaN"]),
    ("metadata.annotations.computegrid.io/backoff-limit", ["-1", "101", "x"]),
]  # fmt: skip

NAMES = st.one_of(
    st.sampled_from(
        ["job", "a" * 63, "a" * 253, "a" * 254, "Job", "job_1", "-job", "作业", "j" * 64]
    ),
    st.text(min_size=1, max_size=20),
)


def base_job(name: str = "job") -> dict[str, Any]:
    return {
        "apiVersion": "computegrid.io/v1alpha1",
        "kind": "ComputeJob",
        "metadata": {
            "name": name,
            "annotations": {
                "computegrid.io/origin": "shanghai",
                "computegrid.io/latency-sensitivity": "low",
            },
        },
        "spec": {
            "resources": {"cpu": "1", "memory": "1Gi"},
            "template": restricted_template("busybox"),
        },
    }


def apply_edit(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` (dots; ``[0]`` indexes; annotation keys whole) to ``value``, None deletes."""
    if path.startswith("metadata.annotations."):
        keys: list[Any] = ["metadata", "annotations", path.removeprefix("metadata.annotations.")]
    else:
        keys = []
        for part in path.split("."):
            name, _, index = part.partition("[")
            keys.append(name)
            if index:
                keys.append(int(index.rstrip("]")))
    node: Any = doc
    for key in keys[:-1]:
        if isinstance(node, dict):
            node = (
                node.setdefault(key, {})
                if not isinstance(node.get(key), (dict, list))
                else node[key]
            )
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return  # an earlier edit replaced the parent with something else: skip
        if not isinstance(node, (dict, list)):
            return
    last = keys[-1]
    if isinstance(node, dict):
        if value is None:
            node.pop(last, None)
        else:
            node[last] = copy.deepcopy(value)
    elif (
        isinstance(node, list) and isinstance(last, int) and last < len(node) and value is not None
    ):
        node[last] = copy.deepcopy(value)


@st.composite
def computejob_manifests(draw: st.DrawFn, max_edits: int = 4) -> dict[str, Any]:
    doc = base_job(draw(NAMES) if draw(st.integers(0, 9)) == 0 else "job")
    for index in draw(st.lists(st.integers(0, len(EDITS) - 1), max_size=max_edits)):
        path, values = EDITS[index]
        apply_edit(doc, path, draw(st.sampled_from(values)))
    return doc
