"""Every keyword in the generated CRD schemas is one Kubernetes' JSONSchemaProps has.

A pydantic construct the API server does not know (``propertyNames`` from a dict keyed by an
enum, say) is refused when the CRD is applied; this catches it before any cluster does, with
the client library's own list of the keywords.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import V1JSONSchemaProps

ROOT = Path(__file__).resolve().parents[2]
KNOWN = set(V1JSONSchemaProps.attribute_map.values())
# Keywords whose value is a map of names to schemas, not a schema.
NAMED = {"properties", "patternProperties", "definitions", "dependencies"}


def walk(schema: Any, path: str) -> list[str]:
    if not isinstance(schema, dict):
        return []
    bad = [f"{path}.{key}" for key in schema if key not in KNOWN]
    for key, value in schema.items():
        if key in NAMED and isinstance(value, dict):
            for name, sub in value.items():
                bad += walk(sub, f"{path}.{key}.{name}")
        elif key in ("items", "additionalProperties", "not"):
            bad += walk(value, f"{path}.{key}")
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            for i, sub in enumerate(value):
                bad += walk(sub, f"{path}.{key}[{i}]")
    return bad


@pytest.mark.parametrize("crd", sorted((ROOT / "crds").glob("*.yaml")), ids=lambda p: p.name)
def test_schema_keywords_are_kubernetes_ones(crd: Path) -> None:
    doc = yaml.safe_load(crd.read_text(encoding="utf-8"))
    for version in doc["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        assert walk(schema, version["name"]) == []


def test_the_check_catches_an_unknown_keyword() -> None:
    schema = {"type": "object", "properties": {"m": {"type": "object", "propertyNames": {}}}}
    assert walk(schema, "v") == ["v.properties.m.propertyNames"]
