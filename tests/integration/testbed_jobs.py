"""batch/v1 Jobs for the test bed's tests: a body kwok's Stages finish, and waits on them.

Why a module: the test bed's own tests and its repair tests both prove a member works by
running a Job to the end; ``computegrid.io/run-seconds`` sets how long its pod runs and
``computegrid.io/fail`` makes it fail (deploy/testbed/stages.yaml).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from computegrid.testbed import kube


def batch_job(name: str, run_seconds: float, fail: bool = False) -> dict[str, Any]:
    annotations = {"computegrid.io/run-seconds": str(run_seconds)}
    if fail:
        annotations["computegrid.io/fail"] = "true"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "main",
                            "image": "busybox",
                            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                        }
                    ],
                },
            },
        },
    }


def wait_job(api: Any, namespace: str, name: str, condition: str) -> Any:
    batch: Any = client.BatchV1Api(api)

    def done() -> Any:
        job = batch.read_namespaced_job(name, namespace)
        conds = {c.type: c.status for c in (job.status.conditions or [])}
        return job if conds.get(condition) == "True" else None

    try:
        return kube.wait_for(done, f"job {name} {condition}", timeout=60)
    except kube.NotReadyError as exc:
        pods = [
            (p.metadata.name, p.status.phase, p.spec.node_name, p.status.conditions)
            for p in job_pods(api, namespace, name)
        ]
        raise AssertionError(f"{exc}; pods: {pods}") from exc


def job_pods(api: Any, namespace: str, name: str) -> list[Any]:
    core: Any = client.CoreV1Api(api)
    return list(core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items)
