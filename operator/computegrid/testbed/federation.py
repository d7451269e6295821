"""A three-level test bed (issue 10): a national hub, regional hubs, member clusters under each.

Built from ordinary fleets (``testbed.fleet``): the national fleet is a hub alone, each region
a fleet of its own (its hub + its members, under ``<national workdir>/regions/<region>``), and
the national hub gets one kubeconfig Secret per regional hub, named after the region, so a
``MemberCluster`` of ``type: Hub`` can point at it. Nothing here starts operators: the tests
and the demo start one per hub (``--hub-name`` = the national name or the region's name).

The topology is a small YAML file (``deploy/testbed/federation.yaml``)::

    national: national
    nodesPerMember: 2
    regions:
      - name: yangtze-delta
        delegation: Pinned
        members: [yangtze-delta-wujiang, yangtze-delta-wuhu]

``<workdir>/federation.json`` records the result for the tests and ``down``.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from computegrid.fleet_data import load_national_fleet
from computegrid.testbed import kube
from computegrid.testbed.fleet import (
    SECRET_NAMESPACE,
    FleetInfo,
    down,
    up,
    workdir_for,
)

MANIFEST = "federation.json"
REGION_NAME = r"^[a-z]([-a-z0-9]{0,18}[a-z0-9])?$"


class RegionSpec(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    name: str = Field(pattern=REGION_NAME, description="The regional hub's name (--hub-name).")
    delegation: str = Field(default="Pinned", pattern=r"^(Pinned|Autonomous)$")
    members: list[str] = Field(min_length=1, max_length=10)


class Topology(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    national: str = Field(default="national", pattern=REGION_NAME)
    nodes_per_member: int = Field(default=2, ge=1, le=10)
    regions: list[RegionSpec] = Field(min_length=1, max_length=8)


def read_topology(path: Path | str) -> Topology:
    """The topology file; ValueError naming the field on bad input."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return Topology.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: {where}: {first['msg']}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class RegionInfo:
    name: str
    delegation: str
    fleet: FleetInfo


@dataclass(frozen=True)
class FederationInfo:
    name: str
    national_name: str
    national: FleetInfo
    regions: list[RegionInfo]
    startup_seconds: float

    def region(self, name: str) -> RegionInfo:
        for region in self.regions:
            if region.name == name:
                return region
        raise KeyError(f"federation {self.name!r} has no region {name!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FederationInfo:
        raw = json.loads(text)
        national = FleetInfo.from_json(json.dumps(raw.pop("national")))
        regions = [
            RegionInfo(r["name"], r["delegation"], FleetInfo.from_json(json.dumps(r["fleet"])))
            for r in raw.pop("regions")
        ]
        return cls(national=national, regions=regions, **raw)


def region_fleet_name(name: str, region: str) -> str:
    return f"{name}-{region}"


def check_names(name: str, topology: Topology) -> None:
    """ValueError unless every region's fleet name (``<name>-<region>``) is a valid one."""
    for region in topology.regions:
        fleet_name = region_fleet_name(name, region.name)
        if len(fleet_name) > 20:
            raise ValueError(
                f"regions[{region.name}]: fleet name {fleet_name!r} is over 20 characters"
            )


def hub_member_body(region: RegionInfo) -> dict[str, Any]:
    """The national hub's MemberCluster for a regional hub: ``type: Hub``; the location,
    region and hub node of its first member (where its API is; placement reads the children)."""
    first = load_national_fleet().by_name(region.fleet.members[0].name)
    return {
        "apiVersion": "computegrid.io/v1alpha1",
        "kind": "MemberCluster",
        "metadata": {"name": region.name},
        "spec": {
            "hub": first.hub,
            "region": first.region.value,
            "location": first.location,
            "type": "Hub",
            "delegation": region.delegation,
            "kubeconfigSecretRef": {"name": region.name, "namespace": SECRET_NAMESPACE},
        },
    }


def up_federation(
    name: str,
    topology: Topology,
    *,
    workdir: Path | str | None = None,
    log: Any = None,
) -> FederationInfo:
    """Start the national hub and every region's fleet; the regional kubeconfigs as Secrets on
    the national hub. Returns the manifest, also written to ``<workdir>/federation.json``."""
    say = log or (lambda *_: None)
    started = time.monotonic()
    work = workdir_for(name, workdir).resolve()
    check_names(name, topology)
    national = up(name, workdir=work, clusters=[], log=say)
    regions: list[RegionInfo] = []

    def start(region: RegionSpec) -> RegionInfo:
        fleet = up(
            region_fleet_name(name, region.name),
            workdir=work / "regions" / region.name,
            clusters=region.members,
            nodes_per_member=topology.nodes_per_member,
            log=say,
        )
        regions.append(RegionInfo(region.name, region.delegation, fleet))
        return regions[-1]

    try:
        with ThreadPoolExecutor(max_workers=len(topology.regions)) as pool:
            started_in = list(pool.map(start, topology.regions))
        regions = sorted(started_in, key=lambda r: [x.name for x in topology.regions].index(r.name))
        api = kube.api_client(Path(national.hub.kubeconfig))
        try:
            for info in regions:
                kube.put_secret(
                    api,
                    SECRET_NAMESPACE,
                    info.name,
                    {"kubeconfig": kube.inline_kubeconfig(Path(info.fleet.hub.kubeconfig))},
                    {"computegrid.io/fleet": name, "computegrid.io/member": info.name},
                )
        finally:
            api.close()
    except BaseException:
        for spec in topology.regions:  # also a region whose start failed half-way
            down(region_fleet_name(name, spec.name), work / "regions" / spec.name)
        down(name, work)
        raise
    result = FederationInfo(
        name, topology.national, national, regions, round(time.monotonic() - started, 1)
    )
    (work / MANIFEST).write_text(result.to_json(), encoding="utf-8")
    say(f"federation {name}: ready in {result.startup_seconds:.1f}s; {work / MANIFEST}")
    return result


def load_federation(name: str, workdir: Path | str | None = None) -> FederationInfo:
    path = workdir_for(name, workdir) / MANIFEST
    return FederationInfo.from_json(path.read_text(encoding="utf-8"))


def down_federation(name: str, workdir: Path | str | None = None) -> None:
    """Stop every region's fleet and the national hub."""
    work = workdir_for(name, workdir).resolve()
    manifest = work / MANIFEST
    if manifest.exists():
        info = FederationInfo.from_json(manifest.read_text(encoding="utf-8"))
        for region in info.regions:
            down(region.fleet.name, region.fleet.workdir)
    else:
        for sub in sorted((work / "regions").glob("*")):
            down(region_fleet_name(name, sub.name), sub)
    manifest.unlink(missing_ok=True)
    if (work / "regions").is_dir() and not any((work / "regions").iterdir()):
        (work / "regions").rmdir()
    down(name, work)
