"""The application conversation as an applicant experiences it, one message at a time."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from intake import engine as engine_module
from intake.catalog import DEFAULT_LOCALE_DIR, read_catalog
from intake.deadlines import Deadline
from intake.engine import COMMANDS, Context, Engine, Receipt, State
from intake.form import load_form
from intake.language import has_han
from tests.intake_helpers import (
    CHANNEL_CONTACT,
    CLAIMS,
    FACTS,
    FILING_FOR_ONESELF,
    Conversation,
    at,
    engine,
    photo,
)

REFERENCE = "MCM-2026-0042"
RECEIPT = Receipt(REFERENCE, Deadline(date(2026, 12, 4), provisional=False))

FILING_IN_CHINESE = (
    "你好", "中文",
    "本人", "个人",
    "王芳", "一", "刚果（金）卢阿拉巴省科卢韦齐卡苏洛村", "wangfang@example.org",
    "科卢韦齐钴矿公司", "科卢韦齐矿区", "跳过",
    "科卢韦齐卡苏洛村", "钴", "采矿", "运营", "环境",
    "自2024年3月起，尾矿坝渗漏污染了卡苏洛河，村里的井水变红。", "完成",
    "停止渗漏并清理水井。", "完成",
    "矿山尾矿流入河流，公司自己的政策承诺保护水源。", "完成",
    "跳过", "跳过",
    "井水变红的照片", "完成",
    "否", "1", "不",
    "1", "是",
)

# Filing as an NGO for a community of 40 families, up to the representatives.
FILING_AS_AGENT = (
    "hello", "1", "2", "community",
    "Amani Kabila", "Haki Madini", "amani@hakimadini.org", "later",
    "Kasulo community", "about 40 families",
)


def submitted(chat: Conversation) -> Conversation:
    """The conversation after the filing was submitted and the receipt sent."""
    chat.follow(FILING_FOR_ONESELF, until="declaration.accepted")
    chat.send("1")
    chat.engine.receipt(chat.state, RECEIPT)
    return chat


# -- a complete filing ---------------------------------------------------------------------


def test_english_filing_for_oneself_ends_with_submission() -> None:
    chat = Conversation()
    chat.send(*FILING_FOR_ONESELF)
    assert chat.turn.submit
    assert chat.answers["declaration.accepted"] is True


def test_receipt_gives_the_reference_and_the_formal_review_deadline() -> None:
    chat = Conversation()
    chat.send(*FILING_FOR_ONESELF)
    [receipt] = chat.engine.receipt(chat.state, RECEIPT)
    assert REFERENCE in receipt.text
    assert "December 4, 2026" in receipt.text
    assert receipt.reference == REFERENCE
    assert receipt.ends_turn and receipt.awaiting is None


def test_receipt_says_when_the_deadline_is_provisional() -> None:
    chat = Conversation()
    chat.send(*FILING_FOR_ONESELF)
    receipt = Receipt(REFERENCE, Deadline(date(2099, 1, 15), provisional=True))
    [message] = chat.engine.receipt(chat.state, receipt)
    assert "provisional" in message.text


def test_receipt_gives_the_confidentiality_decision_deadline_when_one_was_requested() -> None:
    chat = Conversation()
    chat.send(*FILING_FOR_ONESELF)
    receipt = Receipt(REFERENCE, Deadline(date(2026, 12, 4), False),
                      confidentiality_decision=Deadline(date(2026, 11, 25), False))
    [message] = chat.engine.receipt(chat.state, receipt)
    assert "November 25, 2026" in message.text


def test_submitted_answers_use_the_stable_field_keys() -> None:
    chat = Conversation()
    chat.send(*FILING_FOR_ONESELF)
    assert chat.answers["language"] == "en"
    assert chat.answers["applicant.on_behalf"] == "self"
    assert chat.answers["applicant.category"] == "individual"
    assert chat.answers["applicant.name"] == "Ngozi Okafor"
    assert chat.answers["applicant.count"] == 1
    assert chat.answers["respondent.name"] == "Kolwezi Cobalt Mining SA"
    assert chat.answers["dispute.facts"] == FACTS
    assert chat.answers["evidence"] == [
        {"kind": "description", "text": "Photos of the red well water"}]
    assert chat.answers["confidentiality.requested"] is False
    assert chat.answers["correspondence.language"] == "en"


def test_submitted_filing_holds_all_nine_required_items() -> None:
    chat = Conversation()
    chat.send(*FILING_FOR_ONESELF)
    completeness = chat.engine.completeness(chat.answers)
    assert len(completeness) == 9
    assert all(completeness.values()), completeness


# -- in Chinese -------------------------------------------------------------------------------


def test_chinese_filing_ends_with_submission_and_all_required_items() -> None:
    chat = Conversation()
    chat.send(*FILING_IN_CHINESE)
    assert chat.turn.submit
    assert chat.answers["language"] == "zh"
    assert chat.answers["correspondence.language"] == "zh"
    assert chat.answers["applicant.count"] == 1
    assert all(chat.engine.completeness(chat.answers).values())


def test_chinese_filing_asks_every_question_in_chinese() -> None:
    chat = Conversation()
    chat.send("你好", "中文")
    for line in FILING_IN_CHINESE[2:-1]:
        prompt = chat.turn.messages[-1].text
        assert has_han(prompt), f"{chat.awaiting}: {prompt!r}"
        chat.send(line)


def test_chinese_receipt_is_in_chinese_with_the_date_written_in_chinese() -> None:
    chat = Conversation()
    chat.send(*FILING_IN_CHINESE)
    [receipt] = chat.engine.receipt(chat.state, RECEIPT)
    assert REFERENCE in receipt.text
    assert "2026年12月4日" in receipt.text
    assert has_han(receipt.text.replace("2026年12月4日", ""))


# -- choices ----------------------------------------------------------------------------------


def test_choice_is_accepted_by_its_number() -> None:
    chat = at("applicant.category")
    chat.send("2")
    assert chat.answers["applicant.category"] == "community"


def test_choice_is_accepted_by_its_label() -> None:
    chat = at("applicant.on_behalf")
    chat.send("on behalf of others")
    assert chat.answers["applicant.on_behalf"] == "agent"


def test_choice_is_accepted_by_a_keyword() -> None:
    chat = at("applicant.category")
    chat.send("NGO")
    assert chat.answers["applicant.category"] == "civil_society"


def test_multichoice_accepts_several_numbers() -> None:
    chat = at("dispute.minerals")
    chat.send("1, 3")
    assert chat.answers["dispute.minerals"] == ["cobalt", "nickel"]


def test_multichoice_accepts_labels_of_several_words() -> None:
    chat = at("dispute.minerals")
    chat.send("cobalt, rare earths")
    assert chat.answers["dispute.minerals"] == ["cobalt", "rare_earths"]


def test_invalid_choice_is_refused_with_the_reason_and_asked_again() -> None:
    chat = at("applicant.category")
    chat.send("9")
    assert "number from 1 to 7" in chat.text
    assert chat.awaiting == "applicant.category"
    assert "applicant.category" not in chat.answers


# -- filing as an agent ---------------------------------------------------------------------


def test_filing_as_agent_asks_for_the_agent_and_the_authorisation() -> None:
    chat = Conversation()
    asked = []
    for line in FILING_AS_AGENT[:8]:
        chat.send(line)
        asked.append(chat.awaiting)
    assert asked[3:8] == ["agent.name", "agent.organisation", "agent.contact",
                          "agent.authorisation", "applicant.name"]


def test_authorisation_can_be_sent_as_a_file() -> None:
    chat = Conversation().follow(FILING_AS_AGENT, until="agent.authorisation")
    chat.send(attachments=(photo("authorisation.pdf"),))
    assert chat.answers["agent.authorisation"]["filename"] == "authorisation.pdf"
    assert chat.awaiting == "applicant.name"


@pytest.mark.parametrize("answer", ["later", "1"])
def test_authorisation_can_be_supplied_later(answer: str) -> None:
    chat = Conversation().follow(FILING_AS_AGENT, until="agent.authorisation")
    chat.send(answer)
    assert chat.answers["agent.authorisation"] == "to_be_supplied"


def test_channel_contact_is_offered_for_the_applicants_own_contact() -> None:
    chat = at("applicant.contact", hints={"contact": CHANNEL_CONTACT})
    assert CHANNEL_CONTACT in chat.text
    chat.send("1")
    assert chat.answers["applicant.contact"] == CHANNEL_CONTACT


def test_another_contact_can_be_given_instead_of_the_channel_contact() -> None:
    chat = at("applicant.contact", hints={"contact": CHANNEL_CONTACT})
    chat.send("2")
    assert chat.awaiting == "applicant.contact"
    chat.send("ngozi@example.org")
    assert chat.answers["applicant.contact"] == "ngozi@example.org"


def in_language(language: str) -> tuple[str, ...]:
    """The English filing for oneself, with the language chosen at the start changed."""
    return (FILING_FOR_ONESELF[0], language, *FILING_FOR_ONESELF[2:])


@pytest.mark.parametrize(("language", "answer"), [
    ("en", "yes please"), ("fr", "Oui, ici"), ("es", "Sí, claro"), ("id", "Ya, boleh"),
    ("zh", "是的，可以"), ("sw", "Ndiyo"),
])
def test_a_yes_in_any_words_confirms_the_channel_contact(language: str, answer: str) -> None:
    chat = at("applicant.contact", {"contact": CHANNEL_CONTACT}, in_language(language))
    chat.send(answer)
    assert chat.answers["applicant.contact"] == CHANNEL_CONTACT
    assert chat.awaiting == "respondent.name"


@pytest.mark.parametrize(("language", "answer", "asked"), [
    ("en", "No", "Please type the phone number"), ("fr", "Non", "Veuillez écrire le numéro"),
    ("sw", "Hapana", "Tafadhali andika namba"), ("id", "Tidak", "Mohon ketik nomor"),
    ("zh", "不", "请输入秘书处能联系到您"), ("zh", "不可以", "请输入秘书处能联系到您"),
    ("es", "No, gracias", "escriba el número de teléfono"),
])
def test_a_no_to_the_channel_contact_asks_for_another_way_to_reach_the_applicant(
        language: str, answer: str, asked: str) -> None:
    chat = at("applicant.contact", {"contact": CHANNEL_CONTACT}, in_language(language))
    chat.send(answer)
    assert asked in chat.text
    assert "applicant.contact" not in chat.answers
    assert chat.awaiting == "applicant.contact"


def test_a_no_followed_by_other_contact_details_keeps_the_details() -> None:
    chat = at("applicant.contact", hints={"contact": CHANNEL_CONTACT})
    chat.send("No, call my sister on +243 81 234 5678")
    assert chat.answers["applicant.contact"] == "No, call my sister on +243 81 234 5678"


def test_agent_is_offered_the_channel_contact_for_the_agent_not_for_the_applicant() -> None:
    chat = Conversation({"contact": CHANNEL_CONTACT}).follow(FILING_AS_AGENT,
                                                             until="agent.contact")
    assert CHANNEL_CONTACT in chat.text
    chat.send("1", "later", "Kasulo community", "2", "Kasulo, Kolwezi")
    assert chat.awaiting == "applicant.contact"
    assert CHANNEL_CONTACT not in chat.text
    assert "yes" not in chat.choices


# -- several applicants -------------------------------------------------------------------------


def test_more_than_three_applicants_are_asked_for_representatives() -> None:
    chat = Conversation().follow(FILING_AS_AGENT, until="applicant.count")
    chat.send("about 40 families")
    assert chat.answers["applicant.count"] == 40
    assert chat.awaiting == "applicant.representatives"
    chat.send("Neema Mwamba, Furaha Ilunga")
    assert chat.answers["applicant.representatives"] == ["Neema Mwamba", "Furaha Ilunga"]


def test_three_applicants_are_not_asked_for_representatives() -> None:
    chat = at("applicant.count")
    chat.send("3")
    assert chat.awaiting == "applicant.address"


@pytest.mark.parametrize("answer", ["两千人", "一百户", "三百多人", "3千人", "2 ribu orang",
                                    "watu elfu 2", "3 mil personas", "3 mille habitants",
                                    "2 thousand", "3k"])
def test_communities_counted_in_hundreds_or_thousands_are_asked_for_representatives(
        answer: str) -> None:
    chat = at("applicant.count")
    chat.send(answer)
    assert chat.answers["applicant.count"] >= 100
    assert chat.awaiting == "applicant.representatives"


def test_three_representatives_are_refused() -> None:
    chat = Conversation().follow(FILING_AS_AGENT, until="applicant.representatives")
    chat.send("Neema Mwamba, Furaha Ilunga, Jean Kasongo")
    assert "between 1 and 2 names" in chat.text
    assert chat.awaiting == "applicant.representatives"


# -- anonymity and confidentiality ------------------------------------------------------------


@pytest.mark.parametrize("refusal", ["anonymous", "匿名", "no name", "-", "???"])
def test_refusing_to_give_a_name_is_explained_and_confidentiality_offered(refusal: str) -> None:
    chat = at("applicant.name")
    chat.send(refusal)
    assert "does not accept anonymous applications" in chat.text
    assert chat.choices == ["confidentiality"]
    assert chat.awaiting == "applicant.name"
    assert "applicant.name" not in chat.answers


def test_refusing_to_give_a_contact_is_explained() -> None:
    chat = at("applicant.contact")
    chat.send("prefer not to say")
    assert "does not accept anonymous applications" in chat.text
    assert chat.awaiting == "applicant.contact"


@pytest.mark.parametrize("sentence", [
    "I want to stay anonymous", "Anonymous please", "我要匿名", "匿名申请",
    "je préfère rester anonyme", "anónimo por favor", "quiero ser anónimo", "saya ingin anonim",
    "nama dirahasiakan", "sitaki kutaja jina langu",
])
def test_asking_for_anonymity_in_a_sentence_is_explained_not_taken_as_the_name(
        sentence: str) -> None:
    chat = at("applicant.name")
    chat.send(sentence)
    assert "does not accept anonymous applications" in chat.text
    assert chat.choices == ["confidentiality"]
    assert "applicant.name" not in chat.answers


def test_confidentiality_request_asks_its_four_parts_then_the_name_again() -> None:
    chat = at("applicant.name")
    chat.send("anonymous")
    asked = []
    for line in ("Request confidentiality", "My name and phone number", "1, 3",
                 "Until the end of the mediation", "The mine's guards threatened us"):
        chat.send(line)
        asked.append(chat.awaiting)
    assert asked == ["confidentiality.information", "confidentiality.audiences",
                     "confidentiality.duration", "confidentiality.reason", "applicant.name"]
    assert chat.answers["confidentiality.requested"] is True
    assert chat.answers["confidentiality.audiences"] == ["respondent", "public"]


def test_real_name_is_accepted_after_the_confidentiality_request() -> None:
    chat = at("applicant.name")
    chat.send("匿名", "1", "My name", "1", "Until the end", "Threats")
    chat.send("Ngozi Okafor")
    assert chat.answers["applicant.name"] == "Ngozi Okafor"
    assert chat.awaiting == "applicant.count"


# -- long answers -----------------------------------------------------------------------------


def test_long_answer_over_several_messages_is_joined_when_done() -> None:
    chat = at("dispute.facts")
    chat.send("In March 2024 the dam leaked.")
    assert chat.awaiting == "dispute.facts"
    chat.send("By May our wells were red.", "done")
    assert chat.answers["dispute.facts"] == (
        "In March 2024 the dam leaked.\n\nBy May our wells were red.")
    assert chat.awaiting == "dispute.claims"


def test_done_before_writing_anything_asks_for_the_answer_first() -> None:
    chat = at("dispute.claims")
    chat.send("done")
    assert "write your answer first" in chat.text
    assert chat.awaiting == "dispute.claims"


def test_over_long_answer_is_refused_with_the_limit() -> None:
    chat = at("dispute.claims")
    chat.send("x" * 50_001)
    assert "the limit is 50000" in chat.text
    assert chat.awaiting == "dispute.claims"
    chat.send(CLAIMS, "done")
    assert chat.answers["dispute.claims"] == CLAIMS


def test_over_long_name_is_refused_with_the_limit() -> None:
    chat = at("respondent.name")
    chat.send("Kolwezi " * 40)
    assert "the limit is 300" in chat.text
    assert chat.awaiting == "respondent.name"


def test_emoji_only_answer_is_refused() -> None:
    chat = at("dispute.facts")
    chat.send("😡😡😡")
    assert "words or numbers" in chat.text
    assert chat.awaiting == "dispute.facts"
    assert chat.state.buffer == []


# -- evidence ---------------------------------------------------------------------------------


def test_evidence_collects_files_and_descriptions_until_done() -> None:
    chat = at("evidence")
    chat.send(attachments=(photo("well.jpg"),))
    assert "well.jpg" in chat.text
    chat.send("Letter from the clinic about skin rashes")
    assert chat.awaiting == "evidence"
    chat.send("done")
    assert [item["kind"] for item in chat.answers["evidence"]] == ["attachment", "description"]
    assert chat.awaiting == "confidentiality.requested"


def test_done_without_evidence_is_refused() -> None:
    chat = at("evidence")
    chat.send("done")
    assert "At least one piece of evidence is needed" in chat.text
    assert chat.awaiting == "evidence"


def test_file_sent_during_another_question_is_kept_as_evidence() -> None:
    chat = at("respondent.name")
    chat.send(attachments=(photo("dam.jpg"),))
    assert "dam.jpg" in chat.text
    assert chat.awaiting == "respondent.name"
    assert chat.answers["evidence"][0]["filename"] == "dam.jpg"


def test_file_sent_earlier_counts_at_the_evidence_question() -> None:
    chat = at("respondent.name")
    chat.send(attachments=(photo("dam.jpg"),))
    chat.follow(FILING_FOR_ONESELF[8:], until="evidence")
    chat.send("done")
    assert chat.awaiting == "confidentiality.requested"


# -- commands ---------------------------------------------------------------------------------


def test_help_explains_the_question_and_asks_it_again() -> None:
    chat = at("applicant.name")
    chat.send("help")
    assert "does not accept anonymous applications" in chat.text
    assert chat.awaiting == "applicant.name"


def test_back_returns_to_the_previous_question_showing_the_answer() -> None:
    chat = at("applicant.address")
    chat.send("back")
    assert chat.awaiting == "applicant.count"
    assert "Your current answer: 1" in chat.text


def test_edit_by_number_from_the_review_returns_to_the_review() -> None:
    chat = at("review")
    chat.send("edit 4")
    assert chat.awaiting == "applicant.name"
    chat.send("Ngozi Adaeze Okafor")
    assert chat.awaiting == "review"
    assert "Ngozi Adaeze Okafor" in chat.text


def test_edit_by_key_from_the_review_returns_to_the_review() -> None:
    chat = at("review")
    chat.send("edit respondent.name")
    assert chat.awaiting == "respondent.name"
    chat.send("Kolwezi Cobalt Refining SA")
    assert chat.awaiting == "review"
    assert chat.answers["respondent.name"] == "Kolwezi Cobalt Refining SA"


def test_changing_to_agent_from_the_review_asks_the_agent_questions_first() -> None:
    chat = at("review")
    chat.send("edit applicant.on_behalf", "2")
    asked = [chat.awaiting]
    for line in ("Amani Kabila", "skip", "amani@hakimadini.org", "later"):
        chat.send(line)
        asked.append(chat.awaiting)
    assert asked == ["agent.name", "agent.organisation", "agent.contact",
                     "agent.authorisation", "review"]


def test_restart_asks_for_confirmation_first() -> None:
    chat = at("respondent.name")
    chat.send("restart")
    assert chat.awaiting == "restart"
    assert chat.answers["applicant.name"] == "Ngozi Okafor"


def test_restart_not_confirmed_keeps_the_answers() -> None:
    chat = at("respondent.name")
    chat.send("restart", "no")
    assert chat.awaiting == "respondent.name"
    assert chat.answers["applicant.name"] == "Ngozi Okafor"


def test_restart_confirmed_clears_the_answers_but_keeps_the_language() -> None:
    chat = at("respondent.name")
    chat.send("restart", "yes")
    assert chat.answers == {"language": "en"}
    assert chat.awaiting == "applicant.on_behalf"


def test_empty_message_while_confirming_restart_does_not_swallow_the_next_answer() -> None:
    chat = at("respondent.name")
    chat.send("restart", "")
    chat.send("Kolwezi Cobalt Mining SA")
    assert chat.answers["respondent.name"] == "Kolwezi Cobalt Mining SA"


def test_file_sent_while_confirming_restart_is_kept_as_evidence() -> None:
    chat = at("evidence")
    chat.send("restart")
    chat.send(attachments=(photo("dam.jpg"),))
    assert chat.answers["evidence"][0]["filename"] == "dam.jpg"


def test_status_reports_progress_and_asks_again() -> None:
    chat = at("respondent.name")
    chat.send("status")
    assert re.search(r"answered: \d+ of \d+", chat.text)
    assert "Evidence" in chat.text
    assert chat.awaiting == "respondent.name"


@pytest.mark.parametrize(("key", "answer"), [
    ("respondent.name", "I don't know"), ("respondent.address", "je ne sais pas"),
    ("respondent.address", "不知道")])
def test_not_knowing_the_respondent_asks_for_what_will_do_instead(key: str, answer: str) -> None:
    chat = at(key)
    chat.send(answer)
    assert chat.engine.catalogs.text("en", f"field.{key}.unknown") in chat.text
    assert chat.awaiting == key and key not in chat.answers
    chat.send("Near Kasulo village, Kolwezi, DR Congo")
    assert chat.answers[key] == "Near Kasulo village, Kolwezi, DR Congo"
    assert chat.awaiting != key


@pytest.mark.parametrize(("language", "key", "answer", "stored"), [
    ("en", "dispute.supply_chain_stage", "smelting", "smelting_refining"),
    ("fr", "dispute.supply_chain_stage", "extraction", "mining"),
    ("fr", "dispute.supply_chain_stage", "Raffinage", "smelting_refining"),
    ("en", "dispute.issue_types", "health, corruption", ["environmental", "governance"]),
    ("fr", "correspondence.language", "même", "fr"),
    ("es", "correspondence.language", "la misma", "es"),
])
def test_a_word_of_one_choice_label_selects_it(language: str, key: str, answer: str,
                                              stored: object) -> None:
    chat = at(key)
    chat.state.language = language
    chat.send(answer)
    assert chat.answers[key] == stored


@pytest.mark.parametrize(("key", "answer"), [
    ("dispute.issue_types", "bananas"),       # in no label
    ("dispute.supply_chain_stage", "ing"),   # too short to tell
    ("dispute.supply_chain_stage", "smelting mining"),  # words of two labels
])
def test_a_word_of_no_label_or_too_short_is_asked_again(key: str, answer: str) -> None:
    chat = at(key)
    chat.send(answer)
    assert chat.awaiting == key and key not in chat.answers


def test_the_number_of_skip_under_an_optional_text_question_skips_it() -> None:
    # SMS shows "1. Skip" and "Reply with a number from 1 to 1".
    chat = at("respondent.contact")
    assert chat.choices == ["skip"]
    chat.send("1")
    assert chat.answers.get("respondent.contact") is None
    assert chat.awaiting == "dispute.location"


def test_the_number_of_done_under_a_long_answer_finishes_it() -> None:
    chat = at("dispute.facts")
    chat.send("The dam broke in March and flooded forty houses.")
    assert chat.choices == ["done"]
    chat.send("1")
    assert chat.answers["dispute.facts"] == "The dam broke in March and flooded forty houses."
    assert chat.awaiting == "dispute.claims"


def test_the_number_of_done_under_the_evidence_finishes_it() -> None:
    chat = at("evidence")
    chat.send("Photos of the red well water")
    chat.send("1")
    assert chat.answers["evidence"] == [{"kind": "description",
                                         "text": "Photos of the red well water"}]
    assert chat.awaiting == "confidentiality.requested"


def test_a_number_asked_for_is_still_a_number() -> None:
    chat = at("applicant.count")
    chat.send("1")
    assert chat.answers["applicant.count"] == 1


def at_review() -> Conversation:
    return Conversation().follow(FILING_FOR_ONESELF, until="review")


@pytest.mark.parametrize("keep", ["1", "keep", "Keep this answer", "Garder cette réponse"])
def test_an_answer_asked_again_can_be_kept_as_it_is(keep: str) -> None:
    chat = at_review()
    chat.send("edit applicant.name")
    assert chat.choices == ["keep"]
    chat.send(keep)
    assert chat.answers["applicant.name"] == "Ngozi Okafor"
    assert chat.awaiting == "review"


def test_a_choice_asked_again_offers_keep_after_its_options() -> None:
    chat = at_review()
    chat.send("edit applicant.category")
    assert chat.choices[-1] == "keep"
    chat.send(str(len(chat.choices)))
    assert chat.answers["applicant.category"] == "individual"
    assert chat.awaiting == "review"


def test_done_before_writing_anything_new_keeps_a_long_answer() -> None:
    chat = at_review()
    before = chat.answers["dispute.facts"]
    chat.send("edit dispute.facts")
    chat.send("done")
    assert chat.answers["dispute.facts"] == before
    assert chat.awaiting == "review"
    chat.send("edit dispute.facts", "The dam broke again in May.", "1")
    assert chat.answers["dispute.facts"] == "The dam broke again in May."


@pytest.mark.parametrize("answer", ["c'est correct", "todo correcto", "tudo certo",
                                    "ni sahihi", "sudah benar", "正确", "всё верно"])
def test_the_review_is_confirmed_in_the_words_people_use(answer: str) -> None:
    chat = at_review()
    chat.send(answer)
    assert chat.awaiting == "declaration.accepted"


def test_a_photo_sent_as_the_first_message_is_evidence_of_the_application() -> None:
    chat = Conversation()
    chat.send("hello", attachments=(photo("river.jpg"),))
    assert "river.jpg" in chat.text and chat.awaiting == "language"
    chat.follow(FILING_FOR_ONESELF[1:], until="review")
    evidence = chat.answers["evidence"]
    assert [item.get("filename") for item in evidence] == ["river.jpg", None]
    assert evidence[1]["text"] == "Photos of the red well water"


@pytest.mark.parametrize(("greeting", "language"), [
    ("Hi", "en"), ("Oi", "pt"), ("Habari", "sw"), ("Halo!", "id"), ("Hola", "es"),
    ("Salut", "fr"), ("您好", "zh")])
def test_a_greeting_of_one_language_is_welcomed_in_it(greeting: str, language: str) -> None:
    chat = Conversation()
    chat.send(greeting)
    assert chat.engine.catalogs.text(language, "field.language.prompt") in chat.text
    assert chat.state.guessed_language == language


def greeted_before_writing(hints: dict[str, str] | None = None) -> Conversation:
    """The web and terminal chats: the welcome and the language question come first."""
    chat = Conversation(hints)
    chat.turn = chat.engine.resume(chat.state, chat.context)
    assert chat.awaiting == "language"
    return chat


def choice_error(chat: Conversation, language: str) -> str:
    return chat.engine.catalogs.text(language, "error.choice", count=9)


def test_words_in_another_language_at_the_language_question_ask_again_in_it() -> None:
    chat = greeted_before_writing()
    chat.send("Здравствуйте, я хочу подать жалобу на рудник")
    assert choice_error(chat, "ru") in chat.text
    assert choice_error(chat, "en") not in chat.text
    assert chat.engine.catalogs.text("ru", "field.language.prompt") in chat.text
    assert chat.awaiting == "language" and chat.state.language is None
    chat.send("да")
    assert chat.state.language == "ru"
    assert chat.awaiting == "applicant.on_behalf"


@pytest.mark.parametrize(("first", "yes", "language"), [
    ("你好", "是", "zh"), ("Здравствуйте", "да", "ru"), ("hello", "ok", "en")])
def test_yes_to_the_language_question_takes_the_language_it_was_asked_in(
        first: str, yes: str, language: str) -> None:
    chat = Conversation()
    chat.send(first, yes)
    assert chat.state.language == language
    assert chat.awaiting == "applicant.on_behalf"


def test_a_yes_of_one_language_to_a_question_in_another_asks_again_in_its_language() -> None:
    chat = greeted_before_writing()
    chat.send("oui")
    assert chat.state.language is None and chat.awaiting == "language"
    assert choice_error(chat, "fr") in chat.text
    chat.send("oui")
    assert chat.state.language == "fr"
    assert chat.engine.catalogs.text("fr", "field.applicant.on_behalf.prompt") in chat.text


def test_a_guessed_language_is_spoken_only_until_one_is_chosen() -> None:
    chat = greeted_before_writing()
    chat.send("xyz")  # too little to read: still English
    assert choice_error(chat, "en") in chat.text
    chat.send("你好，我想投诉矿山")
    assert choice_error(chat, "zh") in chat.text
    chat.send("Español")
    assert chat.state.language == "es"
    assert chat.engine.catalogs.text("es", "field.applicant.on_behalf.prompt") in chat.text


def test_language_command_switches_language_and_returns_to_the_question() -> None:
    chat = at("respondent.name")
    chat.send("language")
    assert chat.awaiting == "language"
    chat.send("2")
    assert chat.state.language == "zh"
    assert chat.awaiting == "respondent.name"


def test_language_command_keeps_the_long_answer_being_written() -> None:
    chat = at("dispute.facts")
    chat.send("In March the tailings dam broke and flooded 40 houses in Kasulo.",
              "Two children were injured and our wells are poisoned.")
    chat.send("language", "1")
    assert chat.awaiting == "dispute.facts"
    assert "117 characters so far" in chat.text
    chat.send("done")
    assert chat.answers["dispute.facts"] == (
        "In March the tailings dam broke and flooded 40 houses in Kasulo.\n\n"
        "Two children were injured and our wells are poisoned.")


def test_skip_is_refused_on_a_required_question() -> None:
    chat = at("respondent.name")
    chat.send("skip")
    assert "cannot be skipped" in chat.text
    assert chat.awaiting == "respondent.name"


@pytest.mark.parametrize("key", ["dispute.facts", "dispute.claims", "dispute.reasons", "evidence"])
@pytest.mark.parametrize("word", ["skip", "passer", "omitir", "ruka", "lewati", "跳过"])
def test_skip_is_refused_on_a_required_long_answer_and_never_kept(key: str, word: str) -> None:
    chat = at(key)
    chat.send(word)
    assert "cannot be skipped" in chat.text
    chat.send("done")
    assert chat.awaiting == key
    assert key not in chat.answers
    assert not chat.engine.completeness(chat.answers)[key]


def test_skip_in_the_middle_of_a_long_answer_keeps_what_was_written() -> None:
    chat = at("dispute.facts")
    chat.send(FACTS, "skip")
    assert "cannot be skipped" in chat.text
    chat.send("done")
    assert chat.answers["dispute.facts"] == FACTS


def test_skip_moves_on_from_an_optional_question() -> None:
    chat = at("respondent.contact")
    chat.send("skip")
    assert chat.awaiting == "dispute.location"
    assert "respondent.contact" not in chat.answers


def test_skipped_optional_questions_show_as_not_answered_in_the_review() -> None:
    chat = at("review")
    assert "Respondent contact: (not answered)" in chat.text
    assert "Minerals: (not answered)" in chat.text


# -- after submission -------------------------------------------------------------------------


def test_status_after_submission_reports_the_application() -> None:
    chat = submitted(Conversation())
    chat.send("status")
    assert REFERENCE in chat.text
    assert "waiting for the formal review" in chat.text
    assert "December 4, 2026" in chat.text


def test_new_after_submission_starts_a_new_application() -> None:
    chat = submitted(Conversation())
    assert chat.send("new").start_new


def test_text_after_submission_is_added_to_the_application() -> None:
    chat = submitted(Conversation())
    turn = chat.send("The leak started again yesterday.")
    assert turn.supplement_text == "The leak started again yesterday."
    assert REFERENCE in chat.text


def test_files_after_submission_are_added_to_the_application() -> None:
    chat = submitted(Conversation())
    turn = chat.send(attachments=(photo("new_leak.jpg"),))
    assert [a.filename for a in turn.supplement_attachments] == ["new_leak.jpg"]
    assert turn.supplement_text is None


@pytest.mark.parametrize("request_words", ["request confidentiality", "Confidentiality",
                                           "申请保密", "保密", "Demander la confidentialité"])
def test_confidentiality_request_after_submission_is_confirmed_not_added_as_material(
        request_words: str) -> None:
    chat = submitted(Conversation())
    turn = chat.send(request_words)
    assert turn.confidentiality_request
    assert turn.supplement_text is None
    assert f"Your confidentiality request is recorded with application {REFERENCE}" in chat.text
    assert "within 3 working days" in chat.text


# -- coming back ------------------------------------------------------------------------------


def test_resume_after_a_process_restart_continues_at_the_same_question() -> None:
    chat = at("respondent.address")
    stored = json.loads(json.dumps(chat.state.to_dict()))
    fresh_engine = Engine(load_form(), engine().catalogs)
    state = State.from_dict(stored)
    [*_, question] = fresh_engine.resume(state, Context()).messages
    assert question.awaiting == "respondent.address"
    resumed = Conversation(state=state)
    resumed.send("Kolwezi, Lualaba, DR Congo")
    assert resumed.answers["respondent.address"] == "Kolwezi, Lualaba, DR Congo"
    assert resumed.answers["applicant.name"] == "Ngozi Okafor"


def test_resume_in_the_middle_of_a_long_answer_keeps_what_was_written() -> None:
    chat = at("dispute.facts")
    chat.send("In March 2024 the dam leaked.")
    state = State.from_dict(json.loads(json.dumps(chat.state.to_dict())))
    resumed = Conversation(state=state)
    resumed.send("done")
    assert resumed.answers["dispute.facts"] == "In March 2024 the dam leaked."


# -- odd messages -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\x00\x07\x1b", "\u200b\u200e"])
def test_empty_or_control_character_message_gets_a_clear_reply(text: str) -> None:
    chat = at("applicant.address")
    chat.send(text)
    assert "Your message was empty" in chat.text
    assert chat.awaiting == "applicant.address"


def test_control_characters_are_removed_from_answers() -> None:
    chat = at("applicant.name")
    chat.send("Ngozi\x00 Oka\u200bfor\x07")
    assert chat.answers["applicant.name"] == "Ngozi Okafor"


# -- wording ----------------------------------------------------------------------------------

ENGLISH = read_catalog(DEFAULT_LOCALE_DIR / "en" / "LC_MESSAGES" / "intake.po")
MSGID_IN_CALL = re.compile(
    r'(?:_say\(state, turn, |_t\(state, |Invalid\(|catalogs\.text\(\w+, |_words\()"([\w.]+)"')


def form_msgids() -> set[str]:
    """Every message id the form's steps need."""
    msgids = set()
    for step in load_form().steps:
        msgids |= {f"field.{step.key}.{part}" for part in ("prompt", "help", "label")}
        msgids |= {f"choice.{step.key}.{choice.id}" for choice in step.choices}
        if step.type == "contact":
            msgids.add(f"field.{step.key}.prompt_channel")
        if step.type in ("longtext", "evidence"):
            msgids.add(f"hint.{step.type}")
    return msgids


def engine_msgids() -> set[str]:
    """Every message id written out in the engine's code, and those it builds from names."""
    literal = set(MSGID_IN_CALL.findall(Path(engine_module.__file__).read_text("utf-8")))
    assert len(literal) > 50, "the pattern no longer finds the engine's messages"
    return literal | {f"command.{name}" for name in COMMANDS} | {"status.submitted"}


def test_every_message_the_form_needs_is_in_the_english_catalog() -> None:
    assert sorted(form_msgids() - ENGLISH.keys()) == []


def test_every_message_the_engine_says_is_in_the_english_catalog() -> None:
    assert sorted(engine_msgids() - ENGLISH.keys()) == []


def test_language_switch_after_back_returns_to_the_question_shown() -> None:
    chat = at("respondent.name")
    chat.send("back", "back")
    assert chat.awaiting == "applicant.address"
    chat.send("language", "2")
    assert chat.awaiting == "applicant.address"
    assert chat.state.language == "zh"


def test_language_switch_at_the_review_returns_to_the_review() -> None:
    chat = Conversation().follow(FILING_FOR_ONESELF, until="review")
    chat.send("language", "2")
    assert chat.awaiting == "review"
    assert "请核对" in chat.text


def test_channel_contact_confirmed_as_applicant_is_asked_again_when_filing_becomes_agent() -> None:
    chat = Conversation({"contact": CHANNEL_CONTACT}).follow(FILING_FOR_ONESELF, until="review")
    chat.send("edit applicant.contact", "1")
    assert chat.answers["applicant.contact"] == CHANNEL_CONTACT
    chat.send("edit applicant.on_behalf", "2")
    assert chat.awaiting == "agent.name"
    chat.send("Amani Kabila", "skip", "1", "later")
    assert chat.answers["agent.contact"] == CHANNEL_CONTACT
    assert chat.awaiting == "applicant.contact"
    assert "applicant.contact" not in chat.answers


def test_authorisation_file_is_acknowledged() -> None:
    chat = Conversation().follow(FILING_AS_AGENT, until="agent.authorisation")
    chat.send("", attachments=(photo("authorisation.pdf"),))
    assert any("authorisation.pdf" in m.text for m in chat.turn.messages)
