"""The pod-policy cases of tests/data/bad/pod-security.yaml, as ComputeJob pod templates.

One file, two enforcers: the unit tests feed each case to the operator's check, the
integration tests to the hub's admission policy, so both are held to the same list.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from computegrid.api import restricted_template

CASES_FILE = Path(__file__).resolve().parent / "data" / "bad" / "pod-security.yaml"


@dataclass(frozen=True)
class PodCase:
    rule: str
    field: str
    template: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.rule}@{self.field.removeprefix('spec.template.')}"


def merge(base: Any, patch: Any) -> Any:
    """``patch`` over ``base``: maps merge, a null deletes, anything else replaces."""
    if not (isinstance(base, dict) and isinstance(patch, dict)):
        return copy.deepcopy(patch)
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(base.get(key), value)
    return out


def case_template(raw: dict[str, Any]) -> dict[str, Any]:
    template = restricted_template("busybox", restartPolicy="Never")
    template["metadata"] = merge(template["metadata"], raw.get("metadata", {}))
    template["spec"] = merge(template["spec"], raw.get("pod", {}))
    first = template["spec"]["containers"][0]
    template["spec"]["containers"][0] = merge(first, raw.get("container", {}))
    return template


def pod_cases() -> list[PodCase]:
    raw = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
    return [PodCase(c["rule"], c["field"], case_template(c)) for c in raw]
