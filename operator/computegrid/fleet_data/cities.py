"""Chinese cities as job origins: the packaged table and a forgiving name resolver.

Jobs come from every large city, not only the 17 nodes of the latency matrix, so the
scheduler needs a coordinate for any origin a user may write. ``data/cities.csv`` holds
every prefecture-level unit of mainland China, the four municipalities, Hong Kong, Macau
and the matrix's Wujiang; deploy/data/build_cities.py made it and says from what.

Users write a city many ways (杭州, 杭州市, Hangzhou, HANGZHOU, xi'an, Xi An), so the
resolver folds case, spacing, punctuation and tone marks for Latin input and the 市 suffix
for Chinese input, then looks the result up in an index of every row's key, Chinese name,
English name and aliases. Where two cities share a pinyin (苏州/宿州 "suzhou") the table
gives the bare pinyin to the more populous one and a ``<pinyin>-<province>`` key to the
other; Chinese input is always exact.
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

__all__ = ["City", "UnknownCityError", "load_cities", "resolve_city"]

_PACKAGE = "computegrid.fleet_data"
_COLUMNS = ("key", "name_zh", "name_en", "province", "lat", "lon", "source", "aliases")
_ALIAS_SEPARATOR = "|"


@dataclass(frozen=True, slots=True)
class City:
    """One job origin. ``lat``/``lon`` are degrees; ``source`` names where they came from."""

    key: str
    name_zh: str
    name_en: str
    province: str
    lat: float
    lon: float
    source: str


class UnknownCityError(ValueError):
    """A name that matches no city; the message names the input and close matches."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        message = f"unknown city {name!r}"
        if not name.strip():
            message += ": the name is empty"
        elif suggestions:
            *others, last = [repr(key) for key in suggestions]
            options = f"{', '.join(others)} or {last}" if others else last
            message += f": did you mean {options}?"
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class _Catalogue:
    cities: Mapping[str, City]
    index: Mapping[str, str]  # normalised spelling -> city key


def load_cities() -> dict[str, City]:
    """Every city by key. A fresh dict per call, so a caller's edits cannot leak into others."""
    return dict(_catalogue().cities)


def resolve_city(name: str) -> City:
    """The city that ``name`` means, in any accepted spelling; ``UnknownCityError`` if none."""
    catalogue = _catalogue()
    folded = _normalise(name)
    key = catalogue.index.get(folded) if folded else None
    if key is None:
        raise UnknownCityError(name, _suggest(folded, catalogue.index))
    return catalogue.cities[key]


def _is_cjk(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)


def _normalise(name: str) -> str:
    """Fold a spelling to its index form: 杭州市 -> 杭州, "Xi'an" / "Xī Ān" / "XI-AN" -> xian."""
    text = unicodedata.normalize("NFKC", name).strip()  # NFKC: full-width letters and spaces
    if _is_cjk(text):
        # Chinese names are matched exactly, only the optional 市 is dropped.
        return "".join(text.split()).removesuffix("市")
    # NFKD splits tone marks and umlauts off their letters (ā -> a + ̄, ü -> u + ̈).
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


def _suggest(folded: str, index: Mapping[str, str]) -> list[str]:
    if not folded:
        return []
    # Chinese names are two or three characters, so one wrong character (杭洲) already
    # halves the similarity; Latin spellings are long enough for difflib's usual 0.6.
    cutoff = 0.5 if _is_cjk(folded) else 0.6
    keys: list[str] = []
    for spelling in difflib.get_close_matches(folded, index.keys(), n=6, cutoff=cutoff):
        if index[spelling] not in keys:
            keys.append(index[spelling])
    return keys[:3]


@functools.cache
def _catalogue() -> _Catalogue:
    text = resources.files(_PACKAGE).joinpath("data/cities.csv").read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != _COLUMNS:
        raise RuntimeError(f"cities.csv columns are {reader.fieldnames}, expected {_COLUMNS}")
    cities: dict[str, City] = {}
    aliases: dict[str, list[str]] = {}
    for row in reader:
        city = City(
            key=row["key"],
            name_zh=row["name_zh"],
            name_en=row["name_en"],
            province=row["province"],
            lat=float(row["lat"]),
            lon=float(row["lon"]),
            source=row["source"],
        )
        if city.key in cities:
            raise RuntimeError(f"cities.csv: duplicate key {city.key!r}")
        cities[city.key] = city
        aliases[city.key] = [a for a in row["aliases"].split(_ALIAS_SEPARATOR) if a]
    return _Catalogue(MappingProxyType(cities), MappingProxyType(_build_index(cities, aliases)))


def _build_index(cities: Mapping[str, City], aliases: Mapping[str, list[str]]) -> dict[str, str]:
    """Map every normalised spelling to its city, in tiers: key, then Chinese, then the rest.

    A higher tier wins ("suzhou" is 苏州's key, though 宿州's English name is also Suzhou);
    two cities claiming one spelling in the same tier is a data error, not a coin toss.
    """
    tiers = (
        {key: [key] for key in cities},
        {key: [city.name_zh] for key, city in cities.items()},
        {key: [city.name_en, *aliases[key]] for key, city in cities.items()},
    )
    index: dict[str, str] = {}
    for tier in tiers:
        claimed: dict[str, str] = {}
        for key, spellings in tier.items():
            for spelling in map(_normalise, spellings):
                if not spelling or spelling in index:
                    continue
                if claimed.setdefault(spelling, key) != key:
                    raise RuntimeError(
                        f"cities.csv: {spelling!r} names both {claimed[spelling]!r} and {key!r}"
                    )
        index.update(claimed)
    return index
