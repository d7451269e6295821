"""The Grafana dashboard against the operator's real /metrics, scraped on the test fleet.

tests/unit/test_dashboard.py checks the panels against the in-process registry; this one runs
``computegrid run`` on the test bed, places a few jobs (one that succeeds, one that fails,
one that cannot be placed), scrapes the live endpoint and checks that every panel's query
names only metric families and label names the exposition really carries, and that every
computegrid family scraped is on some panel.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from operator_fixtures import Hub, OperatorProcess, computejob, wait_for
from prometheus_client.parser import text_string_to_metric_families

pytest_plugins = ["operator_fixtures"]

DASHBOARD = Path(__file__).resolve().parents[2] / "charts/computegrid/dashboards/computegrid.json"
IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# Label names a query uses: in a matcher (name="…", name=~"…", name!="…") or a grouping clause.
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
# Families that have no sample until something rare happens (the exposition then carries only
# their HELP and TYPE lines, so their label names cannot be checked here): each says what.
SAMPLES_NEED = {"computegrid_reschedules": "a member lost with jobs on it"}


def queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [
        (p["title"], t["expr"])
        for p in dashboard["panels"]
        if p["type"] != "row"
        for t in p["targets"]
    ]


def series_names(expr: str) -> set[str]:
    return {
        n for n in IDENT.findall(re.sub(r"\{[^}]*\}", "", expr)) if n.startswith("computegrid_")
    }


def label_names(expr: str) -> set[str]:
    names = {m for block in re.findall(r"\{([^}]*)\}", expr) for m in MATCHER.findall(block)}
    for group in GROUPING.findall(expr):
        names |= {g.strip() for g in group.split(",") if g.strip()}
    return names


def test_the_parsers_read_a_query() -> None:
    expr = 'sum by (le, cluster) (rate(computegrid_x_bucket{phase=~"A|B", cluster!=""}[5m]))'
    assert series_names(expr) == {"computegrid_x_bucket"}
    assert label_names(expr) == {"le", "cluster", "phase"}


def scrape(operator: OperatorProcess) -> dict[str, Any]:
    """family name → (the sample names it exposes, label names per sample name)."""
    families = {}
    for family in text_string_to_metric_families(operator.metrics()):
        labels: dict[str, set[str]] = {}
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
        families[family.name] = labels
    return families


def test_every_panel_query_is_answered_by_the_live_endpoint(
    operator: OperatorProcess, hub_api: Any, namespace: str
) -> None:
    hub = Hub(hub_api, namespace)
    hub.create(computejob("dash-ok", origin="chengdu"))
    hub.create(computejob("dash-fails", origin="chengdu", fail=True))
    hub.create(computejob("dash-nowhere", origin="atlantis"))
    hub.wait_phase("dash-ok", "Succeeded")
    hub.wait_phase("dash-fails", "Failed")
    hub.wait_phase("dash-nowhere", "Pending")

    def scraped_after_the_jobs() -> dict[str, Any] | None:
        families = scrape(operator)
        dispatch = families.get("computegrid_dispatch_seconds", {})
        return families if "computegrid_dispatch_seconds_count" in dispatch else None

    families = wait_for(scraped_after_the_jobs, "the jobs' dispatch in /metrics")
    # The text format writes a counter's or histogram's creation time as a gauge family of
    # its own, ``<family>_created``: part of its parent, not a series to chart.
    ours = {
        f
        for f in families
        if f.startswith("computegrid_")
        and not (f.endswith("_created") and f.removesuffix("_created") in families)
    }
    sample_labels: dict[str, set[str]] = {}
    for labels in families.values():
        for sample, names in labels.items():
            sample_labels[sample] = names
    used: set[str] = set()
    for title, expr in queries():
        names = series_names(expr)
        assert names, f"{title}: no computegrid_ series in {expr}"
        for name in names:
            family = next((f for f in ours if name == f or name.startswith(f + "_")), None)
            assert family is not None, f"{title}: {name} is not on the live /metrics"
            used.add(family)
            if name not in sample_labels:  # declared, no sample yet
                assert family in SAMPLES_NEED, f"{title}: {name} has no sample on /metrics"
                continue
            missing = label_names(expr) - sample_labels[name]
            assert not missing, f"{title}: {name} has no label {sorted(missing)} on /metrics"
    assert ours - used == set(), f"scraped but on no panel: {sorted(ours - used)}"
    assert set(SAMPLES_NEED) <= ours  # the exemptions name families that exist
