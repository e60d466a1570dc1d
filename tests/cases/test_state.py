"""The state machine: every (status, action) pair, allowed and refused."""

from __future__ import annotations

import pytest

from server.cases import actions, state
from server.cases.models import STATUSES
from server.cases.state import ACTIONS, PUBLIC_ACTIONS, TRANSITIONS
from server.errors import DomainError
from tests.workflow_support import actor_for, args_for, case_in, people

ALL_PAIRS = [(s, a) for s in STATUSES for a in ACTIONS]
PUBLIC_ALLOWED = [(s, a) for s in STATUSES for a in PUBLIC_ACTIONS if (s, a) in TRANSITIONS]
PUBLIC_REFUSED = [(s, a) for s in STATUSES for a in PUBLIC_ACTIONS if (s, a) not in TRANSITIONS]


class Thing:
    def __init__(self, status: str) -> None:
        self.status = status


@pytest.mark.parametrize(("status", "action"), ALL_PAIRS)
def test_table_pair(status, action):
    thing = Thing(status)
    if (status, action) in TRANSITIONS:
        assert state.apply(thing, action) == (status, TRANSITIONS[(status, action)])
        assert thing.status == TRANSITIONS[(status, action)]
    else:
        with pytest.raises(state.IllegalTransition) as info:
            state.apply(thing, action)
        assert thing.status == status
        error = info.value
        assert error.status == 409
        assert error.errors["status"] == [status]
        assert error.errors["allowed_actions"] == state.allowed_actions(status)
        assert status in error.message


def test_final_statuses_have_no_way_out():
    assert set(state.FINAL_STATUSES) == {"closed", "rejected", "withdrawn", "referred"}
    for status in state.FINAL_STATUSES:
        assert state.allowed_actions(status) == []


def test_every_status_is_reachable_from_queued():
    seen, frontier = {"queued"}, ["queued"]
    while frontier:
        current = frontier.pop()
        for (src, _), dst in TRANSITIONS.items():
            if src == current and dst not in seen:
                seen.add(dst)
                frontier.append(dst)
    assert seen == set(STATUSES)


def test_refusal_message_names_status_and_allowed_actions():
    error = state.refuse("paid", "approve")
    assert "已发放" in error.message and "paid" in error.message
    assert "办结（close）" in error.message
    assert error.errors["allowed_actions"] == ["close", "note"]
    assert "Allowed actions: close, note" in error.message_en


def test_refusal_for_a_caller_lists_only_their_actions():
    from server import access
    from server.accounts.tokens import Actor

    resident = Actor(id=1, role="resident")
    duty = Actor(id=2, role="duty", region_code="371102004")
    error = state.refuse("needs_info", "approve", reason_zh="材料未补齐")
    assert set(error.errors["allowed_actions"]) >= {"supply_info", "reject", "note"}
    mine = error.for_caller(lambda a: access.may_act(resident, "needs_info", a))
    assert mine.errors["allowed_actions"] == [
        a for a in error.errors["allowed_actions"] if "resident" in access.ACTION_ROLES[a]
    ]
    assert "supply_info" in mine.errors["allowed_actions"]
    assert "reject" not in mine.errors["allowed_actions"]
    assert "材料未补齐" in mine.message  # the reason survives
    theirs = error.for_caller(lambda a: access.may_act(duty, "needs_info", a))
    assert "supply_info" not in theirs.errors["allowed_actions"]
    # Nothing for this caller, though the case is not finished: not "已结束".
    none = state.refuse("paid", "approve").for_caller(lambda a: False)
    assert none.errors["allowed_actions"] == []
    assert "需由其他角色办理" in none.message and "none for your role" in none.message_en


@pytest.mark.parametrize(("status", "action"), PUBLIC_ALLOWED)
def test_service_allows(session, status, action):
    """Through the workflow service with a permitted actor and valid arguments."""
    p = people(session)
    holder = p.supervisor if action == "assign" else p.duty
    case = case_in(session, status, p, holder=holder, triage=action == "assign")
    actions.perform(
        session,
        actor=actor_for(action, status, p),
        case_id=case.id,
        action=action,
        args=args_for(action, status),
    )
    assert case.status == TRANSITIONS[(status, action)]


@pytest.mark.parametrize(("status", "action"), PUBLIC_REFUSED)
def test_service_refuses(session, status, action):
    p = people(session)
    case = case_in(session, status, p)
    version = case.version
    with pytest.raises(DomainError) as info:
        actions.perform(
            session,
            actor=actor_for(action, status, p),
            case_id=case.id,
            action=action,
            args=args_for(action, status),
        )
    assert info.value.status == 409
    assert info.value.code == "illegal_transition"
    assert info.value.errors["status"] == [status]
    assert case.status == status and case.version == version
