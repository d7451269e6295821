"""The Helm chart, rendered and installed on the test bed's hub (a real API server with RBAC).

The hub has no kubelet, so the operator's pods never start here: this proves what the chart
creates, what its ServiceAccount may do and that uninstall cleans up, not that the image runs
(that is the kind tier). helm comes from ``make testbed-build`` (the cache's bin dir); without
it the tests skip, except under ``CI=true`` where they fail, like the fleet fixture.

The hub already has the computegrid CRDs (the test bed installs ``crds/``), so Helm skips the
chart's ``crds/`` there; that they are the same files is checked below.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from computegrid import testbed
from computegrid.api import PodPolicy
from computegrid.api.pod_policy import DEFAULT_QUOTA
from computegrid.fleet_data.policy_file import POLICY_KEY, load_policy
from computegrid.scheduling import Policy

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "computegrid"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
SECRET_NS = VALUES["secretNamespace"]
PEERING = VALUES["peering"]["name"]
KOPF_CRDS = ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev")

# Every API call the operator makes on the hub with its ServiceAccount (Kopf's and ours:
# handlers/, fleet/HubSecrets): kubectl auth can-i arguments -> allowed.
OPERATOR_NEEDS: list[tuple[str, ...]] = [
    *[
        (verb, f"{res}.computegrid.io", "-A")
        for res in ("computejobs", "memberclusters")
        for verb in ("get", "list", "watch", "patch")
    ],
    ("patch", "computejobs.computegrid.io", "--subresource=status", "-A"),
    ("patch", "memberclusters.computegrid.io", "--subresource=status", "-A"),
    ("create", "events", "-n", "team-a"),
    ("create", "events.events.k8s.io", "-n", "team-a"),
    ("get", "secrets", "-n", SECRET_NS),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("list", "namespaces"),
    ("watch", "namespaces"),
    *[(v, "clusterkopfpeerings.kopf.dev") for v in ("get", "list", "watch", "patch")],
    *[(v, "kopfpeerings.kopf.dev", "-n", "team-a") for v in ("get", "list", "watch", "patch")],
]
# Least privilege: nothing beyond what the operator does.
OPERATOR_MUST_NOT: list[tuple[str, ...]] = [
    ("get", "secrets", "-n", "kube-system"),
    ("list", "secrets", "-n", SECRET_NS),
    ("get", "secrets", "-n", "team-a"),
    ("create", "computejobs.computegrid.io", "-n", "team-a"),
    ("update", "computejobs.computegrid.io", "-A"),
    ("delete", "computejobs.computegrid.io", "-A"),
    ("delete", "memberclusters.computegrid.io"),
    ("delete", "clusterkopfpeerings.kopf.dev"),
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("delete", "nodes"),
    ("create", "pods", "-n", "team-a"),
    ("create", "jobs.batch", "-n", "team-a"),
]


def helm_binary() -> Path:
    helm = testbed.bin_dir() / "helm"
    if not os.access(helm, os.X_OK):
        reason = f"{helm} is missing: run `make testbed-build`"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return helm


def run(*args: str | Path, kubeconfig: Path | None = None, check: bool = True) -> str:
    """Run a command with the cache's bin dir first on PATH (its kubectl, not Debian's)."""
    env = {**os.environ, "PATH": f"{testbed.bin_dir()}:{os.environ.get('PATH', '')}"}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=300, env=env, check=False
    )
    if check:
        assert done.returncode == 0, f"{' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def kubectl(hub: Path, *args: str, check: bool = True) -> str:
    return run(testbed.bin_dir() / "kubectl", *args, kubeconfig=hub, check=check)


def helm_refuses(*args: str | Path) -> str:
    """helm's error output for a command that must fail."""
    env = {**os.environ, "PATH": f"{testbed.bin_dir()}:{os.environ.get('PATH', '')}"}
    done = subprocess.run([str(helm_binary()), *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env, check=False)  # fmt: skip
    assert done.returncode != 0, f"helm {' '.join(map(str, args))} succeeded:\n{done.stdout}"
    return done.stderr


def render(*extra: str, release: str = "cg", namespace: str = "cg-system") -> list[dict[str, Any]]:
    text = run(helm_binary(), "template", release, CHART, "--namespace", namespace, *extra)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def hook(obj: dict[str, Any]) -> str:
    return str((obj["metadata"].get("annotations") or {}).get("helm.sh/hook", ""))


def container_args(deployment: dict[str, Any]) -> list[str]:
    return list(deployment["spec"]["template"]["spec"]["containers"][0]["args"])


def grants(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in r.get("apiGroups", []) and resource in r["resources"] and verb in r["verbs"]
        for r in rules
    )


# (a) lint and render -----------------------------------------------------------------------


def test_lint() -> None:
    out = run(helm_binary(), "lint", "--strict", CHART)
    assert "1 chart(s) linted, 0 chart(s) failed" in out


def test_render_two_peered_replicas() -> None:
    objects = render()
    deployments = by_kind(objects, "Deployment")
    assert len(deployments) == 2
    peerings, priorities = set(), []
    for deployment in deployments:
        args = container_args(deployment)
        peerings |= {a.split("=", 1)[1] for a in args if a.startswith("--peering=")}
        priorities += [int(a.split("=", 1)[1]) for a in args if a.startswith("--priority=")]
        assert "--all-namespaces" in args
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "cg"
    # One peering, distinct priorities: equal priorities would pause every replica.
    assert peerings == {PEERING}
    assert len(priorities) == 2 and len(set(priorities)) == 2
    # The peering object of that name: created after install, and again deleted on uninstall.
    peering_hooks = {hook(o) for o in by_kind(objects, "ClusterKopfPeering")}
    assert {o["metadata"]["name"] for o in by_kind(objects, "ClusterKopfPeering")} == {PEERING}
    assert peering_hooks == {"post-install,post-upgrade", "pre-delete"}
    assert not by_kind(objects, "KopfPeering")


def test_render_namespaced_peering() -> None:
    objects = render("--set", "operator.namespaces={team-a,team-b}")
    for deployment in by_kind(objects, "Deployment"):
        args = container_args(deployment)
        assert "--namespace=team-a" in args and "--namespace=team-b" in args
        assert "--all-namespaces" not in args
    peerings = {(o["metadata"]["namespace"], hook(o)) for o in by_kind(objects, "KopfPeering")}
    assert {ns for ns, _ in peerings} == {"team-a", "team-b"}
    assert len(peerings) == 4  # post-install + pre-delete in each
    assert not by_kind(objects, "ClusterKopfPeering")


def test_render_rbac_is_bound_to_the_service_account() -> None:
    objects = render(release="cg", namespace="cg-system")
    subject = {"kind": "ServiceAccount", "name": "cg", "namespace": "cg-system"}
    [account] = by_kind(objects, "ServiceAccount")
    assert (account["metadata"]["name"], account["metadata"]["namespace"]) == ("cg", "cg-system")
    [role] = [r for r in by_kind(objects, "ClusterRole") if r["metadata"]["name"] == "cg-operator"]
    [binding] = by_kind(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [subject]
    roles = {o["metadata"]["name"]: o for o in by_kind(objects, "Role")}
    bindings = {o["metadata"]["name"]: o for o in by_kind(objects, "RoleBinding")}
    assert set(roles) == set(bindings) == {"cg-member-secrets", "cg-policy", "cg-pod-policy"}
    assert roles["cg-pod-policy"]["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cg-pod-policy"],
         "verbs": ["get"]}
    ]  # fmt: skip
    secrets_role, secrets_binding = roles["cg-member-secrets"], bindings["cg-member-secrets"]
    policy_role, policy_binding = roles["cg-policy"], bindings["cg-policy"]
    assert (
        policy_role["metadata"]["namespace"]
        == policy_binding["metadata"]["namespace"]
        == "cg-system"
    )
    assert policy_role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}
    ]
    assert policy_binding["roleRef"]["name"] == "cg-policy" and policy_binding["subjects"] == [
        subject
    ]
    assert secrets_role["metadata"]["namespace"] == SECRET_NS
    assert secrets_binding["metadata"]["namespace"] == SECRET_NS
    assert secrets_binding["roleRef"]["name"] == secrets_role["metadata"]["name"]
    assert secrets_binding["subjects"] == [subject]
    assert secrets_role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
    ]
    rules = role["rules"]
    for resource in ("computejobs", "memberclusters"):
        for verb in ("get", "list", "watch", "patch"):
            assert grants(rules, "computegrid.io", resource, verb), (resource, verb)
        assert grants(rules, "computegrid.io", f"{resource}/status", "patch")
    assert grants(rules, "", "events", "create")
    assert grants(rules, "apiextensions.k8s.io", "customresourcedefinitions", "list")
    assert grants(rules, "apiextensions.k8s.io", "customresourcedefinitions", "watch")
    for resource in ("clusterkopfpeerings", "kopfpeerings"):
        assert grants(rules, "kopf.dev", resource, "patch")
    assert not any("secrets" in r["resources"] or "*" in r["verbs"] for r in rules)
    [service] = by_kind(objects, "Service")
    template_labels = by_kind(objects, "Deployment")[0]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= template_labels.items()


def test_render_kopf_peering_crds_can_be_left_out() -> None:
    names = {o["metadata"]["name"] for o in by_kind(render(), "CustomResourceDefinition")}
    assert names == set(KOPF_CRDS)
    assert not by_kind(render("--set", "peering.installCRDs=false"), "CustomResourceDefinition")


def test_chart_crds_are_the_generated_ones() -> None:
    generated = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    assert generated, "crds/ is empty: run `make generate`"
    assert sorted(p.name for p in (CHART / "crds").glob("*.yaml")) == generated
    for name in generated:
        assert (CHART / "crds" / name).read_text() == (ROOT / "crds" / name).read_text(), name
    # ... and helm ships them as they are.
    rendered = {
        o["metadata"]["name"]: o
        for o in by_kind(render("--include-crds"), "CustomResourceDefinition")
    }
    for name in generated:
        crd = yaml.safe_load((ROOT / "crds" / name).read_text(encoding="utf-8"))
        assert rendered[crd["metadata"]["name"]] == crd


# (b) install on the hub, (c) uninstall -----------------------------------------------------


@dataclass
class Release:
    hub: Path
    name: str
    namespace: str

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


def install(hub: Path, name: str) -> Release:
    release = Release(hub, name, f"{name}-{uuid.uuid4().hex[:6]}")
    # No --wait: the hub has no kubelet, the operator's pods stay Pending.
    run(helm_binary(), "install", name, CHART, "--namespace", release.namespace,
        "--create-namespace", kubeconfig=hub)  # fmt: skip
    return release


def uninstall(release: Release) -> None:
    run(helm_binary(), "uninstall", release.name, "--namespace", release.namespace,
        kubeconfig=release.hub)  # fmt: skip


@pytest.fixture(scope="module")
def installed(fleet: testbed.FleetInfo) -> Iterator[Release]:
    release = install(Path(fleet.hub.kubeconfig), "cgchart")
    try:
        yield release
    finally:  # test_uninstall_cleans_up normally does this first
        if run(helm_binary(), "status", release.name, "-n", release.namespace,
               kubeconfig=release.hub, check=False):  # fmt: skip
            uninstall(release)
        kubectl(release.hub, "delete", "namespace", release.namespace, "--wait=false",
                "--ignore-not-found")  # fmt: skip


def can_i(release: Release, *what: str) -> bool:
    done = subprocess.run(
        [str(testbed.bin_dir() / "kubectl"), "auth", "can-i", f"--as={release.service_account}",
         *what],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "KUBECONFIG": str(release.hub)},
    )  # fmt: skip
    answer = done.stdout.strip()
    assert answer in ("yes", "no"), f"can-i {what}: {done.stdout}{done.stderr}"
    return answer == "yes"


def test_install_creates_what_the_operator_needs(installed: Release) -> None:
    hub, ns, name = installed.hub, installed.namespace, installed.name
    assert "STATUS: deployed" in run(helm_binary(), "status", name, "-n", ns, kubeconfig=hub)
    crds = kubectl(hub, "get", "crd", "-o", "name").split()
    for crd in ("computejobs.computegrid.io", "memberclusters.computegrid.io", *KOPF_CRDS):
        assert f"customresourcedefinition.apiextensions.k8s.io/{crd}" in crds
    kubectl(hub, "wait", "--for=condition=Established", "--timeout=30s",
            *[f"crd/{c}" for c in KOPF_CRDS])  # fmt: skip
    assert kubectl(hub, "get", "clusterkopfpeering", PEERING, "-o", "name").strip()
    deployments = yaml.safe_load(kubectl(hub, "-n", ns, "get", "deployments", "-o", "yaml"))
    priorities = set()
    for deployment in deployments["items"]:
        args = container_args(deployment)
        assert f"--peering={PEERING}" in args
        priorities |= {a for a in args if a.startswith("--priority=")}
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == name
    assert len(deployments["items"]) == 2 and len(priorities) == 2
    kubectl(hub, "-n", ns, "get", "serviceaccount", name)
    kubectl(hub, "-n", ns, "get", "service", f"{name}-metrics")
    kubectl(hub, "get", "clusterrole", f"{name}-operator")
    kubectl(hub, "get", "clusterrolebinding", f"{name}-operator")
    kubectl(hub, "-n", SECRET_NS, "get", "role,rolebinding", f"{name}-member-secrets")
    kubectl(hub, "-n", ns, "get", "poddisruptionbudget", name)
    for verb in ("get", "list", "watch"):
        assert can_i(installed, verb, "configmaps", "-n", ns)
        assert not can_i(installed, verb, "configmaps", "-n", "kube-system")
    policy = yaml.safe_load(
        kubectl(hub, "-n", ns, "get", "configmap", f"{name}-policy", "-o", "yaml")
    )
    assert load_policy(policy["data"][POLICY_KEY]) == Policy()


@pytest.mark.parametrize("what", OPERATOR_NEEDS, ids=" ".join)
def test_service_account_may(installed: Release, what: tuple[str, ...]) -> None:
    assert can_i(installed, *what), f"{installed.service_account} cannot {' '.join(what)}"


@pytest.mark.parametrize("what", OPERATOR_MUST_NOT, ids=" ".join)
def test_service_account_may_not(installed: Release, what: tuple[str, ...]) -> None:
    assert not can_i(installed, *what), f"{installed.service_account} can {' '.join(what)}"


def test_uninstall_cleans_up_and_another_release_installs(installed: Release) -> None:
    hub, ns, name = installed.hub, installed.namespace, installed.name
    uninstall(installed)
    gone = [
        ("-n", ns, "deployment", f"{name}-a"),
        ("-n", ns, "deployment", f"{name}-b"),
        ("-n", ns, "serviceaccount", name),
        ("-n", ns, "service", f"{name}-metrics"),
        ("clusterrole", f"{name}-operator"),
        ("clusterrolebinding", f"{name}-operator"),
        ("-n", SECRET_NS, "role", f"{name}-member-secrets"),
        ("-n", SECRET_NS, "rolebinding", f"{name}-member-secrets"),
        ("-n", ns, "configmap", f"{name}-policy"),
        ("-n", ns, "role", f"{name}-policy"),
        ("-n", ns, "rolebinding", f"{name}-policy"),
        ("-n", ns, "poddisruptionbudget", name),
        ("clusterkopfpeering", PEERING),  # a hook object: the pre-delete hook removes it
    ]
    for what in gone:
        assert not kubectl(hub, "get", *what, "--ignore-not-found", "-o", "name").strip(), what
    assert not can_i(installed, "patch", "computejobs.computegrid.io", "--subresource=status", "-A")
    # CRDs stay (Helm never deletes crds/; the Kopf ones are kept by their resource policy).
    crds = kubectl(hub, "get", "crd", "-o", "name")
    for crd in ("computejobs.computegrid.io", *KOPF_CRDS):
        assert crd in crds
    # The kept Kopf CRDs still carry the first release's ownership annotations: a second
    # release must install next to them, not fail on "invalid ownership metadata".
    second = install(hub, "cgchart2")
    try:
        assert kubectl(hub, "get", "clusterkopfpeering", PEERING, "-o", "name").strip()
        assert can_i(second, "patch", "computejobs.computegrid.io", "--subresource=status", "-A")
        manifest = run(helm_binary(), "get", "manifest", second.name, "-n", second.namespace,
                       kubeconfig=hub)  # fmt: skip
        assert "kind: CustomResourceDefinition" not in manifest  # not this release's to own
    finally:
        uninstall(second)
        kubectl(hub, "delete", "namespace", second.namespace, "--wait=false")
    assert not kubectl(hub, "get", "clusterkopfpeering", PEERING, "--ignore-not-found").strip()


# (d) values schema, NOTES, PDB, ServiceMonitor, security context, policy, dashboard ----------

BAD_VALUES = [
    # (--set argument, what helm's error must name)
    ("imagee.tag=x", "imagee"),  # a misspelt top-level key
    ("image.pullPolicy=Sometimes", "pullPolicy"),
    ("operator.probeInterval=0", "probeInterval"),
    ("operator.failureThreshold=0", "failureThreshold"),
    ("operator.namespaces={Team_A}", "namespaces"),
    ("replicas[0].priority=high", "priority"),
    ("metrics.port=70000", "port"),
    ("metrics.serviceMonitor.create=yes", "create"),
    ("metrics.serviceMonitor.interval=soon", "interval"),
    ("podDisruptionBudget.maxUnavailable=0", "maxUnavailable"),
    ("runAsUser=0", "runAsUser"),
    ("secretNamespace=Secrets", "secretNamespace"),
    ("schedulingPolicy.weights.low.CarbonIntensity=-1", "CarbonIntensity"),
    ("schedulingPolicy.weights.urgent.Latency=1", "urgent"),
    ("schedulingPolicy.alternatives=50", "alternatives"),
    ("dashboard.enabled=maybe", "enabled"),
]


@pytest.mark.parametrize(("value", "field"), BAD_VALUES, ids=[v for v, _ in BAD_VALUES])
def test_schema_refuses_bad_values(value: str, field: str) -> None:
    error = helm_refuses("template", "cg", CHART, "--set", value)
    assert "values don't meet the specifications of the schema" in error, error
    assert field in error, error


def test_bad_values_fail_install_and_leave_nothing(fleet: testbed.FleetInfo) -> None:
    hub = Path(fleet.hub.kubeconfig)
    ns = f"cgbad-{uuid.uuid4().hex[:6]}"
    error = helm_refuses("install", "cgbad", CHART, "--namespace", ns, "--create-namespace",
                         "--kubeconfig", hub, "--set", "operator.probeIntervall=5")  # fmt: skip
    assert "probeIntervall" in error, error
    assert not kubectl(hub, "get", "namespace", ns, "--ignore-not-found", "-o", "name").strip()


def test_schema_leaves_room_for_admission_and_tenancy_values() -> None:
    objects = render("--set", "admission.enabled=true", "--set", "tenancy.tenants[0]=team-a")
    assert len(by_kind(objects, "Deployment")) == 2


def test_tenancy_values_reach_the_pod_policy_and_the_operator() -> None:
    objects = render("--set-json", 'tenancy.resourceQuota={"pods": "5", "requests.nvidia.com/gpu": 2}',
                     "--set", "operator.tenantNamespaceTemplate=t-{namespace}-{hub}")  # fmt: skip
    config = next(
        o for o in by_kind(objects, "ConfigMap") if o["metadata"]["name"] == "cg-pod-policy"
    )
    policy = PodPolicy.from_configmap_data(config["data"])  # what the operator will read
    quota = policy.tenant.resource_quota  # helm merges values: the defaults' other keys stay
    assert quota == {**DEFAULT_QUOTA, "pods": "5", "requests.nvidia.com/gpu": "2"}
    assert policy.tenant.limit_range == {"defaultRequest": {"cpu": "100m", "memory": "64Mi"}}
    for deployment in by_kind(objects, "Deployment"):
        assert "--tenant-namespace-template=t-{namespace}-{hub}" in container_args(deployment)
    error = helm_refuses("template", "cg", CHART, "--set", "operator.tenantNamespaceTemplate={hub}")
    assert "tenantNamespaceTemplate" in error, error


def notes(hub: Path, *values: str) -> str:
    """The NOTES helm prints after an install (a client-side dry run still asks the hub).
    installCRDs=false: a client-side dry run cannot look up the Kopf CRDs, which another
    release of this module owns by now, and would render them and fail on their ownership."""
    out = run(helm_binary(), "install", "cg", CHART, "--namespace", "cg-system",
              "--dry-run=client", "--set", "peering.installCRDs=false", *values,
              kubeconfig=hub)  # fmt: skip
    return out[out.index("NOTES:") :]


def test_notes_say_what_to_do_next(fleet: testbed.FleetInfo) -> None:
    hub = Path(fleet.hub.kubeconfig)
    text = notes(hub)
    assert f"-n {SECRET_NS} create secret generic" in text  # register a member
    assert "kind: MemberCluster" in text and f"namespace: {SECRET_NS}" in text
    assert "kubectl apply -f deploy/samples/" in text  # submit a sample
    assert "kubectl computegrid why" in text
    assert "svc/cg-metrics 8080" in text and "/metrics" in text  # where the metrics are
    assert "cg-policy" in text
    assert "ServiceMonitor" not in text  # the hub has no prometheus-operator
    quiet = notes(hub, "--set", "metrics.service.enabled=false")
    assert "port 8080 on each operator pod" in quiet and "svc/cg-metrics" not in quiet
    assert "cg-dashboard" in notes(hub, "--set", "dashboard.enabled=true")


def test_pod_disruption_budget_covers_every_replica() -> None:
    objects = render()
    [pdb] = by_kind(objects, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    for deployment in by_kind(objects, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert not by_kind(render("--set", "podDisruptionBudget.enabled=false"), "PodDisruptionBudget")


MONITORING = ("--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")


@pytest.mark.parametrize(
    ("args", "rendered"),
    [
        ((), False),  # auto, and the cluster has no prometheus-operator
        (MONITORING, True),  # auto, and it has
        (("--set", "metrics.serviceMonitor.create=never", *MONITORING), False),
        (("--set", "metrics.serviceMonitor.create=always"), True),
        (
            (
                "--set",
                "metrics.serviceMonitor.create=always",
                "--set",
                "metrics.service.enabled=false",
            ),
            False,
        ),
    ],
)
def test_service_monitor_render_rules(args: tuple[str, ...], rendered: bool) -> None:
    objects = render(*args)
    monitors = by_kind(objects, "ServiceMonitor")
    assert len(monitors) == int(rendered)
    if rendered:
        [service] = by_kind(objects, "Service")
        [monitor] = monitors
        assert (
            monitor["spec"]["selector"]["matchLabels"].items()
            <= service["metadata"]["labels"].items()
        )
        assert {p["name"] for p in service["spec"]["ports"]} >= {
            monitor["spec"]["endpoints"][0]["port"]
        }


SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
    },
}  # fmt: skip


def test_service_monitor_follows_the_hub_api(fleet: testbed.FleetInfo) -> None:
    """auto asks the real API server: no ServiceMonitor until its CRD is served, then one."""
    hub = Path(fleet.hub.kubeconfig)
    # --validate takes the capabilities from the hub (installCRDs=false: the Kopf CRDs are
    # another release's by now, and validation would refuse to adopt them).
    validate = ("template", "cg", CHART, "--validate", "--set", "peering.installCRDs=false")
    out = run(helm_binary(), *validate, kubeconfig=hub)
    assert "kind: Deployment" in out and "kind: ServiceMonitor" not in out
    crd = Path(fleet.workdir) / "servicemonitor-crd.yaml"
    crd.write_text(yaml.safe_dump(SERVICE_MONITOR_CRD), encoding="utf-8")
    kubectl(hub, "apply", "-f", str(crd))
    try:
        kubectl(hub, "wait", "--for=condition=Established", "--timeout=30s",
                "crd/servicemonitors.monitoring.coreos.com")  # fmt: skip
        out = run(helm_binary(), *validate, kubeconfig=hub)
        [monitor] = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "ServiceMonitor"]
        assert monitor["metadata"]["name"] == "cg"
        assert 'ServiceMonitor "cg"' in notes(hub)
    finally:
        kubectl(hub, "delete", "-f", str(crd), "--wait=false")


def test_restricted_security_context_admitted_by_pod_security(fleet: testbed.FleetInfo) -> None:
    [deployment, _] = by_kind(render(), "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = spec["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    # The hub's own Pod Security admission judges the pod the Deployment would create.
    hub = Path(fleet.hub.kubeconfig)
    ns = f"cgpss-{uuid.uuid4().hex[:6]}"
    kubectl(hub, "create", "namespace", ns)

    def dry_run(pod_spec: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "operator", "namespace": ns},
               "spec": {**pod_spec, "serviceAccountName": "default"}}  # fmt: skip
        return subprocess.run(
            [str(testbed.bin_dir() / "kubectl"), "apply", "--dry-run=server", "-f", "-"],
            input=yaml.safe_dump(pod), capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "KUBECONFIG": str(hub)},
        )  # fmt: skip

    try:
        kubectl(hub, "label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
        admitted = dry_run(spec)
        assert admitted.returncode == 0, admitted.stderr
        assert "violate" not in admitted.stderr, admitted.stderr  # not even a warning
        # ... and the admission is real: the same pod without seccomp is refused.
        weaker: dict[str, Any] = copy.deepcopy(spec)
        del weaker["securityContext"]["seccompProfile"]
        del weaker["containers"][0]["securityContext"]["seccompProfile"]
        refused = dry_run(weaker)
        assert refused.returncode != 0 and "seccompProfile" in refused.stderr, refused.stderr
    finally:
        kubectl(hub, "delete", "namespace", ns, "--wait=false")


def test_policy_config_map_is_what_the_loader_reads() -> None:
    [default] = [o for o in by_kind(render(), "ConfigMap") if o["metadata"]["name"] == "cg-policy"]
    assert load_policy(default["data"][POLICY_KEY]) == Policy()
    chosen = '{"weights":{"low":{"CarbonIntensity":2,"PowerPrice":1}},"pluginArgs":{"CriticalHeadroom":{"reserve":0.05,"appliesTo":["low","medium"]}},"alternatives":5}'
    objects = render("--set-json", f"schedulingPolicy={chosen}")
    [config] = [o for o in by_kind(objects, "ConfigMap") if o["metadata"]["name"] == "cg-policy"]
    policy = load_policy(config["data"][POLICY_KEY])
    assert policy.weights["low"] == {"CarbonIntensity": 2, "PowerPrice": 1}  # type: ignore[index]
    assert policy.plugin_args["CriticalHeadroom"]["reserve"] == 0.05
    assert policy.alternatives == 5
    for deployment in by_kind(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert {"name": "policy", "configMap": {"name": "cg-policy"}} in pod["volumes"]
        env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
        assert env["COMPUTEGRID_POLICY_CONFIGMAP"] == "cg-system/cg-policy"
        assert env["COMPUTEGRID_POLICY_FILE"] == f"/etc/computegrid/{POLICY_KEY}"


def test_dashboard_config_map_for_the_grafana_sidecar() -> None:
    assert not [
        o for o in by_kind(render(), "ConfigMap") if o["metadata"]["name"] == "cg-dashboard"
    ]
    objects = render("--set", "dashboard.enabled=true", "--set", "dashboard.namespace=monitoring")
    [config] = [o for o in by_kind(objects, "ConfigMap") if o["metadata"]["name"] == "cg-dashboard"]
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config["metadata"]["namespace"] == "monitoring"
    shipped = json.loads((CHART / "dashboards" / "computegrid.json").read_text(encoding="utf-8"))
    assert json.loads(config["data"]["computegrid.json"]) == shipped


def test_one_version_from_pyproject() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["version"] == chart["appVersion"] == version
    for deployment in by_kind(render(), "Deployment"):
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == f"{VALUES['image']['repository']}:{version}"


@pytest.mark.parametrize(
    ("replicas", "error"),
    [
        ('[{"name":"a","priority":5},{"name":"b","priority":5}]', "peering priorities must differ"),
        ('[{"name":"a","priority":5},{"name":"a","priority":6}]', "names must differ"),
    ],
)
def test_replicas_need_distinct_priorities_and_names(replicas: str, error: str) -> None:
    assert error in helm_refuses("template", "cg", CHART, "--set-json", f"replicas={replicas}")
    one = render("--set-json", 'replicas=[{"name":"solo","priority":1}]')
    assert [d["metadata"]["name"] for d in by_kind(one, "Deployment")] == ["cg-solo"]
