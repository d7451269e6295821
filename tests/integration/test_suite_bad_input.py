"""Bad input with the operator running: secret markers, the bad-input corpus, tenancy.

Three proofs against the test bed's real API servers and a real ``computegrid run``:

- Secret markers: MemberClusters whose kubeconfig Secrets are malformed or hostile (bad YAML,
  exec, tokenFile, auth-provider, a bad CA, credentials in the URL, a wrong token for a real
  member...), each carrying a marker string of its own. Once each has its Ready condition,
  every operator log line, every Event on the hub and every MemberCluster and ComputeJob is
  searched for the markers: none may appear (summary ``secret_markers``).
- Bad input: the hand corpus (tests/data/bad/) and generated manifests (tests/bad_manifests.py:
  200 in CI, 1,000 with COMPUTEGRID_SUITES=full) applied through the hub while valid jobs are
  submitted alongside. Each bad input is refused at admission or by the operator (a
  condition); nothing is created on a member for them; every valid job is placed; the
  operator never restarts (summary ``bad_input``).
- Tenancy: a job of hub namespace ``a`` lands in the member namespace this hub owns for
  ``a`` (ownership, Pod Security labels, ResourceQuota, LimitRange); a pre-existing foreign
  namespace of that name is refused (``ForeignNamespace``) and nothing is created in it.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from admission_fixtures import Admission
from hypothesis import HealthCheck, given, settings
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from operator_fixtures import (
    GROUP,
    VERSION,
    CreationLog,
    Hub,
    OperatorProcess,
    computejob,
    hub_jobs,
    member_cluster_body,
    suite_size,
    wait_for,
    write_summary,
)

from bad_manifests import apply_edit, base_job, computejob_manifests
from computegrid import testbed

pytestmark = pytest.mark.integration
pytest_plugins = ["admission_fixtures", "operator_fixtures"]

DATA = Path(__file__).resolve().parents[1] / "data" / "bad"
JOBS = yaml.safe_load((DATA / "computejobs.yaml").read_text(encoding="utf-8"))
MEMBERS = yaml.safe_load((DATA / "memberclusters.yaml").read_text(encoding="utf-8"))
RUN = uuid.uuid4().hex[:6]
PLACED = ("Scheduled", "Running", "Succeeded")
HOSTILE = ("malformed-yaml", "exec", "token-file", "auth-provider", "password", "bad-ca",
           "url-credentials", "proxy", "key-not-base64", "unknown-field", "wrong-token",
           "unreachable", "missing-key", "not-utf8")  # fmt: skip


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def marker(kind: str) -> str:
    return f"SECRETMARK{kind.upper().replace('-', '')}{RUN}"


def kubeconfig(
    server: str, ca: str, user: dict[str, Any], cluster: dict[str, Any] | None = None
) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "m", "cluster": {"server": server,
                                                   "certificate-authority-data": ca,
                                                   **(cluster or {})}}],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": "c", "context": {"cluster": "m", "user": "u"}}],
            "current-context": "c",
        }
    )  # fmt: skip


def hostile_secrets(fleet: testbed.FleetInfo, hub_api: Any) -> dict[str, dict[str, str]]:
    """Secret data by case; each case's marker is where a careless error would quote it.
    Server and CA are a real member's (from its Secret on the hub, as the operator reads it)."""
    secret = client.CoreV1Api(hub_api).read_namespaced_secret(
        fleet.members[0].name, fleet.secret_namespace
    )
    real = yaml.safe_load(base64.b64decode(secret.data["kubeconfig"]).decode())
    server = real["clusters"][0]["cluster"]["server"]
    ca = real["clusters"][0]["cluster"]["certificate-authority-data"]
    m = marker
    cases = {
        "malformed-yaml": f"clusters: [\n  - token: {m('malformed-yaml')}: : ]\n  ]{{",
        "exec": kubeconfig(server, ca, {"exec": {"command": m("exec"), "apiVersion": "v1"}}),
        "token-file": kubeconfig(server, ca, {"tokenFile": f"/run/{m('token-file')}"}),
        "auth-provider": kubeconfig(
            server,
            ca,
            {"auth-provider": {"name": "oidc", "config": {"id-token": m("auth-provider")}}},
        ),
        "password": kubeconfig(server, ca, {"username": "admin", "password": m("password")}),
        "bad-ca": kubeconfig(server, b64(m("bad-ca")), {"token": m("bad-ca-token")}),
        "url-credentials": kubeconfig(
            server.replace("https://", f"https://u:{m('url-credentials')}@"), ca, {"token": "t"}
        ),
        "proxy": kubeconfig(server, ca, {"token": "t"}, {"proxy-url": f"http://{m('proxy')}"}),
        "key-not-base64": kubeconfig(
            server,
            ca,
            {"client-certificate-data": "eA==", "client-key-data": m("key-not-base64") + "!"},
        ),
        "unknown-field": kubeconfig(server, ca, {"token": "t", m("unknown-field"): "x"}),
        "wrong-token": kubeconfig(server, ca, {"token": m("wrong-token")}),
        "unreachable": kubeconfig("https://127.0.0.1:9", ca, {"token": m("unreachable")}),
    }
    data = {case: {"kubeconfig": b64(text)} for case, text in cases.items()}
    data["missing-key"] = {"config": b64(m("missing-key"))}
    data["not-utf8"] = {
        "kubeconfig": base64.b64encode(b"\xff\xfe" + m("not-utf8").encode()).decode()
    }
    assert set(data) == set(HOSTILE)
    return data


def all_markers() -> list[str]:
    return [marker(case) for case in HOSTILE] + [marker("bad-ca-token")]


def markers_in(text: str, markers: list[str]) -> dict[str, int]:
    return {mk: text.count(mk) for mk in markers if mk in text}


def hub_text(hub_api: Any) -> str:
    """Every Event, MemberCluster and ComputeJob on the hub, as one JSON text."""
    core, custom = client.CoreV1Api(hub_api), client.CustomObjectsApi(hub_api)
    events = hub_api.sanitize_for_serialization(core.list_event_for_all_namespaces().items)
    found = {
        "events": events,
        "memberclusters": custom.list_cluster_custom_object(GROUP, VERSION, "memberclusters"),
        "computejobs": custom.list_cluster_custom_object(GROUP, VERSION, "computejobs"),
    }
    return json.dumps(found)


def leaks(operator: OperatorProcess, hub_api: Any, markers: list[str]) -> dict[str, Any]:
    log_text = operator.log_path.read_text(encoding="utf-8", errors="replace")
    hub = hub_text(hub_api)
    return {
        "log_lines": len(log_text.splitlines()),
        "log_lines_on_hostile_members": sum("leak-" in line for line in log_text.splitlines()),
        "hub_bytes": len(hub),
        "in_log": markers_in(log_text, markers),
        "on_hub": markers_in(hub, markers),
    }


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (body.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


@pytest.fixture(scope="module")
def hostile(
    fleet: testbed.FleetInfo, hub_api: Any, operator: OperatorProcess
) -> Iterator[dict[str, str]]:
    """The hostile Secrets and a MemberCluster for each; case → MemberCluster name."""
    core, custom = client.CoreV1Api(hub_api), client.CustomObjectsApi(hub_api)
    names: dict[str, str] = {}
    for case, data in hostile_secrets(fleet, hub_api).items():
        name = f"leak-{case}-{RUN}"
        core.create_namespaced_secret(
            fleet.secret_namespace, {"metadata": {"name": name}, "data": data}
        )
        body = member_cluster_body(fleet.members[0].name, fleet.secret_namespace)
        body["metadata"]["name"] = name
        body["spec"]["kubeconfigSecretRef"]["name"] = name
        custom.create_cluster_custom_object(GROUP, VERSION, "memberclusters", body)
        names[case] = name
    try:
        yield names
    finally:
        for name in names.values():
            for delete in (
                lambda n=name: custom.delete_cluster_custom_object(
                    GROUP, VERSION, "memberclusters", n
                ),
                lambda n=name: core.delete_namespaced_secret(n, fleet.secret_namespace),
            ):
                try:
                    delete()
                except ApiException as exc:
                    if exc.status != 404:
                        raise


def test_no_secret_marker_reaches_a_log_event_or_status(
    operator: OperatorProcess, hub_api: Any, hostile: dict[str, str], namespace: str
) -> None:
    custom = client.CustomObjectsApi(hub_api)
    started = time.monotonic()

    def all_not_ready() -> dict[str, dict[str, Any]] | None:
        got = {
            case: condition(
                custom.get_cluster_custom_object(GROUP, VERSION, "memberclusters", n), "Ready"
            )
            for case, n in hostile.items()
        }
        return got if all(c.get("status") == "False" for c in got.values()) else None

    ready = wait_for(all_not_ready, "every hostile MemberCluster Ready=False", 120)
    # A job placed meanwhile: its Events and status join what is searched, and it proves
    # the hostile members hold nothing up.
    hub = Hub(hub_api, namespace)
    hub.create(computejob("beside-hostile", origin="chengdu", sensitivity="low"))
    hub.wait_phase("beside-hostile", *PLACED)
    markers = all_markers()
    found = leaks(operator, hub_api, markers)
    summary = {
        "hostile_secrets": len(hostile),
        "markers": len(markers),
        "reasons": {
            case: f"{c.get('reason')}: {c.get('message', '')[:120]}" for case, c in ready.items()
        },
        "operator_log_lines_searched": found["log_lines"],
        "of_them_about_hostile_members": found["log_lines_on_hostile_members"],
        "hub_bytes_searched": found["hub_bytes"],
        "markers_leaked": sum(found["in_log"].values()) + sum(found["on_hub"].values()),
        "leaked_where": {"log": found["in_log"], "hub": found["on_hub"]},
        "operator_restarts": 0 if operator.proc and operator.proc.poll() is None else 1,
        "seconds": round(time.monotonic() - started, 1),
    }
    write_summary("secret_markers", summary)
    assert summary["markers_leaked"] == 0, summary["leaked_where"]
    assert summary["operator_restarts"] == 0
    # Each refusal names what is wrong (a field or a reason), not the Secret.
    assert all(c.get("reason") for c in ready.values()), ready


# -- the bad-input corpus with the operator running ---------------------------------------


def generated(count: int) -> list[dict[str, Any]]:
    """``count`` manifests drawn by hypothesis, the same ones every run (derandomized)."""
    out: list[dict[str, Any]] = []

    @settings(
        max_examples=count,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(manifest=computejob_manifests())
    def collect(manifest: dict[str, Any]) -> None:
        out.append(manifest)

    collect()
    return out


def create(hub_api: Any, body: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """Create on the hub as ``kubectl create`` does (strict field validation): (the object,
    "") or (None, the API server's message)."""
    custom = client.CustomObjectsApi(hub_api)
    strict = {"field_validation": "Strict"}
    try:
        if body.get("kind") == "MemberCluster":
            made = custom.create_cluster_custom_object(
                GROUP, VERSION, "memberclusters", body, **strict
            )
            return made, ""
        ns = body["metadata"]["namespace"]
        made = custom.create_namespaced_custom_object(
            GROUP, VERSION, ns, "computejobs", body, **strict
        )
        return made, ""
    except ApiException as exc:
        try:
            return None, str(json.loads(exc.body or "{}").get("message") or exc.reason)
        except ValueError:
            return None, str(exc.reason)
    except ValueError as exc:  # the client refuses to send it (e.g. not serializable)
        return None, str(exc)


def refusal(job: dict[str, Any]) -> dict[str, Any]:
    """Why a job is Pending: not placed (Scheduled=False), or placed and refused on dispatch."""
    scheduled = condition(job, "Scheduled")
    return scheduled if scheduled.get("status") == "False" else condition(job, "Dispatched")


def corpus(tenant: str) -> list[dict[str, Any]]:
    docs = []
    for row in JOBS:
        if row.get("accept"):
            continue  # limits the hub admits on purpose: valid, not bad input
        name = row.get("name", f"bad-{uuid.uuid4().hex[:8]}")
        doc = base_job("a" * name if isinstance(name, int) else name)
        doc["metadata"]["namespace"] = tenant
        for path, value in (row.get("edits") or {}).items():
            apply_edit(doc, path, value)
        docs.append(doc)
    for row in MEMBERS:
        spec: dict[str, Any] = {"hub": "gansu", "region": "west", "location": "qingyang",
                                "kubeconfigSecretRef": {"name": "gansu-qingyang"}}  # fmt: skip
        for key, value in row["edits"].items():
            if value is None:
                spec.pop(key, None)
            else:
                spec[key] = value
        docs.append({"apiVersion": f"{GROUP}/{VERSION}", "kind": "MemberCluster",
                     "metadata": {"name": f"bad-{uuid.uuid4().hex[:8]}"}, "spec": spec})  # fmt: skip
    return docs


def test_bad_input_never_reaches_a_member_and_valid_jobs_keep_being_placed(
    operator: OperatorProcess,
    hub_api: Any,
    member_apis: dict[str, Any],
    admission: Admission,
) -> None:
    started = time.monotonic()
    tenant = admission.tenant
    pid = operator.proc.pid if operator.proc else None
    size = suite_size(200, 1000)
    docs = corpus(tenant)
    for manifest in generated(size):
        manifest["metadata"]["namespace"] = tenant
        manifest["metadata"]["name"] = f"gen-{uuid.uuid4().hex[:10]}"
        docs.append(manifest)
    hub = Hub(hub_api, tenant)
    counts = {"refused_at_admission": 0, "admitted": 0}
    admitted: dict[str, str] = {}  # uid → name
    valid: dict[str, str] = {}
    with CreationLog(member_apis, tenant) as created:
        for i, doc in enumerate(docs):
            if i % 20 == 0:  # a valid job alongside every 20 bad inputs
                body = computejob(f"valid-{i:04d}", origin="chengdu", sensitivity="low", cpu="100m")
                valid[hub.create(body)["metadata"]["uid"]] = body["metadata"]["name"]
            obj, error = create(hub_api, doc)
            if obj is None:
                counts["refused_at_admission"] += 1
                assert error, doc
                continue
            counts["admitted"] += 1
            if obj.get("kind") == "ComputeJob":
                admitted[obj["metadata"]["uid"]] = obj["metadata"]["name"]
            else:  # not expected (the summary says); removed so it cannot join the fleet
                client.CustomObjectsApi(hub_api).delete_cluster_custom_object(
                    GROUP, VERSION, "memberclusters", obj["metadata"]["name"]
                )

        def settled() -> dict[str, dict[str, Any]] | None:
            items = {j["metadata"]["uid"]: j for j in hub_jobs(hub_api, tenant)}
            pending = [
                u
                for u in [*valid, *admitted]
                if not (items.get(u, {}).get("status") or {}).get("conditions")
            ]
            placed = [u for u in valid if (items[u].get("status") or {}).get("phase") in PLACED]
            return items if not pending and len(placed) == len(valid) else None

        items = wait_for(settled, "every job placed or refused with a condition", 240)
        time.sleep(3.0)  # a late member create would show in the creation log now
    refused = {  # a clear condition: Pending, and why (not placed, or a member refused it)
        uid: refusal(items[uid])
        for uid in admitted
        if (items[uid].get("status") or {}).get("phase") == "Pending"
    }
    invalid = {u for u, c in refused.items() if c.get("reason") == "InvalidSpec"}
    warned = {  # each refusal also has a Warning Event of its reason
        e.involved_object.uid
        for e in client.CoreV1Api(hub_api).list_namespaced_event(tenant).items
        if e.type == "Warning" and e.involved_object.uid in refused
    }
    for uid in invalid:  # the field is named
        message = refused[uid].get("message", "")
        assert re.search(r"(spec|metadata)[.\[]", message), message
    on_members_for_bad = {u: w for u, w in created.created.items() if u in refused}
    placed_valid = [u for u in valid if (items[u].get("status") or {}).get("phase") in PLACED]
    alive = operator.proc is not None and operator.proc.poll() is None
    restarts = 0 if alive and operator.proc is not None and operator.proc.pid == pid else 1
    found = leaks(operator, hub_api, all_markers())
    summary = {
        "inputs_tried": len(docs),
        "hand_corpus": len(docs) - size,
        "generated": size,
        "refused_at_admission": counts["refused_at_admission"],
        "admitted": counts["admitted"],
        "admitted_memberclusters": counts["admitted"] - len(admitted),
        "refused_by_operator": len(refused),
        "refused_by_operator_reasons": dict(
            Counter(str(c.get("reason")) for c in refused.values())
        ),
        "refused_by_operator_examples": {
            str(c.get("reason")): str(c.get("message"))[:160] for c in refused.values()
        },
        "refused_by_operator_with_warning_event": len(warned & set(refused)),
        "admitted_valid_and_placed": sum(
            (items[u].get("status") or {}).get("phase") in PLACED for u in admitted
        ),
        "operator_restarts": restarts,
        "valid_jobs_submitted_alongside": len(valid),
        "valid_jobs_placed_alongside": len(placed_valid),
        "member_objects_created_for_bad_inputs": len(on_members_for_bad),
        "secret_markers_leaked": sum(found["in_log"].values()) + sum(found["on_hub"].values()),
        "seconds": round(time.monotonic() - started, 1),
        "size": "full" if size == 1000 else "ci (COMPUTEGRID_SUITES=full: 1,000 generated)",
    }
    write_summary("bad_input", summary)
    assert restarts == 0
    assert len(placed_valid) == len(valid)
    assert not on_members_for_bad, on_members_for_bad
    assert summary["refused_by_operator_with_warning_event"] == len(refused)
    assert summary["secret_markers_leaked"] == 0, found
    assert summary["admitted_memberclusters"] == 0  # the corpus's MemberClusters all refused
