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
"""

from __future__ import annotations

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

CONFIGMAP_NAME = "computegrid-pod-policy"
_NAMESPACE_PREFIX = "namespace."


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

    @field_validator("namespaces")
    @classmethod
    def _namespace_names(
        cls, value: dict[str, NamespacePodPolicy]
    ) -> dict[str, NamespacePodPolicy]:
        import re

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
        data |= _entry("default.", self.default)
        for name, policy in sorted(self.namespaces.items()):
            data |= _entry(f"{_NAMESPACE_PREFIX}{name}.", policy)
        return data

    @classmethod
    def from_configmap_data(cls, data: Mapping[str, str]) -> PodPolicy:
        """The policy a ConfigMap's ``data`` holds; ValueError naming the key it cannot use."""
        raw: dict[str, Any] = {"default": {}, "namespaces": {}}
        for key, value in data.items():
            if key == "allowedPriorityClasses":
                raw["allowedPriorityClasses"] = _split(value)
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
