"""The policy ConfigMap read from a real API server and kept through good and bad edits.

What the operator does at start and on each change (the lead wires the watch): read the
chart's ConfigMap, offer its text to a PolicyKeeper, log a refusal and keep the old policy.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from computegrid.fleet.policy_source import configmap_ref, read_policy_text
from computegrid.fleet_data.policy_file import POLICY_KEY, PolicyKeeper
from computegrid.scheduling import Policy


def put(api: Any, namespace: str, text: str) -> None:
    body = {"metadata": {"name": "cg-policy"}, "data": {POLICY_KEY: text}}
    core = client.CoreV1Api(api)
    try:
        core.replace_namespaced_config_map("cg-policy", namespace, body)
    except client.exceptions.ApiException as exc:
        if exc.status != 404:
            raise
        core.create_namespaced_config_map(namespace, body)


def test_edits_are_taken_or_refused_keeping_the_old(hub_api: Any, namespace: str) -> None:
    ns, name = configmap_ref(f"{namespace}/cg-policy")
    keeper = PolicyKeeper()
    assert read_policy_text(hub_api, ns, name) is None  # not there yet: built-in
    assert not keeper.offer(read_policy_text(hub_api, ns, name), name).changed
    put(hub_api, ns, "pluginArgs:\n  CriticalHeadroom: {reserve: 0.05}\n")
    taken = keeper.offer(read_policy_text(hub_api, ns, name), f"{ns}/{name}")
    assert taken.changed and keeper.policy.plugin_args["CriticalHeadroom"]["reserve"] == 0.05
    put(hub_api, ns, "weights: {low: {CarbonIntensity: -1}}\n")
    refused = keeper.offer(read_policy_text(hub_api, ns, name), f"{ns}/{name}")
    assert refused.error == f"{ns}/{name}: weights.low.CarbonIntensity must be ≥ 0"
    assert keeper.policy.plugin_args["CriticalHeadroom"]["reserve"] == 0.05  # old one kept
    client.CoreV1Api(hub_api).delete_namespaced_config_map(name, ns)
    assert keeper.offer(read_policy_text(hub_api, ns, name)).policy == Policy()


@pytest.mark.parametrize("value", ["cg-policy", "/cg-policy", "ns/", "a/b/c"])
def test_configmap_ref_needs_namespace_and_name(value: str) -> None:
    with pytest.raises(ValueError, match="COMPUTEGRID_POLICY_CONFIGMAP"):
        configmap_ref(value)
