"""What an action answers: a resident sees the case as GET /cases/{id} shows it to them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import auth
from tests.workflow_support import case_in, people

# What only staff work with: who holds the case, the lease, the row version, the masked
# phone and the accountable township of the queue view.
STAFF_ONLY = {
    "claimed_by_id",
    "claimed_at",
    "lease_expires_at",
    "version",
    "accountable_township_code",
    "contact_phone_masked",
    "staff_notes",
    "person",
}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        ("claimed", {"action": "withdraw", "reason": "问题已解决"}),
        ("queued", {"action": "withdraw"}),
        ("needs_info", {"action": "supply_info", "message": "已上传住院证明"}),
    ],
    ids=["withdraw-claimed", "withdraw-queued", "supply_info"],
)
def test_a_residents_action_answers_the_residents_view(app, client, session, status, body):
    p = people(session)
    case = case_in(session, status, p)
    headers = auth(app, p.resident)
    acted = client.post(f"/api/v1/cases/{case.id}/actions", json=body, headers=headers)
    assert acted.status_code == 200, acted.get_json()
    answer: dict[str, Any] = acted.get_json()
    assert not STAFF_ONLY & set(answer), STAFF_ONLY & set(answer)
    read = client.get(f"/api/v1/cases/{case.id}", headers=headers)
    assert read.status_code == 200
    assert answer == read.get_json()


def test_staff_actions_still_answer_the_queue_view(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p)
    resp = client.post(
        f"/api/v1/cases/{case.id}/actions",
        json={"action": "note", "message": "已电话联系"},
        headers=auth(app, p.duty),
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["claimed_by_id"] == p.duty.id
    assert "version" in resp.get_json()
