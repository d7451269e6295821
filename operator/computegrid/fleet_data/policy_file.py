"""The scheduling policy from YAML text: the chart's ConfigMap key or a file.

Parsing here (the pure core may not import yaml), checking in
``scheduling.policy_config.policy_from_mapping``; both kinds of failure are a ``PolicyError``
naming the source, so a caller keeps its old policy on any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class PolicyOutcome:
    """What offering a policy text did: the policy now in force, and whether it changed."""

    policy: Policy
    changed: bool
    error: str | None = None  # the refusal, naming source, plugin and field; old policy kept


class PolicyKeeper:
    """The policy in force: a new text replaces it only when it loads; a bad one is refused
    and the old one stays. The operator offers the ConfigMap's text at start and on change.

    >>> keeper = PolicyKeeper()
    >>> keeper.offer("weights: {low: {Carbon: 1}}", "cg-system/cg-policy").error
    'cg-system/cg-policy: weights.low.Carbon: unknown score plugin; known: CarbonIntensity, ...'
    """

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy or Policy()

    def offer(self, text: str | None, source: str = POLICY_KEY) -> PolicyOutcome:
        """``text`` None (no ConfigMap, or no policy.yaml key in it): the built-in policy."""
        try:
            new = Policy() if text is None else load_policy(text, source)
        except PolicyError as exc:
            return PolicyOutcome(self.policy, False, str(exc))
        changed = new != self.policy
        self.policy = new
        return PolicyOutcome(new, changed)
