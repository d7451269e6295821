"""``spec.timing`` on ComputeJob and ``forecastSource`` / ``status.forecast`` on MemberCluster."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from computegrid.api.compute_job import ComputeJobSpec
from computegrid.api.forecast import ForecastSource, ForecastSourceType, ForecastStatus
from computegrid.api.member_cluster import MemberClusterSpec
from computegrid.api.timing import duration_seconds
from computegrid.scheduling.forecast import Forecast, forecast_from_status, forecast_status


@pytest.mark.parametrize(
    ("text", "seconds"), [("6h", 21600.0), ("90m", 5400.0), ("1h30m", 5400.0), ("2.5h", 9000.0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


def spec(timing: dict[str, object]) -> ComputeJobSpec:
    return ComputeJobSpec.model_validate(
        {"resources": {"cpu": "1"}, "template": {}, "timing": timing}
    )


def test_timing_round_trip() -> None:
    t = spec({"deadline": "2026-11-30T06:00:00Z", "expectedDuration": "6h"}).timing
    assert t is not None and t.duration_s == 21600.0
    assert t.deadline_s == 1796018400.0  # 2026-11-30T06:00:00Z
    assert t.not_before_s is None


@pytest.mark.parametrize(
    ("timing", "message"),
    [
        ({"deadline": "tomorrow", "expectedDuration": "6h"}, "not an RFC 3339 time"),
        ({"deadline": "2026-11-30T06:00:00", "expectedDuration": "6h"}, "no time zone"),
        ({"deadline": "2026-11-30T06:00:00Z", "expectedDuration": "0h"}, "longer than 0"),
        ({"deadline": "2026-11-30T06:00:00Z", "expectedDuration": "six hours"}, "pattern"),
        ({"deadline": "2026-11-30T06:00:00Z", "expectedDuration": "200h"}, "longer than a week"),
        ({"deadline": "2026-11-30T06:00:00Z"}, "expectedDuration"),
        ({"deadline": "2026-11-30T06:00:00Z", "expectedDuration": "6h",
          "notBefore": "2026-11-30T02:00:00Z"}, "less than expectedDuration 6h"),
    ],
)  # fmt: skip
def test_bad_timing_is_refused_naming_the_field(timing: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        spec(timing)
    assert "timing" in str(info.value)


def test_forecast_source_defaults_and_checks() -> None:
    base = {"hub": "gansu", "region": "west", "location": "qingyang",
            "kubeconfigSecretRef": {"name": "k"}}  # fmt: skip
    assert MemberClusterSpec.model_validate(base).forecast_source is None
    cm = MemberClusterSpec.model_validate({**base, "forecastSource": {"type": "ConfigMap"}})
    assert cm.forecast_source is not None and cm.forecast_source.config_map is not None
    assert (cm.forecast_source.config_map.namespace, cm.forecast_source.config_map.name) == (
        "kube-system",
        "carbonintensity",
    )
    with pytest.raises(ValidationError, match=r"builtin\.province is required"):
        ForecastSource.model_validate({"type": "Builtin"})
    with pytest.raises(ValidationError, match="type"):
        ForecastSource.model_validate({"type": "Weather"})


def test_forecast_status_round_trip() -> None:
    f = Forecast(
        start_s=1796018400.0,
        carbon=np.array([477.24, 210.0]),
        carbon_market=np.array([477.24, 210.0]),
        renewable=np.array([0.31, 0.7]),
        price=np.array([0.38, 0.152]),
        source="Builtin",
        published_s=1796018400.0,
    )
    status = forecast_status(f)
    assert status.start == "2026-11-30T06:00:00Z" and status.carbon_intensity == [477.2, 210.0]
    wire = status.model_dump(by_alias=True)
    assert set(wire) >= {"carbonIntensity", "carbonIntensityMarket", "pricePerKWh", "start"}
    back = forecast_from_status(ForecastStatus.model_validate(wire))
    assert back.start_s == f.start_s and back.source == ForecastSourceType.BUILTIN.value
    assert back.price.tolist() == [0.38, 0.152]
    with pytest.raises(ValidationError, match="same, non-zero"):
        ForecastStatus.model_validate({**wire, "pricePerKWh": [0.1]})
