"""The scheduling policy from YAML text: the chart's ConfigMap key or a file.

Parsing here (the pure core may not import yaml), checking in
``scheduling.policy_config.policy_from_mapping``; both kinds of failure are a ``PolicyError``
naming the source, so a caller keeps its old policy on any of them.
"""

from __future__ import annotations

from pathlib import Path

from computegrid.fleet_data.inputs import InputError, parse_documents
from computegrid.scheduling import Policy
from computegrid.scheduling.policy_config import PolicyError, policy_from_mapping

#: The ConfigMap key the chart writes the policy under (templates/policy.yaml).
POLICY_KEY = "policy.yaml"


def load_policy(text: str, source: str = POLICY_KEY) -> Policy:
    """The checked Policy of a YAML document; blank text is the built-in policy."""
    if not text.strip():
        return Policy()
    try:
        documents = parse_documents(text, source)
    except InputError as exc:
        raise PolicyError(str(exc)) from None
    if len(documents) != 1:
        raise PolicyError(f"{source}: expected one YAML document, got {len(documents)}")
    return policy_from_mapping(documents[0], source)


def read_policy_file(path: Path) -> Policy:
    """``load_policy`` of a file; an unreadable file is a PolicyError too."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read: {exc.__class__.__name__}") from None
    return load_policy(text, str(path))
