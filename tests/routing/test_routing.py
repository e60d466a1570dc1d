"""Routing table: real 日照市 addresses and village names, ambiguous and foreign ones."""

from __future__ import annotations

import pytest

from server.routing.gazetteer import gazetteer
from server.routing.rules import Evidence, match_address, route, village_aliases


@pytest.fixture
def gaz(session):
    return gazetteer(session, "3711")


# (address, expected township code or None, how it was matched)
ADDRESSES = [
    ("日照市东港区秦楼街道泰安路88号", "371102004", "township"),
    ("莒县城阳街道", "371122001", "township"),
    ("山东省日照市莒县城阳街道振兴路1号", "371122001", "township"),
    ("东港区石臼街道海滨二路", "371102002", "township"),
    ("岚山头街道海州路", "371103001", "township"),
    ("五莲县洪凝街道解放路", "371121001", "township"),
    ("日照经济技术开发区北京路街道", "371171007", "township"),
    ("莒县经济开发区", "371122400", "township"),
    ("河山镇", "371102100", "township"),
    ("日照街道", "371102001", "township"),
    ("前三岛乡", "371103200", "township"),
    ("五莲县 街头镇 政府东", "371121102", "township"),
    ("莒县 浮来山街道", "371122004", "township"),
    ("涛雒镇集市", "371102110", "township"),
    ("奎山街道某小区", "371171003", "township"),
    ("卧龙山街道", "371102008", "township"),
    ("王家庄新村", "371103100", "village"),
    ("后马庄一村", "371102104", "village"),
    ("冯家庄村", "371103103", "village"),
    ("后长城岭村东头", "371121110", "village"),
    ("依河社区3号楼", "371102004", "village"),
    ("西玉皇庙村", "371121104", "village"),
    ("前沙沟村", "371102008", "village"),
    ("纪家沟村", "371103102", "village"),
    ("泉子头村", "371102108", "village"),
    ("城市花园社区", "371102004", "village"),
    ("小王家官庄村", "371102009", "village"),
    ("崮寺头村", "371121107", "village"),
    ("海景社区", "371102002", "village"),
    ("萝花新村", "371102100", "village"),
    ("集后社区", "371121001", "village"),
    ("ｅ 五莲县　于里沟村", "371121105", "village"),  # full-width spaces tolerated
]


@pytest.mark.parametrize(("address", "township", "via"), ADDRESSES)
def test_real_addresses(gaz, address, township, via):
    found = match_address(address, gaz)
    assert (found.township_code, found.via) == (township, via), found


@pytest.mark.parametrize(
    ("address", "county"),
    [
        ("幸福社区", None),  # several 幸福社区 in the city
        ("刘家村", None),  # several 刘家村
        ("秦楼街道和石臼街道交界处", "371102"),  # two townships named
    ],
)
def test_ambiguous_is_not_guessed(gaz, address, county):
    found = match_address(address, gaz)
    assert found.township_code is None and found.ambiguous
    assert found.county_code == county


def test_conflicting_county_and_township_is_not_guessed(gaz):
    found = match_address("东港区城阳街道", gaz)  # 城阳街道 is in 莒县
    assert found.township_code is None and found.ambiguous


@pytest.mark.parametrize("address", ["北京市朝阳区建国路1号", "上海市浦东新区", "", "   ", "🙂🙂"])
def test_foreign_or_empty_addresses_match_nothing(gaz, address):
    found = match_address(address, gaz)
    assert found.township_code is None and found.county_code is None


def test_county_only_goes_to_county_triage(gaz):
    decision = route(Evidence(urgent=True, address="日照市岚山区某路"), gaz)
    assert decision.is_triage and decision.county_code == "371103"
    assert "岚山区" in decision.reason_zh


def test_explicit_code_beats_everything(gaz):
    decision = route(
        Evidence(
            urgent=True,
            township_code="371122001",
            address="秦楼街道",
            residence_township_code="371102002",
        ),
        gaz,
    )
    assert (decision.township_code, decision.evidence) == ("371122001", "explicit_township")


def test_place_of_need_beats_residence_for_urgent(gaz):
    decision = route(
        Evidence(
            urgent=True,
            address="莒县城阳街道",
            residence_township_code="371102004",
            hukou_township_code="371121001",
        ),
        gaz,
    )
    assert (decision.township_code, decision.evidence) == ("371122001", "address")


def test_residence_then_hukou(gaz):
    decision = route(
        Evidence(
            urgent=False, residence_township_code="371102004", hukou_township_code="371121001"
        ),
        gaz,
    )
    assert (decision.township_code, decision.evidence) == ("371102004", "residence")
    decision = route(Evidence(urgent=False, hukou_township_code="371121001"), gaz)
    assert (decision.township_code, decision.evidence) == ("371121001", "hukou")


def test_residence_outside_the_city_is_not_used(gaz):
    # A migrant worker registered in 北京 who is in trouble here: no hukou restriction.
    decision = route(Evidence(urgent=True, hukou_township_code="110101001"), gaz)
    assert decision.is_triage and decision.county_code == "3711"


def test_ambiguous_address_falls_back_to_residence(gaz):
    decision = route(
        Evidence(urgent=False, address="刘家村", residence_township_code="371122001"), gaz
    )
    assert decision.evidence == "residence"
    assert "未作猜测" in decision.reason_zh


def test_nothing_known_goes_to_city_triage_with_reason(gaz):
    decision = route(Evidence(urgent=True, has_location=True), gaz)
    assert decision.is_triage and decision.county_code == "3711"
    assert "定位" in decision.reason_zh and "日照市" in decision.reason_zh


@pytest.mark.parametrize(
    ("name", "aliases"),
    [
        ("小白石村民委员会", ["小白石村"]),
        ("申家坡新村村民委员会", ["申家坡新村"]),
        ("龙王沟村委会", ["龙王沟村"]),
        ("日升社区居委会", ["日升社区"]),
        ("集后社区居民委员会", ["集后社区"]),
    ],
)
def test_village_aliases(name, aliases):
    assert village_aliases(name) == aliases


@pytest.mark.parametrize(
    ("address", "named"),
    [
        ("北京市朝阳区建外街道", "北京市"),
        ("青岛市黄岛区王家庄新村", "青岛市"),  # a village name 日照 has too
        ("山东省临沂市莒南县后马庄一村", "临沂市"),
        ("广东省深圳市", "广东省、深圳市"),
    ],
)
def test_an_address_outside_the_city_goes_to_city_triage_with_its_reason(gaz, address, named):
    found = match_address(address, gaz)
    assert found.township_code is None and found.via == "elsewhere"
    decision = route(
        Evidence(urgent=True, address=address, residence_township_code="371102002"), gaz
    )
    assert decision.is_triage and decision.county_code == "3711"
    assert decision.evidence == "outside"
    assert f"地址在日照市以外（{named}）" in decision.reason_zh
    assert "转日照市分拣队列" in decision.reason_zh


@pytest.mark.parametrize(
    ("address", "township"),
    [
        ("日照经济技术开发区北京路街道", "371171007"),  # 北京路 is a street name, not 北京市
        ("山东省日照市东港区秦楼街道青岛路", "371102004"),
        ("日照市莒县城阳街道（原籍临沂市）", "371122001"),  # names the city: its names decide
    ],
)
def test_other_city_names_inside_a_local_address_do_not_send_it_away(gaz, address, township):
    assert match_address(address, gaz).township_code == township


def test_an_explicit_code_outside_the_city_never_places_a_case(gaz):
    decision = route(Evidence(urgent=True, township_code="110105001"), gaz)
    assert decision.is_triage and decision.county_code == "3711"
    assert "提交的乡镇（街道）代码不在日照市" in decision.reason_zh
