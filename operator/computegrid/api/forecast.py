"""A MemberCluster's power forecast: where it comes from (spec) and what it says (status).

Sources (``spec.forecastSource.type``):

- ``Flat``: no forecast; every hour at the node labels' figures (the default, as before).
- ``Builtin``: the provincial hourly model of ``fleet_data/power.py`` (the simulator's),
  keyed by ``builtin.province``, scaled to the member's own label figures.
- ``ConfigMap``: a ConfigMap in the format of the Carbon Aware SDK's Kubernetes exporter
  (``fleet_data/carbon_aware.py`` documents it), on the member or on the hub.

The status carries the forecast the operator plans on, compactly (a start time and one array
per series), and the condition ``ForecastCurrent`` says whether it is the source's own or the
flat fallback, and why.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from computegrid.api.common import ApiModel

#: Condition type on MemberCluster: True when the status forecast is the source's, fresh;
#: False (reason Missing, Expired, TooShort, Stale or Invalid) when it fell back to flat.
FORECAST_CONDITION = "ForecastCurrent"
MAX_FORECAST_HOURS = 72


class ForecastSourceType(StrEnum):
    FLAT = "Flat"
    BUILTIN = "Builtin"
    CONFIG_MAP = "ConfigMap"


class ConfigMapCluster(StrEnum):
    MEMBER = "Member"
    HUB = "Hub"


class BuiltinForecast(ApiModel):
    """The provincial model: which province's grid the member draws from."""

    province: str = Field(
        min_length=1,
        max_length=63,
        description="A province the model covers, e.g. Gansu (others fall back to Flat).",
    )


class ConfigMapForecast(ApiModel):
    """A Carbon Aware SDK exporter ConfigMap (default kube-system/carbonintensity, key data)."""

    name: str = Field(default="carbonintensity", min_length=1, max_length=253)
    namespace: str = Field(default="kube-system", min_length=1, max_length=63)
    key: str = Field(default="data", min_length=1, max_length=253, description="binaryData key.")
    cluster: ConfigMapCluster = Field(
        default=ConfigMapCluster.MEMBER, description="Member (on the member cluster) or Hub."
    )


class ForecastSource(ApiModel):
    """Where the member's hourly power forecast comes from."""

    type: ForecastSourceType = Field(
        default=ForecastSourceType.FLAT, description="Flat, Builtin or ConfigMap."
    )
    builtin: BuiltinForecast | None = Field(default=None, description="For type Builtin.")
    config_map: ConfigMapForecast | None = Field(default=None, description="For type ConfigMap.")

    @model_validator(mode="after")
    def _matching_block(self) -> ForecastSource:
        if self.type is ForecastSourceType.BUILTIN and self.builtin is None:
            raise ValueError("forecastSource.builtin.province is required for type Builtin")
        if self.type is ForecastSourceType.CONFIG_MAP and self.config_map is None:
            self.config_map = ConfigMapForecast()
        return self


class ForecastStatus(ApiModel):
    """The hourly forecast the operator plans on: point i holds for [start + i h, + 1 h)."""

    source: ForecastSourceType = Field(description="Where these figures came from.")
    start: str = Field(
        json_schema_extra={"format": "date-time"}, description="RFC 3339 start of point 0."
    )
    published: str | None = Field(
        default=None, json_schema_extra={"format": "date-time"}, description="When produced."
    )
    carbon_intensity: list[float] = Field(
        max_length=MAX_FORECAST_HOURS, description="Location-based gCO2e/kWh per hour."
    )
    carbon_intensity_market: list[float] = Field(
        max_length=MAX_FORECAST_HOURS, description="Market-based gCO2e/kWh per hour."
    )
    renewable_share: list[float] = Field(
        max_length=MAX_FORECAST_HOURS, description="Renewable share 0..1 per hour."
    )
    price_per_kwh: list[float] = Field(
        max_length=MAX_FORECAST_HOURS, alias="pricePerKWh", description="CNY/kWh per hour."
    )

    @model_validator(mode="after")
    def _same_length(self) -> ForecastStatus:
        lengths = {
            len(self.carbon_intensity),
            len(self.carbon_intensity_market),
            len(self.renewable_share),
            len(self.price_per_kwh),
        }
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError("forecast: every series needs the same, non-zero number of hours")
        return self
