"""Aid types of the "9+N+1" system (seed 000 §二(一)), with Chinese labels."""

from __future__ import annotations

URGENT_AID_TYPE = "temporary_emergency"

AID_TYPES: dict[str, str] = {
    "minimum_living": "最低生活保障",
    "extreme_poverty": "特困人员救助供养",
    "orphan_child": "孤儿和困境儿童基本生活保障",
    "temporary_emergency": "临时救助（急难型）",
    "temporary_expenditure": "临时救助（支出型）",
    "medical": "医疗救助",
    "education": "教育救助",
    "housing": "住房救助",
    "employment": "就业救助",
    "legal_aid": "法律援助",
    "disaster": "受灾人员救助",
    "rehabilitation": "残疾儿童康复救助",
    "social_help": "社会力量帮扶",
}

# What a resident may apply for with POST /applications (urgent help has its own endpoint).
APPLICATION_TYPES = tuple(code for code in AID_TYPES if code != URGENT_AID_TYPE)
