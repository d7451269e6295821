"""CustomResourceDefinitions generated from the pydantic models, the single source of truth.

pydantic emits JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema: no ``$ref``,
no ``title``, ``nullable`` instead of ``anyOf [X, null]``, every property typed. This module
does that translation and adds what only a CRD has: names, scope, printer columns and the
status subresource.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from computegrid.api.common import GROUP, VERSION
from computegrid.api.compute_job import ComputeJobSpec, ComputeJobStatus
from computegrid.api.member_cluster import MemberClusterSpec, MemberClusterStatus

_DROP = {"title", "default"}


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema in the structural form the API server accepts."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _convert(raw, defs)
    return schema


def _convert(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs)
    any_of = node.get("anyOf")
    if isinstance(any_of, list) and not node.get("x-kubernetes-int-or-string"):
        others = [branch for branch in any_of if branch.get("type") != "null"]
        if len(others) == 1 and len(others) < len(any_of):
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return _convert({**rest, **others[0], "nullable": True}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _convert(prop, defs) for name, prop in value.items()}
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = _convert(value, defs)
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    elif out.get("type") == "object" and "additionalProperties" in out:
        extra = out["additionalProperties"]
        if extra is False:
            out.pop("additionalProperties")  # the API server prunes unknown fields itself
        elif extra is True:
            out.pop("additionalProperties")
            out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("x-kubernetes-preserve-unknown-fields") and "type" not in out:
        out["type"] = "object"
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def _crd(
    *,
    kind: str,
    plural: str,
    short: str,
    scope: str,
    spec: type[BaseModel],
    status: type[BaseModel],
    columns: list[dict[str, Any]],
    description: str,
    selectable: tuple[str, ...] = (),
) -> dict[str, Any]:
    schema = {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": structural_schema(spec),
            "status": structural_schema(status),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["computegrid"],
            },
            "scope": scope,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    **(
                        {"selectableFields": [{"jsonPath": path} for path in selectable]}
                        if selectable
                        else {}
                    ),
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def _col(name: str, path: str, kind: str = "string", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": kind, "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


AGE = _col("Age", ".metadata.creationTimestamp", "date")


def compute_job_crd() -> dict[str, Any]:
    return _crd(
        kind="ComputeJob",
        plural="computejobs",
        # Not "cj": batch/v1 CronJob has that short name and built-in names win in kubectl.
        short="cgj",
        scope="Namespaced",
        spec=ComputeJobSpec,
        status=ComputeJobStatus,
        description="Work placed by computegrid on the member cluster that fits its latency "
        "budget with the greenest, cheapest power.",
        columns=[
            _col("Phase", ".status.phase"),
            _col("Cluster", ".status.placement.cluster"),
            _col("Hub", ".status.placement.hub"),
            _col("Latency-ms", ".status.placement.latencyMs", "number"),
            _col("Start", ".status.deferral.start"),
            _col("Path", ".status.path"),
            _col("Carbon", ".status.placement.carbonIntensity", "number", priority=1),
            _col("Score", ".status.placement.score", "number", priority=1),
            AGE,
        ],
        # A restart lists only the jobs not finished (fieldSelector status.phase!=…), not a
        # history of thousands (fleet/client.py unfinished_computejobs; Kubernetes ≥ 1.31).
        selectable=(".status.phase",),
    )


def member_cluster_crd() -> dict[str, Any]:
    return _crd(
        kind="MemberCluster",
        plural="memberclusters",
        short="mc",
        scope="Cluster",
        spec=MemberClusterSpec,
        status=MemberClusterStatus,
        description="A member Kubernetes cluster of one compute hub, probed by computegrid.",
        columns=[
            _col("Hub", ".spec.hub"),
            _col("Region", ".spec.region"),
            _col("Type", ".spec.type", priority=1),
            _col("Ready", '.status.conditions[?(@.type=="Ready")].status'),
            _col("CPU-Avail", ".status.available.cpu"),
            _col("GPU-Avail", ".status.available.nvidia\\.com/gpu"),
            _col("Renewable", ".status.power.renewableShare", "number"),
            _col("Carbon", ".status.power.carbonIntensity", "number"),
            AGE,
        ],
    )


def all_crds() -> dict[str, dict[str, Any]]:
    """File name → CRD, in the order they are written and applied."""
    return {
        f"{GROUP}_computejobs.yaml": compute_job_crd(),
        f"{GROUP}_memberclusters.yaml": member_cluster_crd(),
    }
