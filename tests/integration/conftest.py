"""Integration fixtures: one fleet (hub + 3 members) of real control planes per session.

Why here: every integration test needs real API servers, a scheduler and kwok, and starting
them is the slow part (seconds per cluster), so the fleet is started once per session
through the same ``computegrid.testbed`` module the CLI uses and torn down at the end. It
runs under its own name and work dir, so a developer's own ``computegrid testbed up`` fleet
is never touched, and every client is checked to point at this fleet before a test runs.

The fleet is skipped only when the control-plane binaries are absent (with the command that
builds them); under CI (``CI=true``) missing binaries fail instead, since CI builds first.

Before each test module that uses the fleet, every component of every cluster is checked
(``testbed.status``); a dead or hung one is repaired (cheap: seconds, etcd data kept) and
reported, and if that fails the module fails at once with the failing components' log
tails, instead of its tests timing out far from the cause.
"""

from __future__ import annotations

import os
import re
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from computegrid import testbed
from computegrid.dispatch import tenant_namespace

# Test modules import helpers from operator_fixtures as well as loading it as a plugin:
# register it for assertion rewriting before the first import, so both see one module.
pytest.register_assert_rewrite("operator_fixtures", "admission_fixtures")

# Override to run two test sessions side by side (e.g. two worktrees): each its own fleet.
FLEET_NAME = os.environ.get("COMPUTEGRID_TEST_FLEET", "cgtest")
MEMBERS = 3
HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration ``integration`` (before ``-m`` selects)."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


def _check_is_test_fleet(info: testbed.FleetInfo) -> None:
    """Refuse to run against any cluster that is not this session's own test fleet."""
    default_dir = testbed.workdir_for(testbed.DEFAULT_NAME).resolve()
    if Path(info.workdir).resolve() == default_dir or info.name != FLEET_NAME:
        pytest.exit(f"refusing to test against fleet {info.name} in {info.workdir}", returncode=4)
    for cluster in info.clusters:
        doc = yaml.safe_load(Path(cluster.kubeconfig).read_text(encoding="utf-8"))
        context = str(doc.get("current-context", ""))
        servers = [str(c["cluster"]["server"]) for c in doc.get("clusters", [])]
        if context != f"kwok-{cluster.kwok_cluster}" or not context.startswith(
            f"kwok-{FLEET_NAME}-"
        ):
            pytest.exit(f"refusing kube context {context!r}: not the test fleet's", returncode=4)
        if not all(re.match(r"^https?://127\.0\.0\.1:\d+$", s) for s in servers):
            pytest.exit(f"refusing servers {servers}: the test fleet is on loopback", returncode=4)


@pytest.fixture(scope="session")
def testbed_binaries() -> None:
    """Skip without the control-plane binaries (fail under CI, which builds them first)."""
    missing = testbed.missing_binaries()
    if missing:
        reason = (
            f"test bed binaries not built in {testbed.bin_dir()} (missing {', '.join(missing)}): "
            "run `make testbed-build`"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, testbed_binaries: None
) -> Iterator[testbed.FleetInfo]:
    """Hub + 3 members started for this session (skipped only without the binaries)."""
    workdir = tmp_path_factory.mktemp("fleet")
    info = testbed.up(FLEET_NAME, MEMBERS, workdir=workdir, nodes_per_member=3)
    try:
        _check_is_test_fleet(info)
        yield info
    finally:
        testbed.down(FLEET_NAME, workdir)


def describe_failing(rows: list[testbed.ClusterStatus]) -> str:
    """Each failing component: what its probe said and the end of its log."""
    lines = []
    for row in rows:
        if not row.components:
            lines.append(f"{row.cluster.name}: no components found (its files are gone?)")
        for item in row.failing:
            state = "running" if item.running else "NOT RUNNING"
            lines.append(f"{row.cluster.name}/{item.name} (pid {item.pid}, {state}): {item.detail}")
            lines += [f"    | {line}" for line in testbed.log_tail(Path(item.log)).splitlines()]
    return "\n".join(lines)


@pytest.fixture(scope="module", autouse=True)
def bed_is_healthy(request: pytest.FixtureRequest) -> None:
    """Every component of the fleet is healthy before a module's tests run (repaired if
    cheap, else the module fails here with the log tails). Modules without the fleet skip it."""
    mine = [i for i in request.session.items if getattr(i, "module", None) is request.module]
    if not any("fleet" in getattr(item, "fixturenames", ()) for item in mine):
        return
    info: testbed.FleetInfo = request.getfixturevalue("fleet")
    rows = testbed.status(info.name, info.workdir)
    if all(row.healthy for row in rows):
        return
    before = describe_failing(rows)
    where = f"before {request.module.__name__}"
    try:
        restarts = testbed.repair(info.name, info.workdir)
    except (testbed.RepairError, testbed.KwokctlError) as exc:
        pytest.fail(f"test bed unhealthy {where}:\n{before}\nrepair failed:\n{exc}", pytrace=False)
    rows = testbed.status(info.name, info.workdir)
    if not all(row.healthy for row in rows):
        after = describe_failing(rows)
        pytest.fail(f"test bed still unhealthy after repair {where}:\n{after}", pytrace=False)
    names = ", ".join(f"{r.cluster}/{r.component}" for r in restarts)
    warnings.warn(f"test bed repaired {where}: restarted {names}\n{before}", stacklevel=1)


@pytest.fixture(scope="session")
def hub_api(fleet: testbed.FleetInfo) -> Iterator[Any]:
    """An ApiClient for the hub alone."""
    api = testbed.api_client(Path(fleet.hub.kubeconfig))
    yield api
    api.close()


@pytest.fixture(scope="session")
def member_apis(fleet: testbed.FleetInfo) -> Iterator[dict[str, Any]]:
    """One ApiClient per member, by member name."""
    apis = {m.name: testbed.api_client(Path(m.kubeconfig)) for m in fleet.members}
    yield apis
    for api in apis.values():
        api.close()


@pytest.fixture
def namespace(
    request: pytest.FixtureRequest, hub_api: Any, member_apis: dict[str, Any]
) -> Iterator[str]:
    """A fresh namespace, the same name on the hub and every member, deleted afterwards with
    the member namespace the test operator made for it (``cgtest-hub-<name>``).

    The same-named member namespaces are the members' own: the operator must never use them."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:6]}"
    apis = [hub_api, *member_apis.values()]
    cores: list[Any] = [client.CoreV1Api(api) for api in apis]
    for core in cores:
        core.create_namespace(body={"metadata": {"name": name}})
    yield name
    owned = tenant_namespace(name, "cgtest-hub")
    for core, doomed in [(c, name) for c in cores] + [(c, owned) for c in cores[1:]]:
        try:
            core.delete_namespace(doomed, _request_timeout=5)
        except ApiException as exc:
            if exc.status != 404:
                raise
        except Exception:  # a member a test stopped and did not restart: nothing to clean
            pass
