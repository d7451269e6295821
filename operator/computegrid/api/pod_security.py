"""The pod policy: the Kubernetes Pod Security Standards, rule by rule, plus a hub's own rules.

A ComputeJob's pod runs on a member cluster the tenant does not own, so by default its template
must pass the ``restricted`` profile of the Pod Security Standards
(https://kubernetes.io/docs/concepts/security/pod-security-standards/, v1.36 text), which
includes every ``baseline`` control. Rule names are the check IDs of Kubernetes' own Pod
Security admission (``capabilities_restricted``, ``hostPathVolumes``...), so a platform team
relaxing a rule uses the name Kubernetes prints. On top come the rules a multi-cluster hub
needs (``HUB_RULES``): a tenant may not pin a member's node, borrow a member's service
account or its token, or claim a priority class it was not given.

Matching is what Kubernetes does: exact and case-sensitive. Capabilities are checked against
an allow-list, so ``CAP_SYS_ADMIN`` and ``sys_admin`` (which container runtimes would
normalise to SYS_ADMIN) are refused like ``SYS_ADMIN``, and ``drop`` must hold ``ALL`` as
written. Each finding names the field path the way ``kubectl`` does, the level and the rule.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")

BASELINE = "baseline"
RESTRICTED = "restricted"
HUB = "hub"
TEMPLATE = "template"

# Check IDs of the Pod Security admission controller, grouped by the level that adds them.
BASELINE_RULES = (
    "hostProcess",
    "hostNamespaces",
    "privileged",
    "capabilities_baseline",
    "hostPathVolumes",
    "hostPorts",
    "appArmorProfile",
    "seLinuxOptions",
    "procMount",
    "seccompProfile_baseline",
    "sysctls",
)
RESTRICTED_RULES = (
    "restrictedVolumes",
    "allowPrivilegeEscalation",
    "runAsNonRoot",
    "runAsUser",
    "seccompProfile_restricted",
    "capabilities_restricted",
)
HUB_RULES = ("nodeName", "serviceAccountName", "automountServiceAccountToken", "priorityClassName")
ALL_RULES = BASELINE_RULES + RESTRICTED_RULES + HUB_RULES
LEVEL_OF = (
    dict.fromkeys(BASELINE_RULES, BASELINE)
    | dict.fromkeys(RESTRICTED_RULES, RESTRICTED)
    | dict.fromkeys(HUB_RULES, HUB)
)

# The Docker default set the baseline profile lets a container add back.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
# Namespaced sysctls the baseline profile calls safe (the list grew in v1.27 and v1.29).
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
PROFILE_TYPES = frozenset({"RuntimeDefault", "Localhost"})  # seccomp and AppArmor alike
RESTRICTED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
TENANT_SERVICE_ACCOUNTS = frozenset({"", "default"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


@dataclass(frozen=True)
class Violation:
    """One refused setting: where, which rule, and why in words."""

    path: str
    rule: str
    message: str

    @property
    def level(self) -> str:
        return LEVEL_OF.get(self.rule, TEMPLATE)

    def __str__(self) -> str:
        if self.rule == TEMPLATE:  # a malformed template: no rule to relax, just the fault
            return f"{self.path}: {self.message}"
        return f"{self.path}: {self.level}: {self.message} (rule {self.rule})"


def pod_policy_violations(
    template: Any,
    path: str = "spec.template",
    *,
    rules: Collection[str] = ALL_RULES,
    priority_classes: Collection[str] = (),
) -> list[str]:
    """Every refused setting in a PodTemplateSpec, as ``"<field path>: <level>: <why>"`` lines.

    ``rules`` are the rules in force (all of them unless a policy relaxes some);
    ``priority_classes`` the ``priorityClassName`` values a tenant may use.
    """
    return [str(v) for v in check_template(template, path, rules, priority_classes)]


def check_template(
    template: Any, path: str, rules: Collection[str], priority_classes: Collection[str] = ()
) -> list[Violation]:
    if not isinstance(template, dict):
        return [Violation(path, TEMPLATE, "must be a PodTemplateSpec object")]
    spec = template.get("spec")
    if not isinstance(spec, dict):
        return [Violation(f"{path}.spec", TEMPLATE, "required (a pod spec with containers)")]
    found: list[Violation] = []
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        found.append(
            Violation(f"{path}.spec.containers", TEMPLATE, "at least one container is required")
        )
    found += _wrong_types(spec, f"{path}.spec")
    pod = _Pod(template, path, frozenset(priority_classes))
    for rule in ALL_RULES:
        if rule in rules:
            found += getattr(pod, rule)()
    return found


# The JSON types of the fields the rules read. A member's API server refuses a wrong type
# anyway; refusing it here keeps a rule from reading ``add: SYS_ADMIN`` (a string) as absent.
_POD_TYPES: dict[str, type] = {
    "hostNetwork": bool,
    "hostPID": bool,
    "hostIPC": bool,
    "automountServiceAccountToken": bool,
    "nodeName": str,
    "serviceAccountName": str,
    "serviceAccount": str,
    "priorityClassName": str,
    "securityContext": dict,
    "volumes": list,
    **dict.fromkeys(CONTAINER_LISTS, list),
}
_CONTEXT_TYPES: dict[str, type] = {
    "runAsNonRoot": bool,
    "runAsUser": int,
    "privileged": bool,
    "allowPrivilegeEscalation": bool,
    "procMount": str,
    "capabilities": dict,
    "seccompProfile": dict,
    "appArmorProfile": dict,
    "seLinuxOptions": dict,
    "windowsOptions": dict,
    "sysctls": list,
}


_TYPE_NAMES = {
    bool: "a boolean",
    str: "a string",
    int: "an integer",
    dict: "an object",
    list: "a list",
}


def _wrong_types(spec: dict[str, Any], path: str) -> list[Violation]:
    found = _typed(spec, path, _POD_TYPES)
    contexts = [(f"{path}.securityContext", spec.get("securityContext"))]
    for field in CONTAINER_LISTS:
        for i, container in enumerate(_list(spec.get(field))):
            where = f"{path}.{field}[{i}]"
            if not isinstance(container, dict):
                found.append(Violation(where, TEMPLATE, "must be a container object"))
                continue
            found += _typed(container, where, {"securityContext": dict, "ports": list})
            contexts.append((f"{where}.securityContext", container.get("securityContext")))
    for where, context in contexts:
        if isinstance(context, dict):
            found += _typed(context, where, _CONTEXT_TYPES)
            caps = context.get("capabilities")
            if isinstance(caps, dict):
                found += _typed(caps, f"{where}.capabilities", {"add": list, "drop": list})
    return found


def _typed(body: dict[str, Any], path: str, types: dict[str, type]) -> list[Violation]:
    found = []
    for field, kind in types.items():
        value = body.get(field)
        if value is None:
            continue
        # bool is an int in Python, never in Kubernetes' JSON.
        wrong = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        if wrong:
            name = _TYPE_NAMES.get(kind, kind.__name__)
            found.append(Violation(f"{path}.{field}", TEMPLATE, f"must be {name}"))
    return found


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class _Pod:
    """One template, one method a rule: each yields the violations of its rule."""

    def __init__(self, template: dict[str, Any], path: str, classes: frozenset[str]) -> None:
        self.meta = _obj(template.get("metadata"))
        self.meta_path = f"{path}.metadata"
        self.spec = _obj(template.get("spec"))
        self.path = f"{path}.spec"
        self.pod_sc = _obj(self.spec.get("securityContext"))
        self.classes = classes

    def containers(self) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(path, container, its securityContext) for every container of every list."""
        for field in CONTAINER_LISTS:
            for i, container in enumerate(_list(self.spec.get(field))):
                where = f"{self.path}.{field}[{i}]"
                c = _obj(container)
                yield where, c, _obj(c.get("securityContext"))

    def contexts(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The pod's securityContext then each container's, with their paths."""
        yield f"{self.path}.securityContext", self.pod_sc
        for where, _, sc in self.containers():
            yield f"{where}.securityContext", sc

    # --- baseline -------------------------------------------------------------------------

    def hostProcess(self) -> list[Violation]:
        return [
            Violation(f"{where}.windowsOptions.hostProcess", "hostProcess", "must not be true")
            for where, sc in self.contexts()
            if _obj(sc.get("windowsOptions")).get("hostProcess") is True
        ]

    def hostNamespaces(self) -> list[Violation]:
        return [
            Violation(f"{self.path}.{flag}", "hostNamespaces", "the host's namespaces are refused")
            for flag in HOST_NAMESPACES
            if self.spec.get(flag) is True
        ]

    def privileged(self) -> list[Violation]:
        return [
            Violation(f"{where}.securityContext.privileged", "privileged", "must not be true")
            for where, _, sc in self.containers()
            if sc.get("privileged") is True
        ]

    def capabilities_baseline(self) -> list[Violation]:
        return self._capabilities_added("capabilities_baseline", BASELINE_CAPABILITIES)

    def _capabilities_added(self, rule: str, allowed: frozenset[str]) -> list[Violation]:
        found = []
        for where, _, sc in self.containers():
            added = _list(_obj(sc.get("capabilities")).get("add"))
            bad = [cap for cap in added if cap not in allowed]
            if bad:
                shown = ", ".join(repr(c) for c in bad)
                found.append(
                    Violation(
                        f"{where}.securityContext.capabilities.add",
                        rule,
                        f"adds {shown}; only {', '.join(sorted(allowed))} may be added "
                        "(names are matched exactly, as Kubernetes does)",
                    )
                )
        return found

    def hostPathVolumes(self) -> list[Violation]:
        return [
            Violation(f"{self.path}.volumes[{i}].hostPath", "hostPathVolumes", "is refused")
            for i, volume in enumerate(_list(self.spec.get("volumes")))
            if "hostPath" in _obj(volume)
        ]

    def hostPorts(self) -> list[Violation]:
        return [
            Violation(f"{where}.ports[{j}].hostPort", "hostPorts", "must be 0 or unset")
            for where, c, _ in self.containers()
            for j, port in enumerate(_list(c.get("ports")))
            if _obj(port).get("hostPort") not in (None, 0)
        ]

    def appArmorProfile(self) -> list[Violation]:
        found = self._profile_types("appArmorProfile", "appArmorProfile", "")
        for key, value in _obj(self.meta.get("annotations")).items():
            if str(key).startswith(APPARMOR_ANNOTATION) and not (
                value == "runtime/default" or str(value).startswith("localhost/")
            ):
                found.append(
                    Violation(
                        f"{self.meta_path}.annotations[{key}]",
                        "appArmorProfile",
                        "must be runtime/default or localhost/<profile>",
                    )
                )
        return found

    def seLinuxOptions(self) -> list[Violation]:
        found = []
        for where, sc in self.contexts():
            options = _obj(sc.get("seLinuxOptions"))
            if options.get("type", "") not in SELINUX_TYPES:
                found.append(
                    Violation(
                        f"{where}.seLinuxOptions.type",
                        "seLinuxOptions",
                        f"must be one of {', '.join(sorted(SELINUX_TYPES - {''}))} or unset",
                    )
                )
            found += [
                Violation(f"{where}.seLinuxOptions.{field}", "seLinuxOptions", "must be unset")
                for field in ("user", "role")
                if options.get(field) not in (None, "")
            ]
        return found

    def procMount(self) -> list[Violation]:
        return [
            Violation(f"{where}.securityContext.procMount", "procMount", "must be Default or unset")
            for where, _, sc in self.containers()
            if sc.get("procMount") not in (None, "Default")
        ]

    def seccompProfile_baseline(self) -> list[Violation]:
        return self._profile_types(
            "seccompProfile", "seccompProfile_baseline", " (Unconfined is refused)"
        )

    def _profile_types(self, field: str, rule: str, note: str) -> list[Violation]:
        """``<context>.<field>.type``, where set, is RuntimeDefault or Localhost."""
        return [
            Violation(f"{where}.{field}.type", rule, f"must be RuntimeDefault or Localhost{note}")
            for where, sc in self.contexts()
            if "type" in _obj(sc.get(field)) and _obj(sc.get(field))["type"] not in PROFILE_TYPES
        ]

    def sysctls(self) -> list[Violation]:
        return [
            Violation(
                f"{self.path}.securityContext.sysctls[{i}].name",
                "sysctls",
                f"{_obj(item).get('name')!r} is not one of the safe sysctls",
            )
            for i, item in enumerate(_list(self.pod_sc.get("sysctls")))
            if _obj(item).get("name") not in SAFE_SYSCTLS
        ]

    # --- restricted -----------------------------------------------------------------------

    def restrictedVolumes(self) -> list[Violation]:
        found = []
        for i, volume in enumerate(_list(self.spec.get("volumes"))):
            for source in sorted(set(_obj(volume)) - {"name"} - RESTRICTED_VOLUMES):
                found.append(
                    Violation(
                        f"{self.path}.volumes[{i}].{source}",
                        "restrictedVolumes",
                        f"volume type is refused; allowed: {', '.join(sorted(RESTRICTED_VOLUMES))}",
                    )
                )
        return found

    def allowPrivilegeEscalation(self) -> list[Violation]:
        return [
            Violation(
                f"{where}.securityContext.allowPrivilegeEscalation",
                "allowPrivilegeEscalation",
                "must be set to false",
            )
            for where, _, sc in self.containers()
            if sc.get("allowPrivilegeEscalation") is not False
        ]

    def runAsNonRoot(self) -> list[Violation]:
        pod_says = self.pod_sc.get("runAsNonRoot")
        if pod_says is not None and pod_says is not True:
            return [
                Violation(
                    f"{self.path}.securityContext.runAsNonRoot", "runAsNonRoot", "must be true"
                )
            ]
        # Containers may leave it unset only when the pod sets it true.
        return [
            Violation(
                f"{where}.securityContext.runAsNonRoot",
                "runAsNonRoot",
                "must be true (here or in the pod's securityContext)",
            )
            for where, _, sc in self.containers()
            if sc.get("runAsNonRoot") is not True
            and not (pod_says is True and sc.get("runAsNonRoot") is None)
        ]

    def runAsUser(self) -> list[Violation]:
        return [
            Violation(f"{where}.runAsUser", "runAsUser", "must not be 0 (root)")
            for where, sc in self.contexts()
            if "runAsUser" in sc and sc["runAsUser"] == 0
        ]

    def seccompProfile_restricted(self) -> list[Violation]:
        pod_type = _obj(self.pod_sc.get("seccompProfile")).get("type")
        found = []
        for where, _, sc in self.containers():
            own = _obj(sc.get("seccompProfile")).get("type")
            if own in PROFILE_TYPES or (own is None and pod_type in PROFILE_TYPES):
                continue
            found.append(
                Violation(
                    f"{where}.securityContext.seccompProfile.type",
                    "seccompProfile_restricted",
                    "must be RuntimeDefault or Localhost (here or in the pod's securityContext)",
                )
            )
        return found

    def capabilities_restricted(self) -> list[Violation]:
        found = self._capabilities_added("capabilities_restricted", RESTRICTED_CAPABILITIES)
        for where, _, sc in self.containers():
            if "ALL" not in _list(_obj(sc.get("capabilities")).get("drop")):
                found.append(
                    Violation(
                        f"{where}.securityContext.capabilities.drop",
                        "capabilities_restricted",
                        "must include ALL",
                    )
                )
        return found

    # --- hub ------------------------------------------------------------------------------

    def nodeName(self) -> list[Violation]:
        if self.spec.get("nodeName") in (None, ""):
            return []
        return [
            Violation(
                f"{self.path}.nodeName",
                "nodeName",
                "a member's nodes are chosen by its scheduler, never by a tenant",
            )
        ]

    def serviceAccountName(self) -> list[Violation]:
        # serviceAccount is the deprecated alias the API server still honours.
        return [
            Violation(
                f"{self.path}.{field}",
                "serviceAccountName",
                "only the tenant namespace's default service account may be used",
            )
            for field in ("serviceAccountName", "serviceAccount")
            if self.spec.get(field) not in (None, *TENANT_SERVICE_ACCOUNTS)
        ]

    def automountServiceAccountToken(self) -> list[Violation]:
        if self.spec.get("automountServiceAccountToken") is not True:
            return []
        return [
            Violation(
                f"{self.path}.automountServiceAccountToken",
                "automountServiceAccountToken",
                "must not be true: member pods get no API token",
            )
        ]

    def priorityClassName(self) -> list[Violation]:
        name = self.spec.get("priorityClassName")
        if name in (None, "") or name in self.classes:
            return []
        allowed = ", ".join(sorted(self.classes)) or "none are configured"
        return [
            Violation(
                f"{self.path}.priorityClassName",
                "priorityClassName",
                f"{name!r} is not an allowed priority class ({allowed})",
            )
        ]


def restricted_template(
    image: str, *, name: str = "main", metadata: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    """The smallest PodTemplateSpec running ``image`` that the restricted profile admits.

    >>> check_template(restricted_template("busybox"), "t", ALL_RULES)
    []
    """
    container = {
        "name": name,
        "image": image,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    pod_spec = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        **spec,
    }
    return {"metadata": metadata or {}, "spec": pod_spec}
