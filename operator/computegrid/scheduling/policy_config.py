"""A scheduling ``Policy`` from configuration data (the chart's ConfigMap), checked in full.

Pure: it takes the already-parsed mapping (``fleet_data.policy_file`` reads the YAML). Every
refusal is a ``PolicyError`` whose message starts with the source and the path at fault,
e.g. ``policy.yaml: pluginArgs.CriticalHeadroom: reserve must be in [0, 1), got 1.5``, so the
operator can log it and keep the policy it has.

Semantics beyond ``Policy``'s own fields:

* an empty document is the built-in policy;
* ``weights``: a latency class left out keeps its built-in weights; a class given is taken as
  written (plugins it does not list weigh 0);
* ``pluginArgs`` keys may be camelCase as in Kubernetes (``appliesTo``) or snake_case; each
  plugin is built with its arguments here, so an unknown or out-of-range argument is refused
  now, not at the first decision.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from computegrid.api.common import LatencySensitivity
from computegrid.api.validation import first_error
from computegrid.scheduling.plugins import FILTERS, SCORES, build_filter, build_score
from computegrid.scheduling.policy import DEFAULT_WEIGHTS, Policy

# Dataclass fields every plugin has that are not for users to set.
_RESERVED_ARGS = frozenset({"name", "static"})


class PolicyError(ValueError):
    """A refused policy; the message names the source and the plugin or field at fault."""


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _plugin_args(source: str, raw: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{source}: pluginArgs: expected a mapping of plugin name to arguments")
    out: dict[str, dict[str, Any]] = {}
    for plugin, args in raw.items():
        where = f"{source}: pluginArgs.{plugin}"
        if plugin not in FILTERS and plugin not in SCORES:
            known = ", ".join([*FILTERS, *SCORES])
            raise PolicyError(f"{where}: unknown plugin; known: {known}")
        if not isinstance(args, Mapping):
            raise PolicyError(f"{where}: expected a mapping of argument to value")
        converted = {_snake(str(k)): v for k, v in args.items()}
        for key in converted.keys() & _RESERVED_ARGS:
            raise PolicyError(f"{where}: {key!r} is not an argument")
        build = build_filter if plugin in FILTERS else build_score
        try:
            build(plugin, converted)
        except TypeError as exc:  # an unexpected keyword: say which
            bad = re.search(r"argument '(\w+)'", str(exc))
            name = bad.group(1) if bad else "an argument"
            raise PolicyError(f"{where}: unknown argument {name!r}") from None
        except ValueError as exc:
            raise PolicyError(f"{where}: {exc}") from None
        out[str(plugin)] = converted
    return out


def _weights(source: str, raw: Any) -> dict[str, Any]:
    """The built-in weights of the classes left out, the given ones as written."""
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{source}: weights: expected a mapping of latency class to weights")
    merged: dict[str, Any] = {k.value: dict(v) for k, v in DEFAULT_WEIGHTS.items()}
    known = ", ".join(s.value for s in LatencySensitivity)
    for sensitivity, weights in raw.items():
        if sensitivity not in merged:
            raise PolicyError(
                f"{source}: weights.{sensitivity}: unknown latency class; known: {known}"
            )
        if isinstance(weights, Mapping):
            for plugin in weights:
                if plugin not in SCORES:
                    raise PolicyError(
                        f"{source}: weights.{sensitivity}.{plugin}: unknown score plugin; "
                        f"known: {', '.join(SCORES)}"
                    )
        merged[sensitivity] = weights
    return merged


def policy_from_mapping(data: Mapping[str, Any] | None, source: str = "policy") -> Policy:
    """The checked Policy the mapping describes; PolicyError naming the field otherwise."""
    if data is None:
        return Policy()
    if not isinstance(data, Mapping):
        raise PolicyError(f"{source}: expected a mapping (filters, weights, pluginArgs, ...)")
    fields = dict(data)
    if "weights" in fields:
        fields["weights"] = _weights(source, fields["weights"])
    if "pluginArgs" in fields:
        fields["pluginArgs"] = _plugin_args(source, fields["pluginArgs"])
    try:
        return Policy.model_validate(fields)
    except ValidationError as exc:
        where, message = first_error(exc)
        if message.startswith(f"{where}."):  # the validator already names the full path
            raise PolicyError(f"{source}: {message}") from None
        raise PolicyError(f"{source}: {where}: {message}") from None
