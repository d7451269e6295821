"""The pod policy as a ValidatingAdmissionPolicy: the same rules, enforced at ``kubectl apply``.

Why a ValidatingAdmissionPolicy and not CEL on the CRD: the rules in force depend on the
namespace (``PodPolicy``: a level and exemptions per namespace), and CRD validation rules
see only the object. A ValidatingAdmissionPolicy sees ``request.namespace`` and takes the
policy's ConfigMap as its params (``pod_policy.to_configmap_data``, the same data the
operator reads), so both enforcers apply one policy. Its CEL is generated here from the
constants of ``pod_security`` (allowed capabilities, sysctls, volume types...), so the two
cannot drift; one validation per rule and field, each message the path, level and rule, the
way the operator words it. What does not depend on the namespace (a template has
containers) is CEL on the CRD instead (``TEMPLATE_RULES``).

Only CREATE and a changed ``spec`` are checked: Kopf's own patches (finalizers, annotations)
of an object admitted under an older policy must never be refused, or it could not be
deleted. The Helm chart ships the generated policy (``make generate``, ``cli/crds.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import JsonValue

from computegrid.api.common import (
    ANN_BACKOFF_LIMIT,
    ANN_LATENCY,
    ANN_MAX_LATENCY,
    ANN_ORIGIN,
    GROUP,
    VERSION,
)
from computegrid.api.pod_security import (
    APPARMOR_ANNOTATION,
    BASELINE_CAPABILITIES,
    CONTAINER_LISTS,
    HOST_NAMESPACES,
    LEVEL_OF,
    PROFILE_TYPES,
    RESTRICTED,
    RESTRICTED_CAPABILITIES,
    RESTRICTED_VOLUMES,
    SAFE_SYSCTLS,
    SELINUX_TYPES,
    TENANT_SERVICE_ACCOUNTS,
)

SPEC = "spec.template.spec"

# The CRD's schema of ``template``: a pod spec with at least one container object. Plain
# OpenAPI, not CEL: CEL cannot name a field of an object whose schema declares none (the API
# server refuses ``has(self.spec)`` there: "undefined field 'spec'").
_OPEN_OBJECT: dict[str, JsonValue] = {
    "type": "object",
    "x-kubernetes-preserve-unknown-fields": True,
}
# The fields the admission policy's CEL walks are typed here, so a wrong type (``volumes:
# "x"``) is refused by the schema naming the field, instead of failing the CEL expression.
_CONTAINER: dict[str, JsonValue] = {
    **_OPEN_OBJECT,
    "properties": {
        "securityContext": _OPEN_OBJECT,
        "ports": {"type": "array", "items": _OPEN_OBJECT},
    },
}
TEMPLATE_SCHEMA: dict[str, JsonValue] = {
    "required": ["spec"],
    "properties": {
        "metadata": {
            **_OPEN_OBJECT,
            "properties": {
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}}
            },
        },
        "spec": {
            **_OPEN_OBJECT,
            "required": ["containers"],
            "properties": {
                "containers": {"type": "array", "minItems": 1, "items": _CONTAINER},
                "initContainers": {"type": "array", "items": _CONTAINER},
                "ephemeralContainers": {"type": "array", "items": _CONTAINER},
                "volumes": {"type": "array", "items": _OPEN_OBJECT},
                "securityContext": _OPEN_OBJECT,
            },
        },
    },
}

VARIABLES = [
    ("tmpl", "object.spec.template"),
    (
        "ann",
        "has(object.metadata.annotations) ? object.metadata.annotations : {}",
    ),
    ("spec", "has(variables.tmpl.spec) ? variables.tmpl.spec : {}"),
    ("podSC", "has(variables.spec.securityContext) ? variables.spec.securityContext : {}"),
    *[(f"c_{f}", f"has(variables.spec.{f}) ? variables.spec.{f} : []") for f in CONTAINER_LISTS],
    *[
        (f"sc_{f}", f"variables.c_{f}.map(c, has(c.securityContext) ? c.securityContext : {{}})")
        for f in CONTAINER_LISTS
    ],
    ("volumes", "has(variables.spec.volumes) ? variables.spec.volumes : []"),
    (
        "annotations",
        "has(variables.tmpl.metadata) && has(variables.tmpl.metadata.annotations) "
        "? variables.tmpl.metadata.annotations : {}",
    ),
    # The policy (params: the pod-policy ConfigMap), as PodPolicy.for_namespace reads it.
    ("data", "params != null && has(params.data) ? params.data : {}"),
    (
        "scope",
        "(('namespace.' + request.namespace + '.level') in variables.data || "
        "('namespace.' + request.namespace + '.exempt') in variables.data) "
        "? 'namespace.' + request.namespace + '.' : 'default.'",
    ),
    ("level", "variables.data[?variables.scope + 'level'].orValue('restricted')"),
    (
        "exempt",
        "variables.data[?variables.scope + 'exempt'].orValue('').split(',').map(r, r.trim())",
    ),
    (
        "priorityClasses",
        "variables.data[?'allowedPriorityClasses'].orValue('').split(',').map(r, r.trim())",
    ),
]


def _list(values: Iterable[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in sorted(values)) + "]"


def _set(obj: str, field: str) -> str:
    """CEL: ``obj.field`` is present (CEL's has() on a dyn map)."""
    return f"has({obj}.{field})"


def _is_true(obj: str, field: str) -> str:
    return f"({_set(obj, field)} && {obj}.{field} == true)"


def _type_in(obj: str, field: str, allowed: Iterable[str]) -> str:
    """``obj.field.type`` unset or one of ``allowed``."""
    return (
        f"(!{_set(obj, field)} || !has({obj}.{field}.type) || "
        f"{obj}.{field}.type in {_list(allowed)})"
    )


def _caps_added_within(allowed: Iterable[str]) -> str:
    return (
        "!has({sc}.capabilities) || !has({sc}.capabilities.add) || "
        f"{{sc}}.capabilities.add.all(c, c in {_list(allowed)})"
    )


def _containers(check: str, over: str = "sc") -> list[tuple[str, str]]:
    """(path, CEL) per container list: ``check`` (``{sc}`` the securityContext, or with
    ``over="c"`` ``{c}`` the container) must hold for every container of the list."""
    out = []
    for field in CONTAINER_LISTS:
        expression = check.format(sc="s", c="s")
        out.append((f"{SPEC}.{field}[*]", f"variables.{over}_{field}.all(s, {expression})"))
    return out


def _securitycontexts(check: str) -> list[tuple[str, str]]:
    """(path, CEL) for a check of the pod's securityContext and then of each container's."""
    pod = [(f"{SPEC}.securityContext", check.format(sc="variables.podSC"))]
    return pod + [(f"{path}.securityContext", cel) for path, cel in _containers(check)]


def rule_checks() -> list[tuple[str, str, str, str]]:
    """(rule, field path, CEL that must hold, why) for every rule of ``pod_security``."""
    checks: list[tuple[str, str, str, str]] = []

    def add(rule: str, where: list[tuple[str, str]], field: str, why: str) -> None:
        checks.extend((rule, f"{path}{field}", cel, why) for path, cel in where)

    def pod(expression: str) -> list[tuple[str, str]]:
        return [(SPEC, expression)]

    only_caps = "only {} may be added (names are matched exactly, as Kubernetes does)"
    profiles = _list(PROFILE_TYPES)
    # --- baseline
    add(
        "hostProcess",
        _securitycontexts(
            "!(has({sc}.windowsOptions) && " + _is_true("{sc}.windowsOptions", "hostProcess") + ")"
        ),
        ".windowsOptions.hostProcess",
        "must not be true",
    )
    for flag in HOST_NAMESPACES:
        add("hostNamespaces", pod(f"!{_is_true('variables.spec', flag)}"), f".{flag}",
            "the host's namespaces are refused")  # fmt: skip
    add("privileged", _containers(f"!{_is_true('{sc}', 'privileged')}"),
        ".securityContext.privileged", "must not be true")  # fmt: skip
    add(
        "capabilities_baseline",
        _containers(_caps_added_within(BASELINE_CAPABILITIES)),
        ".securityContext.capabilities.add",
        only_caps.format(", ".join(sorted(BASELINE_CAPABILITIES))),
    )
    add("hostPathVolumes", pod("variables.volumes.all(v, !has(v.hostPath))"),
        ".volumes[*].hostPath", "is refused")  # fmt: skip
    add(
        "hostPorts",
        _containers(
            "!has({c}.ports) || {c}.ports.all(p, !has(p.hostPort) || p.hostPort == 0)", "c"
        ),
        ".ports[*].hostPort",
        "must be 0 or unset",
    )
    add("appArmorProfile", _securitycontexts(_type_in("{sc}", "appArmorProfile", PROFILE_TYPES)),
        ".appArmorProfile.type", "must be RuntimeDefault or Localhost")  # fmt: skip
    checks.append(
        (
            "appArmorProfile",
            f"spec.template.metadata.annotations[{APPARMOR_ANNOTATION}*]",
            f"variables.annotations.all(k, !k.startsWith('{APPARMOR_ANNOTATION}') || "
            "variables.annotations[k] == 'runtime/default' || "
            "variables.annotations[k].startsWith('localhost/'))",
            "must be runtime/default or localhost/<profile>",
        )
    )
    options = "{sc}.seLinuxOptions"
    selinux = (
        f"!has({options}) || ((!has({options}.type) || {options}.type in {_list(SELINUX_TYPES)})"
        f" && (!has({options}.user) || {options}.user == '')"
        f" && (!has({options}.role) || {options}.role == ''))"
    )
    add(
        "seLinuxOptions",
        _securitycontexts(selinux),
        ".seLinuxOptions",
        f"type must be one of {', '.join(sorted(SELINUX_TYPES - {''}))} or unset; "
        "user and role unset",
    )
    add("procMount", _containers("!has({sc}.procMount) || {sc}.procMount == 'Default'"),
        ".securityContext.procMount", "must be Default or unset")  # fmt: skip
    add(
        "seccompProfile_baseline",
        _securitycontexts(_type_in("{sc}", "seccompProfile", PROFILE_TYPES)),
        ".seccompProfile.type",
        "must be RuntimeDefault or Localhost (Unconfined is refused)",
    )
    add(
        "sysctls",
        pod(
            "!has(variables.podSC.sysctls) || variables.podSC.sysctls.all(x, has(x.name) && "
            f"x.name in {_list(SAFE_SYSCTLS)})"
        ),
        ".securityContext.sysctls[*].name",
        "must be one of the safe sysctls",
    )
    # --- restricted
    add(
        "restrictedVolumes",
        pod(f"variables.volumes.all(v, v.all(k, k == 'name' || k in {_list(RESTRICTED_VOLUMES)}))"),
        ".volumes[*]",
        f"volume type is refused; allowed: {', '.join(sorted(RESTRICTED_VOLUMES))}",
    )
    add(
        "allowPrivilegeEscalation",
        _containers("has({sc}.allowPrivilegeEscalation) && {sc}.allowPrivilegeEscalation == false"),
        ".securityContext.allowPrivilegeEscalation",
        "must be set to false",
    )
    pod_non_root = _is_true("variables.podSC", "runAsNonRoot")
    add("runAsNonRoot", pod(f"!has(variables.podSC.runAsNonRoot) || {pod_non_root}"),
        ".securityContext.runAsNonRoot", "must be true")  # fmt: skip
    add(
        "runAsNonRoot",
        _containers(f"has({{sc}}.runAsNonRoot) ? {{sc}}.runAsNonRoot == true : {pod_non_root}"),
        ".securityContext.runAsNonRoot",
        "must be true (here or in the pod's securityContext)",
    )
    add("runAsUser", _securitycontexts("!has({sc}.runAsUser) || {sc}.runAsUser != 0"),
        ".runAsUser", "must not be 0 (root)")  # fmt: skip
    pod_profile = (
        "(has(variables.podSC.seccompProfile) && has(variables.podSC.seccompProfile.type) && "
        f"variables.podSC.seccompProfile.type in {profiles})"
    )
    add(
        "seccompProfile_restricted",
        _containers(
            "has({sc}.seccompProfile) && has({sc}.seccompProfile.type) ? "
            f"{{sc}}.seccompProfile.type in {profiles} : {pod_profile}"
        ),
        ".securityContext.seccompProfile.type",
        "must be RuntimeDefault or Localhost (here or in the pod's securityContext)",
    )
    add(
        "capabilities_restricted",
        _containers(_caps_added_within(RESTRICTED_CAPABILITIES)),
        ".securityContext.capabilities.add",
        only_caps.format(", ".join(sorted(RESTRICTED_CAPABILITIES))),
    )
    add(
        "capabilities_restricted",
        _containers(
            "has({sc}.capabilities) && has({sc}.capabilities.drop) && "
            "'ALL' in {sc}.capabilities.drop"
        ),
        ".securityContext.capabilities.drop",
        "must include ALL",
    )
    # --- hub
    add("nodeName", pod("!has(variables.spec.nodeName) || variables.spec.nodeName == ''"),
        ".nodeName", "a member's nodes are chosen by its scheduler, never by a tenant")  # fmt: skip
    for field in ("serviceAccountName", "serviceAccount"):
        add(
            "serviceAccountName",
            pod(
                f"!has(variables.spec.{field}) || "
                f"variables.spec.{field} in {_list(TENANT_SERVICE_ACCOUNTS)}"
            ),
            f".{field}",
            "only the tenant namespace's default service account may be used",
        )
    add(
        "automountServiceAccountToken",
        pod(f"!{_is_true('variables.spec', 'automountServiceAccountToken')}"),
        ".automountServiceAccountToken",
        "must not be true: member pods get no API token",
    )
    add(
        "priorityClassName",
        pod(
            "!has(variables.spec.priorityClassName) || variables.spec.priorityClassName == '' "
            "|| variables.spec.priorityClassName in variables.priorityClasses"
        ),
        ".priorityClassName",
        "is not one of the allowed priority classes",
    )
    return checks


def annotation_checks() -> list[tuple[str, str, str]]:
    """(annotation, CEL that must hold, why): the computegrid.io annotations the operator reads.

    Never relaxed: they are not pod rules. The city of ``origin`` is checked by the operator
    (the city table is not CEL); here only that it is there.
    """
    get = "variables.ann[{key!r}]"
    number = r"^\\s*\\+?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?\\s*$"
    checks = [
        (
            ANN_LATENCY,
            "!({key!r} in variables.ann) || "
            + get
            + ".trim().lowerAscii() in ['high', 'medium', 'low']",
            "must be one of high, medium, low",
        ),
        (
            ANN_ORIGIN,
            "{key!r} in variables.ann && " + get + ".trim() != ''",
            "is required: the city of the job's users, e.g. shanghai",
        ),
        (
            ANN_MAX_LATENCY,
            "!({key!r} in variables.ann) || ("
            + get
            + f".matches('{number}') && "
            + "double("
            + get
            + ".trim()) > 0.0 && double("
            + get
            + ".trim()) <= 1000.0)",
            "must be a number of milliseconds in (0, 1000]",
        ),
        (
            ANN_BACKOFF_LIMIT,
            "!({key!r} in variables.ann) || ("
            + get
            + ".matches('^\\\\s*\\\\+?[0-9]{{1,3}}\\\\s*$') && "
            + "int("
            + get
            + ".trim()) <= 100)",
            "must be an integer in 0..100",
        ),
    ]
    return [(key, cel.format(key=key), why) for key, cel, why in checks]


def validations() -> list[dict[str, str]]:
    """One validation a check; a relaxed rule (level or exemption) short-circuits to true."""
    out = [
        {"expression": cel, "message": f"metadata.annotations[{key}]: {why}", "reason": "Invalid"}
        for key, cel, why in annotation_checks()
    ]
    for rule, path, cel, why in rule_checks():
        level = LEVEL_OF[rule]
        relaxed = f"'{rule}' in variables.exempt"
        if level == RESTRICTED:
            relaxed = f"variables.level == 'baseline' || {relaxed}"
        out.append(
            {
                "expression": f"{relaxed} || ({cel})",
                "message": f"{path}: {level}: {why} (rule {rule})",
                "reason": "Invalid",
            }
        )
    return out


def validating_admission_policy(name: str) -> dict[str, Any]:
    """The ValidatingAdmissionPolicy called ``name`` (bound by the chart, with its params)."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": [VERSION],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["computejobs"],
                    }
                ]
            },
            "matchConditions": [
                {
                    "name": "new-or-changed-spec",
                    "expression": "request.operation == 'CREATE' || "
                    "!has(oldObject.spec) || object.spec != oldObject.spec",
                }
            ],
            "variables": [{"name": n, "expression": e} for n, e in VARIABLES],
            "validations": validations(),
        },
    }
