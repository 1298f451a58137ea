"""Filing by letter (intake.mail): labelled lines in every catalog language, the fill-in form
sent and read back, the completeness and anonymity rules of a chat filing, nothing invented.
Pure: no network, no database."""

from __future__ import annotations

from functools import lru_cache

import pytest

from intake.catalog import load_catalogs
from intake.engine import Engine, State
from intake.form import REQUIRED_ITEMS, load_form
from intake.mail import ForwardedMail, Letter, MailDesk
from intake.messages import Attachment

LANGUAGES = ("en", "zh", "fr", "es", "pt", "sw", "id", "ru", "ar")
PHOTO = Attachment("river.jpg", "image/jpeg", 48_213, "a" * 64)
ANSWERS = {
    "applicant.name": "Amina Mohamed",
    "applicant.address": "Kasulo, Kolwezi, DR Congo",
    "applicant.contact": "+243 970 000 001",
    "respondent.name": "Kolwezi Mining SARL",
    "respondent.address": "Route de Likasi, Kolwezi",
    "dispute.facts": "The tailings dam leaks into the river since March 2026.",
    "dispute.claims": "Stop the leak and clean the wells.",
    "dispute.reasons": "The company's own policy promises clean water.",
    "evidence": "Photos of the red well water.",
}


@lru_cache(maxsize=1)
def desk() -> MailDesk:
    return MailDesk(Engine(load_form(), load_catalogs()))


def letter(text: str, **extra: object) -> Letter:
    return Letter(sender="amina@example.org", text=text, **extra)  # type: ignore[arg-type]


def filled_form(language: str, answers: dict[str, str]) -> str:
    """The form as sent in `language`, filled in after each colon as a person would."""
    template = desk().template(language, desk().template_keys())
    labels = {found[0]: line for line in template.split("\n")
              if (found := desk().label_of(line)) is not None}
    return "\n".join(f"{line}{answers[key]}" if key in answers else line
                     for key, line in labels.items())


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_filled_form_in_every_language_files_a_complete_application(language: str) -> None:
    state = State(language=language, status="filling")
    filed = desk().file(state, letter(filled_form(language, ANSWERS)), joins_draft=True)
    assert filed.submit and filed.message is None
    assert state.answers["applicant.name"] == "Amina Mohamed"
    assert state.answers["dispute.claims"] == "Stop the leak and clean the wells."
    assert state.answers["evidence"] == [{"kind": "description",
                                          "text": "Photos of the red well water."}]


@pytest.mark.parametrize(("line", "key"), [
    ("Name: Amina", "applicant.name"), ("姓名：Amina", "applicant.name"),
    ("Nom : Amina", "applicant.name"), ("Nombre: Amina", "applicant.name"),
    ("Nome: Amina", "applicant.name"), ("Jina: Amina", "applicant.name"),
    ("Nama: Amina", "applicant.name"), ("Имя: Amina", "applicant.name"),
    ("الاسم: Amina", "applicant.name"), ("* Respondent: X Ltd", "respondent.name"),
    ("3. 相对方：某公司", "respondent.name"), ("Ce qui s'est passé : Amina", "dispute.facts"),
    ("Qué pasó: Amina", "dispute.facts"),
    ("Minerals (Cobalt / Lithium): cobalt", "dispute.minerals"),
])
def test_labelled_lines_in_the_catalog_languages(line: str, key: str) -> None:
    found = desk().label_of(line)
    assert found is not None and found[0] == key


def test_prose_and_lines_with_colons_that_are_no_label_stay_the_account() -> None:
    reading = desk().read("Dear secretariat,\n\nNote: at 10:00 the dam broke.\nName: Amina\n"
                          "\nThank you,\nAmina")
    assert reading.fields == {"applicant.name": "Amina"}
    assert reading.leftover == "Note: at 10:00 the dam broke."


def test_a_value_runs_on_to_the_blank_line_and_the_first_label_wins() -> None:
    reading = desk().read("Address: Kasulo,\nKolwezi, Lualaba\n\nAddress: somewhere else")
    assert reading.fields["applicant.address"] == "Kasulo,\nKolwezi, Lualaba"


def test_nothing_is_invented_the_display_name_is_not_the_applicant() -> None:
    state = State()
    filed = desk().file(state, letter("The dam leaks into our river since March.",
                                      sender_name="Amina Mohamed"), joins_draft=False)
    assert "applicant.name" not in state.answers
    assert state.answers["dispute.facts"] == "The dam leaks into our river since March."
    assert state.answers["applicant.contact"] == "amina@example.org"
    assert filed.message is not None and "Applicant name*: " in filed.message.text


def test_missing_items_are_the_nine_of_the_rules_and_the_branches_opened() -> None:
    answers: dict[str, object] = {"applicant.count": 12, "confidentiality.requested": True}
    missing = desk().missing(answers)
    assert set(REQUIRED_ITEMS.values()) <= set(missing)
    assert "applicant.representatives" in missing
    assert {"confidentiality.information", "confidentiality.audiences",
            "confidentiality.duration", "confidentiality.reason"} <= set(missing)
    assert "applicant.category" not in missing and "dispute.location" not in missing


@pytest.mark.parametrize("refusal", ["anonymous", "匿名", "-", "anonyme"])
def test_an_anonymous_name_is_refused_with_the_reason_and_the_confidentiality_lines(
        refusal: str) -> None:
    state = State()
    filed = desk().file(state, letter(f"Name: {refusal}\nRespondent: X Mining"),
                        joins_draft=False)
    assert "applicant.name" not in state.answers
    catalogs = desk().engine.catalogs
    language = state.language or "en"
    assert filed.message is not None
    assert catalogs.text(language, "mail.anonymous") in filed.message.text
    assert catalogs.text(language, "field.confidentiality.requested.label") in filed.message.text


def test_a_confidentiality_request_needs_its_four_parts() -> None:
    answers = {**ANSWERS, "confidentiality.requested": "yes"}
    state = State(language="en", status="filling")
    filed = desk().file(state, letter(filled_form("en", answers)), joins_draft=True)
    assert not filed.submit and filed.message is not None
    assert "- Confidential information" in filed.message.text


def test_a_reply_corrects_answers_and_adds_the_missing_ones_from_the_quoted_form() -> None:
    state = State()
    desk().file(state, letter("Name: Amina\nRespondent: X Mining\nWhat happened: The dam "
                              "leaks since March."), joins_draft=False)
    reply = letter("Name: Amina Mohamed", quoted="Applicant address*: Kasulo, Kolwezi\n"
                   "What you ask for*: \nRespondent*: Not this one", attachments=[PHOTO])
    desk().file(state, reply, joins_draft=True)
    assert state.answers["applicant.name"] == "Amina Mohamed"
    assert state.answers["applicant.address"] == "Kasulo, Kolwezi"
    assert state.answers["respondent.name"] == "X Mining"
    assert state.answers["evidence"] == [PHOTO.as_dict()]


def test_a_forward_makes_its_author_the_applicant_and_the_forwarder_agent_when_said() -> None:
    forwarded = ForwardedMail("Joseph Kalala", "joseph@example.cd",
                              "Respondent: Tenke Ltd\nFacts: Forty workers were not paid.")
    state = State()
    desk().file(state, Letter(sender="ngo@example.org", sender_name="Haki Madini",
                              text="We file this on behalf of Mr Kalala.\nName: Esther Ilunga",
                              forwards=[forwarded]), joins_draft=False)
    assert state.answers["applicant.name"] == "Joseph Kalala"
    assert state.answers["applicant.contact"] == "joseph@example.cd"
    assert state.answers["applicant.on_behalf"] == "agent"
    assert state.answers["agent.name"] == "Esther Ilunga"
    assert state.answers["agent.contact"] == "ngo@example.org"
    assert state.answers["dispute.facts"] == "Forty workers were not paid."


def test_a_forward_without_words_of_agency_does_not_make_the_forwarder_an_agent() -> None:
    forwarded = ForwardedMail("Grace Mulenga", "grace@example.zm", "Dust every night.")
    state = State()
    desk().file(state, Letter(sender="peter@example.zm", text="For your attention.",
                              forwards=[forwarded]), joins_draft=False)
    assert "applicant.on_behalf" not in state.answers and "agent.name" not in state.answers
    assert state.answers["applicant.name"] == "Grace Mulenga"


@pytest.mark.parametrize(("subject", "text", "asks"), [
    ("form", "", True), ("", "Please send me the application form.", True),
    ("Demande", "Pouvez-vous m'envoyer le formulaire ?", True), ("", "请发给我申请表。", True),
    ("Complaint", "The information about the dam is attached.", False),
    ("", "Name: Amina\nPlease send me the form.", False),
])
def test_the_form_is_sent_on_request(subject: str, text: str, asks: bool) -> None:
    assert desk().asks_for_form(letter(text, subject=subject)) is asks


def test_a_request_for_the_form_is_answered_with_the_whole_form_in_the_writers_language() -> None:
    state = State()
    filed = desk().file(state, letter("请发给我申请表。"), joins_draft=False)
    assert state.language == "zh" and state.answers == {"language": "zh"}
    assert filed.message is not None
    assert "申请方姓名或名称*：" in filed.message.text
    assert "代理人" in filed.message.text
