"""Where a new case goes: pure functions from evidence to exactly one queue.

Evidence, strongest first (DESIGN.md "Routing"):
1. an explicit township code (validated by the caller);
2. the place of need given as an address, matched against the township and village names of
   the deployment area (for urgent help the place where the person is now beats the hukou
   place: no hukou restriction for temporary aid, seed 000 §二(一)8);
3. the township of the staff member who found the person (grid workers, proactive discovery);
4. the resident's registered residence, then (when inside the deployment area) their hukou
   township.
A location {lat, lng} is stored and shown to staff but does not place a case: no reliable
offline boundary data for townships ships with the app.
What cannot be placed goes to the triage queue of its county, or of the deployment city when
even the county is unknown, with the reason recorded. An ambiguous match is never guessed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

# Village committee suffixes, longest first, and how residents usually write the place.
_VILLAGE_SUFFIXES = (
    ("社区居民委员会", "社区"),
    ("村民委员会", "村"),
    ("居民委员会", ""),
    ("村委会", "村"),
    ("居委会", ""),
    ("委员会", ""),
)
_SPACES = re.compile(r"\s+")
# Suffixes of real province / city names (not placeholders such as 市辖区, 县).
_FULL_NAME_SUFFIXES = ("省", "市", "自治区", "特别行政区", "自治州", "地区", "盟")


@dataclass(frozen=True)
class Place:
    """A named division of the deployment area."""

    code: str
    name: str
    level: str  # county | township | village
    township_code: str | None = None


@dataclass
class Gazetteer:
    """Names of the deployment area's counties, townships and villages, for matching."""

    city_code: str
    city_name: str = ""
    names: dict[str, str] = field(default_factory=dict)  # code -> official name
    aliases: dict[str, list[Place]] = field(default_factory=dict)  # alias -> places
    # Full names of the other provinces and cities ("北京市", "青岛市"): an address naming one
    # is outside the deployment area. Full names only: 北京路 is a street in many cities.
    elsewhere: set[str] = field(default_factory=set)

    def add(self, place: Place, aliases: Iterable[str]) -> None:
        self.names[place.code] = place.name
        for alias in {a for a in aliases if len(a) >= 2}:
            self.aliases.setdefault(alias, []).append(place)

    def name(self, code: str | None) -> str | None:
        return self.names.get(code or "")


def village_aliases(name: str) -> list[str]:
    """How people write a village committee's place: 小白石村民委员会 -> 小白石村."""
    for suffix, tail in _VILLAGE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            base = name[: -len(suffix)]
            if tail == "村":
                return [base if base.endswith("村") else base + "村"]
            if tail == "社区":
                return [base + "社区"]
            if base.endswith(("社区", "村")):
                return [base]
            return [base + "社区", base] if len(base) >= 3 else [base + "社区"]
    return [name]


def build_gazetteer(city_code: str, divisions: Iterable[tuple[str, str, str]]) -> Gazetteer:
    """Index (code, name, level) rows of one city."""
    gaz = Gazetteer(city_code=city_code)
    for code, name, level in divisions:
        if not code.startswith(city_code):
            # The city's own province contains it (its code is a prefix of the city's).
            other = level in ("province", "city") and not city_code.startswith(code)
            if other and name.endswith(_FULL_NAME_SUFFIXES):
                gaz.elsewhere.add(name)
            continue
        if level == "city":
            gaz.city_name = name
            gaz.names[code] = name
        elif level == "county":
            gaz.add(Place(code, name, "county"), [name])
        elif level == "township":
            gaz.add(Place(code, name, "township", code), [name])
        elif level == "village":
            gaz.add(Place(code, name, "village", code[:9]), [name, *village_aliases(name)])
    return gaz


def normalize(text: str) -> str:
    """NFKC (full-width to half-width) and no whitespace."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", text or ""))


@dataclass(frozen=True)
class AddressMatch:
    """What an address said: a township, only a county, an ambiguity, or nothing."""

    township_code: str | None = None
    county_code: str | None = None
    matched: str | None = None  # the words that decided
    ambiguous: tuple[str, ...] = ()
    via: str | None = None  # township | village | county | elsewhere
    elsewhere: tuple[str, ...] = ()  # other provinces / cities the address names


def outside_names(text: str, gaz: Gazetteer) -> tuple[str, ...]:
    """Other provinces and cities a normalised address names, unless it names the deployment
    city too (then its own names decide)."""
    if gaz.city_name and gaz.city_name in text:
        return ()
    return tuple(sorted(name for name in gaz.elsewhere if name in text))


def match_address(address: str, gaz: Gazetteer) -> AddressMatch:
    """Match an address against the gazetteer; never guess between candidates."""
    text = normalize(address)
    if not text:
        return AddressMatch()
    outside = outside_names(text, gaz)
    if outside:
        # A village or street name that also exists here must not pull the case in.
        return AddressMatch(via="elsewhere", elsewhere=outside)
    by_level = _places_named(text, gaz)
    counties = set(by_level["county"])
    return (
        _by_township(by_level["township"], counties)
        or _by_village(by_level["village"], counties)
        or _by_county(by_level["county"])
    )


def _places_named(text: str, gaz: Gazetteer) -> dict[str, dict[str, tuple[Place, str]]]:
    """The places ``text`` names, by level, with the alias that named each."""
    hits: list[tuple[int, int, str]] = []
    for alias in gaz.aliases:
        start = text.find(alias)
        while start != -1:
            hits.append((start, start + len(alias), alias))
            start = text.find(alias, start + 1)
    # Keep maximal matches: 岚山头街道 must not also count as a shorter name inside it.
    hits = [h for h in hits if not any(o != h and o[0] <= h[0] and h[1] <= o[1] for o in hits)]
    by_level: dict[str, dict[str, tuple[Place, str]]] = {
        "county": {},
        "township": {},
        "village": {},
    }
    for _, _, alias in hits:
        for place in gaz.aliases[alias]:
            by_level[place.level][place.code] = (place, alias)
    return by_level


def _by_township(named: dict[str, tuple[Place, str]], counties: set[str]) -> AddressMatch | None:
    townships = {c: v for c, v in named.items() if not counties or c[:6] in counties}
    if named and not townships:
        return AddressMatch(
            ambiguous=tuple(sorted({alias for _, alias in named.values()})),
            via="township",
            county_code=_single(counties),
        )
    if len(townships) == 1:
        code, (_, alias) = next(iter(townships.items()))
        return AddressMatch(township_code=code, county_code=code[:6], matched=alias, via="township")
    if townships:
        return AddressMatch(
            ambiguous=tuple(sorted(a for _, a in townships.values())),
            via="township",
            county_code=_single({c[:6] for c in townships}),
        )
    return None


def _by_village(named: dict[str, tuple[Place, str]], counties: set[str]) -> AddressMatch | None:
    villages = {c: v for c, v in named.items() if not counties or c[:6] in counties}
    village_towns = {place.township_code for place, _ in villages.values()}
    if len(village_towns) == 1:
        ((place, alias),) = list(villages.values())[:1]
        town = place.township_code or ""
        return AddressMatch(township_code=town, county_code=town[:6], matched=alias, via="village")
    if village_towns:
        return AddressMatch(
            ambiguous=tuple(sorted({a for _, a in villages.values()})),
            via="village",
            county_code=_single({t[:6] for t in village_towns if t}),
        )
    return None


def _by_county(named: dict[str, tuple[Place, str]]) -> AddressMatch:
    if len(named) == 1:
        code, (_, alias) = next(iter(named.items()))
        return AddressMatch(county_code=code, matched=alias, via="county")
    return AddressMatch()


def _single(values: set[str]) -> str | None:
    return next(iter(values)) if len(values) == 1 else None


@dataclass(frozen=True)
class Evidence:
    """Everything known about where a new case belongs."""

    urgent: bool
    township_code: str | None = None  # explicit, already validated to exist
    address: str | None = None
    reporter_township_code: str | None = None  # grid worker who found the person
    residence_township_code: str | None = None
    hukou_township_code: str | None = None
    has_location: bool = False


@dataclass(frozen=True)
class Decision:
    """Exactly one queue: a township, or the triage queue of ``county_code``."""

    township_code: str | None
    county_code: str  # the township's county, or the triage region (county or city)
    evidence: str  # explicit_township | address | reporter | residence | hukou | outside | none
    reason_zh: str

    @property
    def is_triage(self) -> bool:
        return self.township_code is None


# What decided a case's queue (``Decision.evidence``), as staff read it.
EVIDENCE_LABELS = {
    "explicit_township": "提交的乡镇（街道）代码",
    "address": "地址中的地名",
    "reporter": "发现人所在乡镇",
    "residence": "登记的居住地",
    "hukou": "户籍地",
    "outside": "地址在本市以外",
    "none": "无法确定乡镇",
}


def route(evidence: Evidence, gaz: Gazetteer) -> Decision:
    """Decide the queue of a new case from ``evidence``."""
    notes: list[str] = []
    city = gaz.city_name or gaz.city_code
    if evidence.township_code:
        code = evidence.township_code
        if _inside(code, gaz):
            return Decision(
                code,
                code[:6],
                "explicit_township",
                f"按提交的乡镇（街道）代码分派至{gaz.name(code)}。",
            )
        # Callers refuse such codes (server/divisions/service.py require_case_township); a
        # case that got here anyway is never placed outside the area: people triage it.
        notes.append(f"提交的乡镇（街道）代码不在{city}")
    triage_county: str | None = None
    if evidence.address:
        found = match_address(evidence.address, gaz)
        decided = _by_address(found, evidence.urgent, gaz, notes)
        if decided:
            return decided
        triage_county = found.county_code
    if evidence.reporter_township_code and _inside(evidence.reporter_township_code, gaz):
        code = evidence.reporter_township_code
        return Decision(
            code, code[:6], "reporter", _join(notes, f"按发现人所在乡镇分派至{gaz.name(code)}。")
        )
    for kind, code, label in (
        ("residence", evidence.residence_township_code, "居住地"),
        ("hukou", evidence.hukou_township_code, "户籍地"),
    ):
        if code and _inside(code, gaz):
            return Decision(
                code, code[:6], kind, _join(notes, f"按登记的{label}分派至{gaz.name(code)}。")
            )
    if evidence.has_location:
        notes.append("已收到定位，供工作人员参考")
    if not notes:
        notes.append("未提供地址或乡镇信息")
    region = triage_county or gaz.city_code
    name = gaz.name(triage_county) if triage_county else (gaz.city_name or gaz.city_code)
    return Decision(None, region, "none", _join(notes, f"转{name}分拣队列人工分派。"))


def _by_address(
    found: AddressMatch, urgent: bool, gaz: Gazetteer, notes: list[str]
) -> Decision | None:
    """The decision an address settles on its own; otherwise why not, added to ``notes``."""
    city = gaz.city_name or gaz.city_code
    if found.elsewhere:
        notes.append(f"地址在{city}以外（{'、'.join(found.elsewhere)}），本服务只覆盖{city}")
        return Decision(None, gaz.city_code, "outside", _join(notes, f"转{city}分拣队列人工处理。"))
    if found.township_code:
        kind = "乡镇（街道）名称" if found.via == "township" else "村（社区）名称"
        place = "求助所在地" if urgent else "地址"
        return Decision(
            found.township_code,
            found.township_code[:6],
            "address",
            f"按{place}中的{kind}“{found.matched}”分派至{gaz.name(found.township_code)}。",
        )
    if found.ambiguous:
        notes.append(f"地址可能指向多个地方（{'、'.join(found.ambiguous)}），未作猜测")
    elif found.county_code:
        notes.append(f"地址只能确定区县“{found.matched}”")
    else:
        notes.append("地址未匹配到本市乡镇或村（社区）")
    return None


def _inside(code: str, gaz: Gazetteer) -> bool:
    return code.startswith(gaz.city_code) and code in gaz.names


def _join(notes: list[str], conclusion: str) -> str:
    return "；".join([*notes, conclusion]) if notes else conclusion
