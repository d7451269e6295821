"""Generated hostile and malformed ComputeJobs through the operator's own parsing.

Each manifest is refused with one line naming the field, or it is accepted, and then the
batch/v1 Job the operator would send a member carries none of the dangers the issue measured
reaching members (checked by a separate, deliberately plain oracle, not by the policy code).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings

from bad_manifests import computejob_manifests
from computegrid.dispatch import build_job_spec
from computegrid.handlers.placement import InvalidJob, parse_job, to_request

FIELD = re.compile(r"^(spec|metadata)[.\[]")
OUTCOMES: Counter[str] = Counter()


def dangers(job: dict[str, Any]) -> list[str]:
    """What must never reach a member, restated plainly from the issue's measurements."""
    pod = job["spec"]["template"]["spec"]
    found = [f for f in ("hostNetwork", "hostPID", "hostIPC") if pod.get(f) is True]
    found += ["nodeName"] if pod.get("nodeName") else []
    found += (
        ["serviceAccount"]
        if pod.get("serviceAccountName", "default") not in ("", "default")
        else []
    )
    found += (
        ["serviceAccount"] if pod.get("serviceAccount", "default") not in ("", "default") else []
    )
    found += ["priorityClass"] if pod.get("priorityClassName") else []
    found += ["token"] if pod.get("automountServiceAccountToken") is not False else []
    found += (
        ["hostPath/nfs"]
        if any("hostPath" in v or "nfs" in v for v in pod.get("volumes", []))
        else []
    )
    pod_sc = pod.get("securityContext") or {}
    found += ["root"] if pod_sc.get("runAsUser") == 0 else []
    found += (
        ["unconfined"] if (pod_sc.get("seccompProfile") or {}).get("type") == "Unconfined" else []
    )
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        sc = c.get("securityContext") or {}
        caps = sc.get("capabilities") or {}
        found += ["caps"] if set(caps.get("add") or []) - {"NET_BIND_SERVICE"} else []
        found += ["drop"] if "ALL" not in (caps.get("drop") or []) else []
        found += ["privileged"] if sc.get("privileged") is True else []
        found += ["escalation"] if sc.get("allowPrivilegeEscalation") is not False else []
        found += ["root"] if sc.get("runAsUser") == 0 else []
        found += ["hostPort"] if any(p.get("hostPort") for p in c.get("ports") or []) else []
    if not (
        pod_sc.get("runAsNonRoot") is True
        or all(
            (c.get("securityContext") or {}).get("runAsNonRoot") is True for c in pod["containers"]
        )
    ):
        found.append("maybe-root")
    return found


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(computejob_manifests())
def test_every_manifest_is_refused_naming_a_field_or_sent_safe(manifest: dict[str, Any]) -> None:
    manifest["metadata"].update(namespace="team-a", uid="u-1")
    try:
        job = parse_job(manifest)
        to_request(job)
    except InvalidJob as exc:
        message = str(exc)
        assert "\n" not in message and FIELD.match(message), message
        OUTCOMES["refused"] += 1
        return
    remote = build_job_spec(job, "member-1")
    assert dangers(remote) == [], manifest
    OUTCOMES["accepted"] += 1


def test_the_generator_reaches_both_outcomes() -> None:
    """Run after the property (file order): a generator that never passes proves nothing."""
    assert OUTCOMES["refused"] >= 1000 or OUTCOMES["refused"] + OUTCOMES["accepted"] < 1000
    assert OUTCOMES["accepted"] > 0 or OUTCOMES["refused"] + OUTCOMES["accepted"] < 1000
