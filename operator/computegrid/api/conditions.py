"""Kubernetes-style conditions and RFC 3339 times (pure): one set of rules for every status.

A condition keeps its ``lastTransitionTime`` unless its status changes, so ``kubectl
describe`` says since when something holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def now_rfc3339(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def find_condition(
    conditions: list[Mapping[str, Any]] | None, kind: str
) -> Mapping[str, Any] | None:
    for condition in conditions or []:
        if condition.get("type") == kind:
            return condition
    return None


def condition(
    previous: list[Mapping[str, Any]] | None,
    kind: str,
    status: str,
    reason: str,
    message: str,
    now: str,
) -> dict[str, Any]:
    """A condition whose lastTransitionTime moves only when its status does."""
    old = find_condition(previous, kind)
    since = now
    if old is not None and old.get("status") == status and old.get("lastTransitionTime"):
        since = str(old["lastTransitionTime"])
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message[:1000],
        "lastTransitionTime": since,
    }


def merge_conditions(
    previous: list[Mapping[str, Any]] | None, *updates: dict[str, Any]
) -> list[dict[str, Any]]:
    """The previous conditions with ``updates`` replacing those of the same type."""
    kinds = {u["type"] for u in updates}
    kept = [dict(c) for c in previous or [] if c.get("type") not in kinds]
    return sorted([*kept, *updates], key=lambda c: str(c["type"]))
