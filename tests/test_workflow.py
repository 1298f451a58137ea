"""The secretariat's rules without I/O: transitions, roles, masking, countries."""

from __future__ import annotations

import pytest

from intake import workflow
from intake.places import country_of
from intake.workflow import ConfidentialityState, NotAllowed, Request

PENDING = ConfidentialityState(requested=True)
NONE = ConfidentialityState(requested=False)
MESSAGE = {"request_supplement", "reject", "refuse_confidentiality"}

# (action, status it is taken in) -> status after; anything not listed is refused with 409.
TRANSITIONS = {
    ("start_review", "submitted"): "under_review",
    ("request_supplement", "submitted"): "supplement_requested",
    ("request_supplement", "under_review"): "supplement_requested",
    ("accept", "under_review"): "accepted",
    ("reject", "submitted"): "rejected",
    ("reject", "under_review"): "rejected",
    ("reject", "supplement_requested"): "rejected",
    ("withdraw", "submitted"): "withdrawn",
    ("withdraw", "under_review"): "withdrawn",
    ("withdraw", "supplement_requested"): "withdrawn",
}
STATUS_CHANGING = ("start_review", "request_supplement", "accept", "reject", "withdraw")


def request_for(action: str) -> Request:
    return Request(action, message="Because." if action in MESSAGE else "",
                   note="n" if action == "note" else "")


@pytest.mark.parametrize("role", workflow.ROLES)
@pytest.mark.parametrize("status", workflow.STATUSES)
@pytest.mark.parametrize("action", STATUS_CHANGING)
def test_every_status_changing_action_in_every_status_for_every_role(
        role: str, status: str, action: str) -> None:
    expected = TRANSITIONS.get((action, status))
    if expected is None:
        with pytest.raises(NotAllowed) as refused:
            workflow.check(request_for(action), role, status, NONE)
        assert refused.value.kind == "conflict"
        assert status.replace("_", " ") in refused.value.message
    else:
        assert workflow.check(request_for(action), role, status, NONE).to_status == expected
        assert action in workflow.available(role, status, NONE)


@pytest.mark.parametrize("role", workflow.ROLES)
@pytest.mark.parametrize("action", sorted(workflow.CONFIDENTIALITY_ACTIONS))
def test_only_supervisors_and_admins_decide_confidentiality(role: str, action: str) -> None:
    if role == "officer":
        with pytest.raises(NotAllowed) as refused:
            workflow.check(request_for(action), role, "under_review", PENDING)
        assert refused.value.kind == "forbidden"
        assert action not in workflow.available(role, "under_review", PENDING)
    else:
        assert workflow.check(request_for(action), role, "accepted", PENDING).to_status is None
    decided = ConfidentialityState(requested=True, decision="granted")
    with pytest.raises(NotAllowed, match="no pending") if role != "officer" else \
            pytest.raises(NotAllowed, match="supervisor"):
        workflow.check(request_for(action), role, "under_review", decided)


def test_messages_and_notes_are_checked() -> None:
    for action in MESSAGE:
        with pytest.raises(NotAllowed, match="write the message"):
            workflow.check(Request(action, message="  "), "admin", "under_review", PENDING)
    with pytest.raises(NotAllowed, match="note is empty"):
        workflow.check(Request("note"), "officer", "accepted", NONE)
    with pytest.raises(NotAllowed, match="Chinese \\(zh\\) or English"):
        workflow.check(Request("accept", message_language="fr"), "officer", "under_review",
                       NONE)
    with pytest.raises(NotAllowed, match="too long"):
        workflow.check(Request("reject", message="x" * 20_001), "officer", "submitted", NONE)
    with pytest.raises(NotAllowed) as unknown:
        workflow.check(Request("delete"), "admin", "submitted", NONE)
    assert unknown.value.kind == "unknown"


def test_an_answer_puts_only_a_supplement_request_back_under_review() -> None:
    assert workflow.status_after_answer("supplement_requested") == "under_review"
    assert all(workflow.status_after_answer(s) is None for s in workflow.STATUSES
               if s != "supplement_requested")


def test_identity_is_protected_while_a_request_is_pending_or_granted() -> None:
    assert PENDING.protects_identity and PENDING.pending
    granted = ConfidentialityState(True, "granted", ("respondent",))
    refused = ConfidentialityState(True, "refused", ("respondent",))
    assert granted.protects_identity and not granted.pending
    assert not refused.protects_identity and not NONE.protects_identity
    assert workflow.withheld_for("respondent", granted)
    assert not workflow.withheld_for("public", granted)
    assert not workflow.withheld_for("respondent", refused)
    assert [workflow.may_reveal(r) for r in workflow.ROLES] == [False, True, True]


def test_masking_cuts_identifying_values_out_of_every_text() -> None:
    fields = {"applicant.name": "Jane Mwamba", "applicant.contact": "+243 970 000 001",
              "applicant.representatives": ["Jo", "Ann Lee"],
              "dispute.facts": "Jane Mwamba was threatened; call +243 970 000 001.",
              "evidence": [{"kind": "description", "text": "Letter signed by Ann Lee"}],
              "applicant.count": 2}
    keys = ["applicant.name", "applicant.contact", "applicant.representatives"]
    values = workflow.identity_values(fields, keys, "tg:42")
    masked = workflow.mask_fields(fields, keys, values)
    assert masked["applicant.name"] == masked["applicant.representatives"] == "[confidential]"
    assert masked["dispute.facts"] == "[confidential] was threatened; call [confidential]."
    assert masked["evidence"][0]["text"] == "Letter signed by [confidential]"
    assert masked["applicant.count"] == 2
    assert workflow.mask_text("sent by tg:42", values) == "sent by [confidential]"


@pytest.mark.parametrize(("place", "country"), [
    ("Kasulo, Kolwezi, DR Congo", "DR Congo"),
    ("Lualaba, RDC", "DR Congo"),
    ("中国云南省红河州王家村", "China"),
    ("云南省红河州", "China"),
    ("Morowali, Sulawesi, Indonesia", "Indonesia"),
    ("Copperbelt Zambia", "Zambia"),
    ("Somewhere, Atlantis", "Atlantis"),
    ("", None),
])
def test_country_of_a_place_as_people_write_it(place: str, country: str | None) -> None:
    assert country_of(place) == country
