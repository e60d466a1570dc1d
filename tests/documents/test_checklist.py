"""The checklist: per aid type and stage, defaults from the policy, the commitment's reach."""

from __future__ import annotations

from server.cases.aid_types import AID_TYPES
from server.documents import checklist


def test_every_aid_type_has_both_stages_and_closing_needs_the_receipt():
    for aid_type in AID_TYPES:
        stages = checklist.CHECKLISTS[aid_type]
        assert set(stages) == set(checklist.STAGES)
        assert "payment_receipt" in stages["close"]
        assert set(stages["decide"]) <= set(stages["close"])


def test_urgent_aid_is_paid_first_and_completes_its_paperwork_after():
    stages = checklist.CHECKLISTS["temporary_emergency"]
    assert stages["decide"] == ()
    assert set(stages["close"]) == {"application", "hardship_proof", "payment_receipt"}


def test_the_household_check_is_required_for_dibao_and_tekun():
    assert "assessment" in checklist.CHECKLISTS["minimum_living"]["decide"]
    assert "assessment" not in checklist.CHECKLISTS["medical"]["decide"]


def test_a_commitment_replaces_the_proofs_only_where_allowed():
    on_file = {"application", "commitment", "payment_receipt", "assessment"}
    allowed = checklist.evaluate(
        aid_type="minimum_living", stage="close", on_file=on_file, commitment_allowed=True
    )
    assert allowed.complete and allowed.by_commitment == ["id_proof", "hardship_proof"]
    refused = checklist.evaluate(
        aid_type="minimum_living", stage="close", on_file=on_file, commitment_allowed=False
    )
    assert refused.missing == ["id_proof", "hardship_proof"] and not refused.by_commitment


def test_a_commitment_never_replaces_the_application_or_the_receipt():
    result = checklist.evaluate(
        aid_type="temporary_emergency",
        stage="close",
        on_file={"commitment"},
        commitment_allowed=True,
    )
    assert result.missing == ["application", "payment_receipt"]
    assert result.present == ["hardship_proof"]


def test_the_commitment_setting():
    assert "minimum_living" in checklist.commitment_aid_types({})
    assert checklist.commitment_aid_types({"DOCUMENT_COMMITMENT_AID_TYPES": ""}) == frozenset()
    assert checklist.commitment_aid_types(
        {"DOCUMENT_COMMITMENT_AID_TYPES": "medical, housing"}
    ) == {"medical", "housing"}


def test_the_stage_follows_the_payment():
    assert checklist.stage_of("claimed") == "decide"
    assert checklist.stage_of("approved") == "decide"
    assert checklist.stage_of("paid") == "close"
