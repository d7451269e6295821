"""The hub's unfinished ComputeJobs, read by a restart (fleet/client.py): selected by the hub
where its CRD lets it, filtered here where it does not."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from computegrid.fleet import HubClient
from computegrid.fleet.rest import ApiException

JOBS = [
    {"metadata": {"name": "new"}},
    {"metadata": {"name": "running"}, "status": {"phase": "Running"}},
    {"metadata": {"name": "done"}, "status": {"phase": "Succeeded"}},
    {"metadata": {"name": "failed"}, "status": {"phase": "Failed"}},
]


class Hub:
    """A hub answering lists: with field selectors (a CRD with selectable fields) or not."""

    def __init__(self, selects: bool) -> None:
        self.selects = selects
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def list_all(
        self,
        path: str,
        query: Mapping[str, Any] | None = None,
        page: int = 500,
        *,
        keep: Callable[[Any], Any] | None = None,
    ) -> tuple[list[Any], str]:
        query = dict(query or {})
        self.calls.append((path, query))
        selector = query.get("fieldSelector", "")
        if selector and not self.selects:
            raise ApiException(400, "Bad Request", '"status.phase" is not a known field selector')
        excluded = {part.split("!=")[1] for part in selector.split(",") if "!=" in part}
        items = [j for j in JOBS if (j.get("status") or {}).get("phase") not in excluded]
        return [keep(i) if keep else i for i in items], "1"


@pytest.mark.parametrize("selects", [True, False], ids=["hub-selects", "old-crd"])
def test_only_unfinished_jobs_either_way(selects: bool) -> None:
    hub = Hub(selects)
    found = HubClient(hub).unfinished_computejobs()  # type: ignore[arg-type]
    assert [j["metadata"]["name"] for j in found] == ["new", "running"]
    assert hub.calls[0][1]["fieldSelector"] == "status.phase!=Succeeded,status.phase!=Failed"
    assert len(hub.calls) == (1 if selects else 2)


def test_one_list_per_watched_namespace() -> None:
    hub = Hub(True)
    HubClient(hub).unfinished_computejobs(["team-a", "team-b"])  # type: ignore[arg-type]
    assert [p for p, _ in hub.calls] == [
        "/apis/computegrid.io/v1alpha1/namespaces/team-a/computejobs",
        "/apis/computegrid.io/v1alpha1/namespaces/team-b/computejobs",
    ]


def test_other_errors_are_not_hidden() -> None:
    class Down(Hub):
        def list_all(self, *args: Any, **kwargs: Any) -> tuple[list[Any], str]:
            raise ApiException(503, "Service Unavailable", "")

    with pytest.raises(ApiException):
        HubClient(Down(True)).unfinished_computejobs()  # type: ignore[arg-type]


def test_the_cached_form_keeps_the_placements_cluster_and_drops_its_bulk() -> None:
    """A pinned delegation to a child hub reads ``status.placement.cluster`` from the cache."""
    from computegrid.fleet.client import computejob_essence

    body = {
        "metadata": {"name": "j", "managedFields": [{"manager": "x"}]},
        "status": {"phase": "Scheduled", "placement": {"cluster": "hub-b/c1", "reasons": ["r"]}},
    }
    kept = computejob_essence(body)
    assert kept["status"] == {"phase": "Scheduled", "placement": {"cluster": "hub-b/c1"}}
    assert "managedFields" not in kept["metadata"]
