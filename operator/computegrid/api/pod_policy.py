"""Which pod rules are in force where: restricted by default, relaxed per namespace by name.

A platform team trusts some tenants more than others. ``PodPolicy`` says, per hub namespace,
the Pod Security level (``baseline`` drops the restricted-only rules) and named exemptions
(any rule of ``pod_security.ALL_RULES``), plus the priority classes tenants may use. It is
kept in one ConfigMap (``to_configmap_data``) that both enforcers read: the hub's
ValidatingAdmissionPolicy (as its params, at ``kubectl apply``) and the operator (before any
member call), so the two never disagree. Flat keys, because CEL cannot parse YAML::

    default.level: restricted
    namespace.team-hpc.level: baseline
    namespace.team-hpc.exempt: hostPorts,procMount
    allowedPriorityClasses: batch-low,batch-high

The same ConfigMap carries what each tenant namespace the operator creates on a member gets:
a ResourceQuota (``tenant.resourceQuota``, its ``spec.hard``) and a LimitRange
(``tenant.limitRange``: per-container ``defaultRequest``/``default``/``max``/``min``), each a
JSON object, because resource names such as ``nvidia.com/gpu`` cannot be ConfigMap keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from computegrid.api.common import ApiModel
from computegrid.api.member_cluster import DNS_LABEL
from computegrid.api.pod_security import (
    ALL_RULES,
    RESTRICTED_RULES,
    check_template,
)
from computegrid.api.quantities import parse_quantity

CONFIGMAP_NAME = "computegrid-pod-policy"
_NAMESPACE_PREFIX = "namespace."
QUOTA_KEY = "tenant.resourceQuota"
LIMIT_RANGE_KEY = "tenant.limitRange"
_RESOURCE_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)

# Why these defaults: generous enough that no job the scheduler would place on a national-hub
# member is held back by them, yet a ceiling a runaway tenant hits. A ResourceQuota on
# requests.* refuses any container without requests, so the LimitRange fills in a small
# default request (never a default limit: a default limit below a job's request would make
# its pods invalid).
DEFAULT_QUOTA = {"pods": "2000", "requests.cpu": "4000", "requests.memory": "16Ti"}
DEFAULT_LIMIT_RANGE: dict[str, dict[str, str]] = {
    "defaultRequest": {"cpu": "100m", "memory": "64Mi"}
}
LIMIT_RANGE_KINDS = ("defaultRequest", "default", "max", "min")


def _resources(value: Mapping[str, Any], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, quantity in value.items():
        if not isinstance(name, str) or len(name) > 253 or not _RESOURCE_NAME.match(name):
            raise ValueError(f"{where}: {name!r} is not a resource name")
        if isinstance(quantity, bool) or not isinstance(quantity, str | int | float):
            raise ValueError(f"{where}[{name}]: {quantity!r} is not a quantity")
        if parse_quantity(quantity) < 0:
            raise ValueError(f"{where}[{name}]: {quantity!r} is negative")
        out[name] = str(quantity)
    return out


class TenantLimits(ApiModel):
    """The ResourceQuota and LimitRange of every tenant namespace on a member."""

    resource_quota: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_QUOTA),
        description="ResourceQuota spec.hard; empty: no ResourceQuota.",
    )
    limit_range: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_LIMIT_RANGE.items()},
        description="Per-container defaultRequest/default/max/min; empty: no LimitRange.",
    )

    @field_validator("resource_quota", mode="before")
    @classmethod
    def _quota(cls, value: Any) -> dict[str, str]:
        if not isinstance(value, Mapping):
            raise ValueError(f"{QUOTA_KEY}: expected an object of resource: quantity")
        return _resources(value, QUOTA_KEY)

    @field_validator("limit_range", mode="before")
    @classmethod
    def _limit_range(cls, value: Any) -> dict[str, dict[str, str]]:
        if not isinstance(value, Mapping):
            raise ValueError(f"{LIMIT_RANGE_KEY}: expected an object")
        out = {}
        for kind, resources in value.items():
            if kind not in LIMIT_RANGE_KINDS:
                raise ValueError(
                    f"{LIMIT_RANGE_KEY}.{kind}: not one of {', '.join(LIMIT_RANGE_KINDS)}"
                )
            if not isinstance(resources, Mapping):
                raise ValueError(f"{LIMIT_RANGE_KEY}.{kind}: expected an object")
            out[kind] = _resources(resources, f"{LIMIT_RANGE_KEY}.{kind}")
        return out


class PodSecurityLevel(StrEnum):
    """The Pod Security Standards levels a hub offers (``privileged`` is never offered)."""

    BASELINE = "baseline"
    RESTRICTED = "restricted"


class NamespacePodPolicy(ApiModel):
    """The level and the named exemptions of one namespace (or of all, as the default)."""

    level: PodSecurityLevel = Field(
        default=PodSecurityLevel.RESTRICTED, description="baseline or restricted."
    )
    exempt: list[str] = Field(default_factory=list, description="Rule names not enforced.")

    @field_validator("exempt")
    @classmethod
    def _known_rules(cls, value: list[str]) -> list[str]:
        unknown = [rule for rule in value if rule not in ALL_RULES]
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)}: not a rule name; rules: {', '.join(ALL_RULES)}"
            )
        return value

    def rules(self) -> frozenset[str]:
        relaxed = set(self.exempt)
        if self.level is PodSecurityLevel.BASELINE:
            relaxed |= set(RESTRICTED_RULES)
        return frozenset(ALL_RULES) - relaxed


class PodPolicy(ApiModel):
    """The whole policy: a default, per-namespace overrides, the allowed priority classes."""

    default: NamespacePodPolicy = Field(
        default_factory=NamespacePodPolicy, description="For namespaces not listed."
    )
    namespaces: dict[str, NamespacePodPolicy] = Field(
        default_factory=dict, description="Hub namespace → its policy."
    )
    allowed_priority_classes: list[str] = Field(
        default_factory=list, description="priorityClassName values a tenant may use."
    )
    tenant: TenantLimits = Field(
        default_factory=TenantLimits, description="Quota and limits of member namespaces."
    )

    @field_validator("namespaces")
    @classmethod
    def _namespace_names(
        cls, value: dict[str, NamespacePodPolicy]
    ) -> dict[str, NamespacePodPolicy]:
        for name in value:
            if len(name) > 63 or not re.match(DNS_LABEL, name):
                raise ValueError(f"{name!r} is not a namespace name")
        return value

    def for_namespace(self, namespace: str | None) -> NamespacePodPolicy:
        return self.namespaces.get(namespace or "", self.default)

    def violations(
        self, template: Any, namespace: str | None, path: str = "spec.template"
    ) -> list[str]:
        """The refusals for ``template`` of a job in hub namespace ``namespace``."""
        rules = self.for_namespace(namespace).rules()
        found = check_template(template, path, rules, self.allowed_priority_classes)
        return [str(v) for v in found]

    def to_configmap_data(self) -> dict[str, str]:
        data = {"allowedPriorityClasses": ",".join(self.allowed_priority_classes)}
        data[QUOTA_KEY] = json.dumps(self.tenant.resource_quota, sort_keys=True)
        data[LIMIT_RANGE_KEY] = json.dumps(self.tenant.limit_range, sort_keys=True)
        data |= _entry("default.", self.default)
        for name, policy in sorted(self.namespaces.items()):
            data |= _entry(f"{_NAMESPACE_PREFIX}{name}.", policy)
        return data

    @classmethod
    def from_configmap_data(cls, data: Mapping[str, str]) -> PodPolicy:
        """The policy a ConfigMap's ``data`` holds; ValueError naming the key it cannot use."""
        raw: dict[str, Any] = {"default": {}, "namespaces": {}, "tenant": {}}
        for key, value in data.items():
            if key == "allowedPriorityClasses":
                raw["allowedPriorityClasses"] = _split(value)
                continue
            if key in (QUOTA_KEY, LIMIT_RANGE_KEY):
                field = "resourceQuota" if key == QUOTA_KEY else "limitRange"
                raw["tenant"][field] = _json_object(key, value)
                continue
            scope, _, field = key.rpartition(".")
            if field not in ("level", "exempt"):
                raise ValueError(f"data[{key}]: not a pod policy key")
            if scope == "default":
                target = raw["default"]
            elif scope.startswith(_NAMESPACE_PREFIX):
                target = raw["namespaces"].setdefault(scope[len(_NAMESPACE_PREFIX) :], {})
            else:
                raise ValueError(f"data[{key}]: not a pod policy key")
            target[field] = _split(value) if field == "exempt" else value.strip()
        return cls.model_validate(raw)


def _entry(prefix: str, policy: NamespacePodPolicy) -> dict[str, str]:
    return {f"{prefix}level": policy.level.value, f"{prefix}exempt": ",".join(policy.exempt)}


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _json_object(key: str, value: str) -> Any:
    """A JSON value of the ConfigMap; the error names the key, never quotes the text."""
    try:
        return json.loads(value) if value.strip() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"data[{key}]: not JSON (line {exc.lineno} column {exc.colno})") from None
