"""The API types: quantities, validation that names the field, annotations, pod policy, CRDs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from computegrid.api import (
    AnnotationError,
    ComputeJob,
    LatencySensitivity,
    MemberCluster,
    QuantityError,
    format_quantity,
    latency_sensitivity,
    max_latency_ms,
    origin_city,
    parse_quantity,
    pod_policy_violations,
    restricted_template,
)
from computegrid.api.crdgen import all_crds
from computegrid.cli.crds import render

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("4", Decimal(4)),
        ("1.5", Decimal("1.5")),
        ("32Gi", Decimal(32 * 2**30)),
        ("1Ti", Decimal(2**40)),
        ("2k", Decimal(2000)),
        ("1e3", Decimal(1000)),
        (8, Decimal(8)),
    ],
)
def test_parse_quantity(text: str | int, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "8x", "Gi", "1.2.3", "--1", "1 Gi", "x" * 100])
def test_bad_quantities(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("amount", "resource", "text"),
    [(2**40 * 1.2, "memory", "1.2Ti"), (301.0, "cpu", "301"), (0.5, "cpu", "500m")],
)
def test_format_quantity(amount: float, resource: str, text: str) -> None:
    assert format_quantity(amount, resource) == text


def job_doc(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "computeType": "intelligent",
        "resources": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "4"},
        "parallelism": 2,
        "template": restricted_template("x"),
    }
    body.update(spec)
    return {
        "apiVersion": "computegrid.io/v1alpha1",
        "kind": "ComputeJob",
        "metadata": {"name": "j", "namespace": "team-a", "annotations": {}},
        "spec": body,
    }


def test_a_valid_job_round_trips_with_camel_case() -> None:
    job = ComputeJob.model_validate(job_doc(placement={"allowedRegions": ["west"]}))
    dumped = job.model_dump(by_alias=True, exclude_none=True)
    assert dumped["spec"]["computeType"] == "intelligent"
    assert dumped["spec"]["placement"]["allowedRegions"] == ["west"]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"computeType": "quantum"}, ("spec", "computeType")),
        ({"parallelism": 0}, ("spec", "parallelism")),
        ({"resources": {"cpu": "8x"}}, ("spec", "resources", "cpu")),
        ({"resources": {"cpu": "0"}}, ("spec", "resources")),
        ({"bogus": 1}, ("spec", "bogus")),
        ({"placement": {"allowedRegions": ["north"]}}, ("spec", "placement", "allowedRegions", 0)),
    ],
)
def test_validation_errors_name_the_field(change: dict[str, Any], where: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        ComputeJob.model_validate(job_doc(**change))
    assert info.value.errors()[0]["loc"] == where


def test_annotations() -> None:
    job = ComputeJob.model_validate(job_doc())
    assert latency_sensitivity(job) is LatencySensitivity.MEDIUM  # the default
    with pytest.raises(AnnotationError, match=r"computegrid.io/origin.*is required"):
        origin_city(job)
    job.metadata.annotations.update(
        {
            "computegrid.io/latency-sensitivity": "LOW",
            "computegrid.io/origin": " Shanghai ",
            "computegrid.io/max-latency-ms": "40",
        }
    )
    assert latency_sensitivity(job) is LatencySensitivity.LOW
    assert origin_city(job) == "Shanghai"
    assert max_latency_ms(job) == 40.0
    job.metadata.annotations["computegrid.io/max-latency-ms"] = "fast"
    with pytest.raises(AnnotationError, match=r"max-latency-ms.*'fast'"):
        max_latency_ms(job)
    job.metadata.annotations["computegrid.io/latency-sensitivity"] = "urgent"
    with pytest.raises(AnnotationError, match="'urgent' is not one of high, medium, low"):
        latency_sensitivity(job)


@pytest.mark.parametrize(
    ("template", "finding"),
    [
        ({"spec": {"containers": []}}, "spec.template.spec.containers: at least one"),
        ({"metadata": {}}, "spec.template.spec: required"),
        ([], "spec.template: must be a PodTemplateSpec object"),
    ],
)
def test_a_malformed_template_is_named_without_a_rule(template: Any, finding: str) -> None:
    found = pod_policy_violations(template)
    assert found[0].startswith(finding) and "(rule" not in found[0]


def test_member_cluster_model() -> None:
    mc = MemberCluster.model_validate(
        {
            "metadata": {"name": "gansu-qingyang"},
            "spec": {
                "hub": "gansu",
                "region": "west",
                "location": "qingyang",
                "kubeconfigSecretRef": {"name": "gansu-qingyang"},
            },
        }
    )
    assert mc.spec.kubeconfig_secret_ref.namespace == "computegrid-system"
    with pytest.raises(ValidationError):
        MemberCluster.model_validate({"spec": {"hub": "Gansu!", "region": "west"}})


@pytest.mark.parametrize("folder", ["crds", "charts/computegrid/crds"])
def test_committed_crds_match_the_models(folder: str) -> None:
    """Golden test: regenerate with `make generate` when the models change."""
    for name, crd in all_crds().items():
        committed = (ROOT / folder / name).read_text(encoding="utf-8")
        assert committed == render(crd), f"{folder}/{name} drifted: run `make generate`"


def test_crds_are_structural() -> None:
    """No $ref, no anyOf without int-or-string, every property typed: what the API server wants."""

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            assert "$ref" not in node, path
            if "properties" in node:
                for key, child in node["properties"].items():
                    assert "type" in child or child.get("x-kubernetes-int-or-string"), (
                        f"{path}.{key}"
                    )
                    walk(child, f"{path}.{key}")
            for key in ("items", "additionalProperties"):
                if isinstance(node.get(key), dict):
                    walk(node[key], f"{path}[{key}]")

    for crd in all_crds().values():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        walk(schema, crd["metadata"]["name"])
        columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
        assert "Age" in columns
    cj = yaml.safe_load(render(all_crds()["computegrid.io_computejobs.yaml"]))
    cols = [c["name"] for c in cj["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert cols[:4] == ["Phase", "Cluster", "Hub", "Latency-ms"]
