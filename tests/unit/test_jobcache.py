"""The operator's compact cache of hub ComputeJobs (handlers/jobcache.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from computegrid.api import FailoverPolicy
from computegrid.handlers.jobcache import Entry
from computegrid.handlers.placement import InvalidJob


def body(generation: int = 1, version: str = "10", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "team-a",
            "name": "train",
            "uid": "u1",
            "generation": generation,
            "resourceVersion": version,
            "creationTimestamp": "2026-11-29T07:00:00Z",
            "annotations": {
                "computegrid.io/latency-sensitivity": "low",
                "computegrid.io/origin": "shanghai",
                "other": "x",
            },
        },
        "spec": {
            "computeType": "general",
            "resources": {"cpu": "1", "memory": "1Gi"},
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "c",
                            "image": "busybox",
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                }
            },
            **spec,
        },
        "status": {},
    }


def test_the_spec_is_kept_compact_and_read_back_whole() -> None:
    entry = Entry("u1", "team-a", "train")
    raw = body(failover={"policy": "Never", "gracePeriodSeconds": 600})
    assert entry.update(raw)
    assert entry.spec == raw["spec"]
    assert entry.spec_text is not None and len(entry.spec_text) < len(json.dumps(raw["spec"]))
    assert entry.failover(300.0) == (FailoverPolicy.NEVER, 600.0)
    assert entry.job().metadata.name == "train"
    assert "other" not in entry.meta["annotations"]


def test_a_new_generation_replaces_the_spec_and_what_was_parsed_from_it() -> None:
    entry = Entry("u1", "team-a", "train")
    entry.update(body())
    first = entry.request()
    assert entry.failover(300.0) == (FailoverPolicy.IF_NOT_STARTED, 300.0)
    entry.update(body(generation=2, version="12", failover={"policy": "Always"}))
    assert entry.failover(300.0) == (FailoverPolicy.ALWAYS, 300.0)
    assert entry.request() is not first
    assert not entry.update(body(generation=1, version="11"))  # older news is ignored
    assert entry.failover(300.0)[0] == FailoverPolicy.ALWAYS


def test_dispatched_drops_the_parsed_job_but_can_parse_it_again() -> None:
    entry = Entry("u1", "team-a", "train")
    entry.update(body())
    parsed, request = entry.job(), entry.request()
    entry.dispatched()
    assert entry.request() is request  # reservations still read it
    again = entry.job()
    assert again is not parsed and again == parsed


def test_a_finished_job_keeps_no_spec() -> None:
    entry = Entry("u1", "team-a", "train")
    finished = copy.deepcopy(body(version="20"))
    finished["status"] = {"phase": "Succeeded", "placement": {"cluster": "c", "reasons": ["r"]}}
    entry.update(finished)
    assert entry.spec is None and entry.spec_text is None
    assert entry.status["placement"] == {"cluster": "c"}
    with pytest.raises(InvalidJob, match="finished"):
        entry.job()
