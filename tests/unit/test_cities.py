"""The packaged city table and the name resolver (computegrid.fleet_data.cities)."""

from __future__ import annotations

import csv
import io
import re
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from computegrid.fleet_data.cities import (
    City,
    UnknownCityError,
    _build_index,
    load_cities,
    resolve_city,
)

CITIES = load_cities()
ALL = sorted(CITIES.values(), key=lambda c: c.key)

# The 17 nodes of shared/data/latency_ms.yaml (id, lat, lon), copied so this test runs
# without shared/: a matrix city must sit exactly where the matrix puts it, or an estimate
# for it would disagree with the matrix's own cell.
MATRIX_NODES = [
    ("Beijing", 40.045975, 116.39825),
    ("Shanghai", 31.21195, 121.4509),
    ("Guangzhou", 23.18525019, 113.3507659),
    ("Shenzhen", 22.59927273, 114.1639091),
    ("Chengdu", 30.71114286, 104.0122857),
    ("Chongqing", 29.60196471, 106.5091176),
    ("Hohhot", 40.8000375, 111.661375),
    ("Guiyang", 26.60536, 106.8411),
    ("Lanzhou", 36.05814, 103.6336),
    ("Qingyang", 35.65306667, 107.6533667),
    ("Zhongwei", 37.32008364, 105.1250212),
    ("Yinchuan", 38.50275, 106.1462),
    ("Zhangjiakou", 40.81912, 114.8614),
    ("Ulanqab", 41.01515, 113.114),
    ("Wuhu", 31.36784725, 118.3739583),
    ("Wujiang", 31.16692333, 120.6516067),
    ("Shaoguan", 24.7721666, 113.5925554),
]
MATRIX_SOURCE = (
    "https://github.com/wangfan0840/tcm/blob/664ab1415d01fbd6c38541069a1b56a1524b6d00/"
    "src/main/resources/META-INF/resources/js/cityLatlon.js"
)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        # key, English name, case
        ("hangzhou", "hangzhou"),
        ("Hangzhou", "hangzhou"),
        ("HANGZHOU", "hangzhou"),
        ("  hangzhou ", "hangzhou"),
        ("ＨＡＮＧＺＨＯＵ", "hangzhou"),  # full-width, as some IMEs type it
        # Chinese, with and without 市
        ("杭州", "hangzhou"),
        ("杭州市", "hangzhou"),
        ("北京", "beijing"),
        ("北京市", "beijing"),
        ("重庆", "chongqing"),
        # pinyin with apostrophes, spaces, hyphens, tone marks
        ("xian", "xian"),
        ("xi'an", "xian"),
        ("Xi'an", "xian"),
        ("Xi An", "xian"),
        ("xi-an", "xian"),
        ("Xī'ān", "xian"),
        ("西安", "xian"),
        ("Ha Er Bin", "haerbin"),
        # standard Hanyu pinyin and the common English spelling both work
        ("haerbin", "haerbin"),
        ("Harbin", "haerbin"),
        ("huhehaote", "hohhot"),
        ("Hohhot", "hohhot"),
        ("呼和浩特", "hohhot"),
        ("wulumuqi", "wulumuqi"),
        ("Urumqi", "wulumuqi"),
        ("Ürümqi", "wulumuqi"),
        ("lasa", "lasa"),
        ("Lhasa", "lasa"),
        ("wulanchabu", "ulanqab"),
        ("Ulanqab", "ulanqab"),
        ("Kashgar", "kashi"),
        ("Shigatse", "rikaze"),
        ("Xigaze", "rikaze"),
        ("Qiqihar", "qiqihaer"),
        ("Ordos", "eerduosi"),
        # polyphonic characters read as place names
        ("changsha", "changsha"),
        ("xiamen", "xiamen"),
        ("bengbu", "bengbu"),
        ("luan", "luan"),
        ("Lu'an", "luan"),
        ("lishui", "lishui"),
        ("changzhi", "changzhi"),
        ("chaoyang", "chaoyang"),
        ("luohe", "luohe"),
        ("lvliang", "lvliang"),
        ("Lüliang", "lvliang"),
        # prefectures that are not 市: short names and the spoken 州 form
        ("延边朝鲜族自治州", "yanbian"),
        ("延边州", "yanbian"),
        ("延边", "yanbian"),
        ("阿里地区", "ali"),
        ("阿里", "ali"),
        ("兴安盟", "xingan"),
        # the matrix's Wujiang, a district of Suzhou
        ("Wujiang", "wujiang"),
        ("吴江", "wujiang"),
        ("苏州吴江", "wujiang"),
        ("苏州市吴江区", "wujiang"),
        # Hong Kong and Macau
        ("Hong Kong", "xianggang"),
        ("hongkong", "xianggang"),
        ("香港", "xianggang"),
        ("Macau", "aomen"),
        ("Macao", "aomen"),
        ("澳门", "aomen"),
    ],
)
def test_resolves_spelling(name: str, key: str) -> None:
    assert resolve_city(name).key == key


@pytest.mark.parametrize(
    ("name", "key", "name_zh"),
    [
        # bare pinyin -> the more populous city; the other has a province-suffixed key
        ("suzhou", "suzhou", "苏州市"),
        ("Suzhou", "suzhou", "苏州市"),
        ("suzhou-anhui", "suzhou-anhui", "宿州市"),
        ("Suzhou, Anhui", "suzhou-anhui", "宿州市"),
        ("fuzhou", "fuzhou", "福州市"),
        ("fuzhou-jiangxi", "fuzhou-jiangxi", "抚州市"),
        ("taizhou", "taizhou", "台州市"),
        ("taizhou-jiangsu", "taizhou-jiangsu", "泰州市"),
        ("yichun", "yichun", "宜春市"),
        ("yichun-heilongjiang", "yichun-heilongjiang", "伊春市"),
        ("yulin", "yulin", "玉林市"),
        ("yulin-shaanxi", "yulin-shaanxi", "榆林市"),
        # Chinese input is always exact
        ("苏州", "suzhou", "苏州市"),
        ("宿州", "suzhou-anhui", "宿州市"),
        ("宿州市", "suzhou-anhui", "宿州市"),
        ("福州", "fuzhou", "福州市"),
        ("抚州", "fuzhou-jiangxi", "抚州市"),
        ("台州", "taizhou", "台州市"),
        ("泰州", "taizhou-jiangsu", "泰州市"),
        ("伊春", "yichun-heilongjiang", "伊春市"),
        ("榆林", "yulin-shaanxi", "榆林市"),
        # 海南藏族自治州 is in Qinghai; neither "hainan" nor "海南" reaches it (see below)
        ("hainan-qinghai", "hainan-qinghai", "海南藏族自治州"),
        ("海南州", "hainan-qinghai", "海南藏族自治州"),
    ],
)
def test_collision(name: str, key: str, name_zh: str) -> None:
    city = resolve_city(name)
    assert (city.key, city.name_zh) == (key, name_zh)


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("Hangzou", "hangzhou"),
        ("chengdou", "chengdu"),
        ("杭洲", "hangzhou"),
        ("成度", "chengdu"),
        ("suzho", "suzhou"),
        ("hainan", None),  # Hainan is a province, not a city: refuse to guess Qinghai's
        ("海南", "hainan-qinghai"),
        ("Atlantis", None),
        ("", None),
        ("   ", None),
        ("Taipei", None),
    ],
)
def test_unknown_city_names_input_and_suggests(name: str, suggested: str | None) -> None:
    with pytest.raises(UnknownCityError) as caught:
        resolve_city(name)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert message.startswith(f"unknown city {name!r}")
    assert caught.value.name == name
    if suggested is not None:
        assert suggested in caught.value.suggestions
        assert f"'{suggested}'" in message


def test_unknown_city_message_format() -> None:
    with pytest.raises(UnknownCityError, match=r"^unknown city 'Chengdoo': did you mean 'chengdu'"):
        resolve_city("Chengdoo")


@pytest.mark.parametrize(("matrix_id", "lat", "lon"), MATRIX_NODES)
def test_matrix_city_present_with_matrix_coordinates(
    matrix_id: str, lat: float, lon: float
) -> None:
    city = CITIES[matrix_id.lower()]
    assert (city.lat, city.lon) == (lat, lon)
    assert city.source == MATRIX_SOURCE
    assert resolve_city(matrix_id) == city


def test_row_count_is_every_prefecture_level_unit() -> None:
    # 333 prefecture-level units + 4 municipalities + Hong Kong + Macau + Wujiang = 340.
    assert 330 <= len(CITIES) <= 350
    assert len(CITIES) == 340


@pytest.mark.parametrize("city", ALL, ids=lambda c: c.key)
def test_inside_china_bounding_box(city: City) -> None:
    # China's extreme points: 3.9-53.6 N, 73.5-134.8 E (三沙 sits at 16.8 N).
    assert 3.8 <= city.lat <= 53.6
    assert 73.4 <= city.lon <= 134.8


def _raw_rows() -> list[dict[str, str]]:
    # Read the CSV itself: load_cities() is a dict, which would hide a duplicate key.
    text = (
        resources.files("computegrid.fleet_data")
        .joinpath("data/cities.csv")
        .read_text(encoding="utf-8")
    )
    return list(csv.DictReader(io.StringIO(text)))


def test_keys_unique_and_dns1123() -> None:
    keys = [row["key"] for row in _raw_rows()]
    assert len(keys) == len(set(keys))
    for key in keys:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", key), key
        assert len(key) <= 63


def test_every_row_names_its_source() -> None:
    sources = {row["source"] for row in _raw_rows()}
    assert all(sources)
    assert "cpca==0.5.5:cpca/resources/adcodes.csv" in sources


def test_provinces_all_covered() -> None:
    # 31 mainland province-level units plus Hong Kong and Macau.
    assert len({c.province for c in ALL}) == 33


def test_load_cities_returns_a_copy() -> None:
    first = load_cities()
    first.pop("beijing")
    assert "beijing" in load_cities()


def test_same_spelling_for_two_cities_is_a_data_error() -> None:
    a = City("aa", "甲市", "Alpha", "X", 30.0, 110.0, "test")
    b = City("bb", "乙市", "Beta", "X", 31.0, 111.0, "test")
    with pytest.raises(RuntimeError, match="names both"):
        _build_index({"aa": a, "bb": b}, {"aa": ["shared"], "bb": ["Shared"]})


def test_higher_tier_wins_over_english_name() -> None:
    a = City("suzhou", "苏州市", "Suzhou", "Jiangsu", 31.3, 120.6, "test")
    b = City("suzhou-anhui", "宿州市", "Suzhou", "Anhui", 33.6, 117.0, "test")
    index = _build_index({a.key: a, b.key: b}, {a.key: [], b.key: []})
    assert index["suzhou"] == "suzhou"


@pytest.mark.parametrize("city", ALL, ids=lambda c: c.key)
def test_every_city_resolves_by_key_and_chinese_name(city: City) -> None:
    assert resolve_city(city.key) == city
    assert resolve_city(city.name_zh) == city
    assert resolve_city(city.name_en) == city or city.name_en in _SHARED_ENGLISH_NAMES


# English names that two cities share (苏州/宿州 are both "Suzhou"): they resolve to the
# city that holds the bare pinyin key, by design.
_SHARED_ENGLISH_NAMES = {"Suzhou", "Fuzhou", "Taizhou", "Yichun", "Yulin"}


def _spellings(city: City, draw: st.DrawFn) -> str:
    """A way a user might write ``city``: its key or Chinese name, mangled harmlessly."""
    if draw(st.booleans()):
        return city.name_zh.removesuffix("市") + draw(st.sampled_from(["", "市", " "]))
    parts = city.key.split("-")
    sep = draw(st.sampled_from(["", " ", "-", "'", ", "]))
    text = sep.join(parts) if len(parts) > 1 else city.key
    return "".join(ch.upper() if draw(st.booleans()) else ch for ch in text)


@st.composite
def _city_and_spelling(draw: st.DrawFn) -> tuple[City, str]:
    city = draw(st.sampled_from(ALL))
    return city, _spellings(city, draw)


@given(st.sampled_from(ALL))
def test_property_key_and_chinese_name_round_trip(city: City) -> None:
    assert resolve_city(city.key) == city
    assert resolve_city(city.name_zh) == city


@given(_city_and_spelling())
def test_property_mangled_spelling_resolves(case: tuple[City, str]) -> None:
    city, spelling = case
    assert resolve_city(spelling) == city
