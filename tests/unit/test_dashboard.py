"""The Grafana dashboard asks only for series the operator exports, and shows what it promises."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

import computegrid.handlers.metrics  # noqa: F401  (registers the operator's collectors)

DASHBOARD = Path(__file__).resolve().parents[2] / "charts/computegrid/dashboards/computegrid.json"
# Series a family exposes on /metrics, by its type (the text exposition format).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}
# A PromQL identifier: what follows is not "(" (a function) and it is not a label name (=, ~).
IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def exported() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        names |= {family.name + s for s in SUFFIXES.get(family.type, ("",))}
    return names


def panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def metric_names(expr: str) -> set[str]:
    """The series an expression selects: identifiers of ours, outside label matchers."""
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    return {n for n in IDENT.findall(without_labels) if n.startswith("computegrid_")}


def test_every_query_names_an_exported_series() -> None:
    names = exported()
    used = set()
    for panel in panels():
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            found = metric_names(target["expr"])
            assert found, f"{panel['title']}: no computegrid_ series in {target['expr']}"
            missing = found - names
            assert not missing, f"{panel['title']}: {sorted(missing)} not exported"
            used |= found
    # Every family the operator exports is on the dashboard somewhere.
    families = {f.name for f in REGISTRY.collect() if f.name.startswith("computegrid_")}
    shown = {f for f in families if any(u.startswith(f) for u in used)}
    assert shown == families, f"not on the dashboard: {sorted(families - shown)}"


def test_the_check_catches_a_misspelt_metric() -> None:
    assert metric_names('sum(rate(computegrid_decision_total{outcome="x"}[5m]))') == {
        "computegrid_decision_total"
    }
    assert "computegrid_decision_total" not in exported()


def test_panels_cover_the_issue_list_and_do_not_overlap() -> None:
    titles = " | ".join(p["title"].lower() for p in panels())
    for topic in ("decisions by outcome", "dispatch latency", "jobs by phase", "by cluster",
                  "readiness", "probe time", "carbon saved", "cost saved"):  # fmt: skip
        assert topic in titles, topic
    cells: set[tuple[int, int]] = set()
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
