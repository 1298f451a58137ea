"""How each channel shows a question: buttons where the app has them, numbered menus where it
does not, always within the provider's limits and the SMS segment budget."""

from __future__ import annotations

import unicodedata

import pytest

from channels import sms, telegram, whatsapp
from channels.base import shorten, split_text
from intake.messages import Choice, OutboundMessage

LANGUAGES = OutboundMessage(
    "Which language do you want to use? 请选择语言。",
    tuple(Choice(code, label) for code, label in [
        ("en", "English"), ("zh", "中文 (Chinese)"), ("fr", "Français"), ("es", "Español"),
        ("pt", "Português"), ("sw", "Kiswahili"), ("id", "Bahasa Indonesia"),
        ("ru", "Русский"), ("ar", "العربية")]))
YES_NO = OutboundMessage("Do you want to ask for confidentiality?",
                         (Choice("yes", "Yes"), Choice("no", "No")))
MINERALS = OutboundMessage("Which minerals are concerned?", tuple(
    Choice(m, m.replace("_", " ").capitalize()) for m in [
        "cobalt", "lithium", "nickel", "copper", "tin", "tantalum", "tungsten", "gold", "mica",
        "graphite", "rare_earths", "other"]))


def test_telegram_buttons_carry_the_choice_id_within_64_bytes() -> None:
    long_id = OutboundMessage("Pick", (Choice("x" * 80, "Long"), Choice("ok", "Fine")))
    [send] = telegram.render("5550000001", long_id)
    assert send.chat_id == 5550000001
    data = [row[0].callback_data for row in send.reply_markup.inline_keyboard]
    assert data == ["1", "ok"]  # the engine takes the number of the choice shown there
    assert all(len(d.encode()) <= 64 for d in data)


def test_telegram_long_text_is_split_with_the_keyboard_on_the_last_part() -> None:
    message = OutboundMessage("word " * 2000, YES_NO.choices)
    parts = telegram.render("1", message)
    assert len(parts) == 3 and all(len(p.text) <= 4096 for p in parts)
    assert [p.reply_markup is not None for p in parts] == [False, False, True]


def test_whatsapp_uses_reply_buttons_for_up_to_three_short_choices() -> None:
    [payload] = whatsapp.render("243970000001", YES_NO, "Choose")
    assert payload["interactive"]["type"] == "button"
    assert [b["reply"] for b in payload["interactive"]["action"]["buttons"]] == [
        {"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}]


def test_whatsapp_uses_a_list_within_meta_limits_for_up_to_ten() -> None:
    [payload] = whatsapp.render("243970000001", LANGUAGES, "Choose a language please")
    action = payload["interactive"]["action"]
    rows = action["sections"][0]["rows"]
    assert payload["interactive"]["type"] == "list" and len(rows) == 9
    assert len(action["button"]) <= 20
    assert rows[1] == {"id": "zh", "title": "中文 (Chinese)"}
    long = OutboundMessage("Who?", (Choice("a", "A civil-society organisation (NGO) that "
                                                 "works with the community"),))
    [payload] = whatsapp.render("1", long, "Choose")
    row = payload["interactive"]["action"]["sections"][0]["rows"][0]
    assert len(row["title"]) <= 24 and len(row["description"]) <= 72
    assert not row["title"].endswith(" …") and row["title"].startswith("A civil-society")


def test_whatsapp_more_than_ten_choices_become_a_numbered_text() -> None:
    [payload] = whatsapp.render("1", OutboundMessage("Q?", tuple(
        Choice(str(n), f"Option {n}") for n in range(12))), "Choose")
    assert payload["type"] == "text" and "12. Option 11" in payload["text"]["body"]


def test_whatsapp_long_body_goes_first_as_text_then_the_buttons() -> None:
    summary = OutboundMessage("\n".join(f"{n}. Item: value {n}" for n in range(200)),
                              (Choice("confirm", "Everything correct"),))
    payloads = whatsapp.render("1", summary, "Choose")
    assert [p["type"] for p in payloads[:-1]] == ["text"] * (len(payloads) - 1)
    assert payloads[-1]["type"] == "interactive"
    assert len(payloads[-1]["interactive"]["body"]["text"]) <= 1024
    shown = "\n".join([p["text"]["body"] for p in payloads[:-1]] +
                      [payloads[-1]["interactive"]["body"]["text"]])
    assert "0. Item: value 0" in shown and "199. Item: value 199" in shown


@pytest.mark.parametrize(("text", "encoding", "parts"), [
    ("a" * 160, "GSM-7", 1), ("a" * 161, "GSM-7", 2), ("a" * 306, "GSM-7", 2),
    ("a" * 307, "GSM-7", 3), ("€" * 80, "GSM-7", 1), ("€" * 81, "GSM-7", 2),
    ("中" * 70, "UCS-2", 1), ("中" * 71, "UCS-2", 2), ("中" * 134, "UCS-2", 2),
])
def test_sms_segments_are_counted_as_phones_count_them(text: str, encoding: str,
                                                       parts: int) -> None:
    assert sms.segments(text) == sms.Segments(encoding, parts)


def test_sms_look_alikes_keep_a_message_in_gsm7() -> None:
    assert sms.to_gsm7("“Vous” – l’été… ça va") == '"Vous" - l\'été... ca va'
    assert sms.segments(sms.to_gsm7("Não há água — até já")).encoding == "GSM-7"
    assert sms.to_gsm7("你好 “x”") == "你好 “x”"  # UCS-2 anyway: left exactly as written


def test_sms_menu_is_numbered_and_fits_the_budget() -> None:
    [text] = sms.render(MINERALS, 3, "Reply with a number from 1 to 12.")
    assert text.startswith("Which minerals are concerned?\n1. Cobalt\n2. Lithium")
    assert "12. Other" in text and sms.segments(text).parts <= 3


CATEGORIES = OutboundMessage("Who is the applicant?", tuple(Choice(str(n), label) for n, label in
    enumerate(["An individual", "A community or group of people",
               "A civil-society organisation (NGO)", "Media", "A company in the supply chain",
               "A standards body or assessor", "Other"], start=1)))


def test_sms_prompt_over_budget_gets_shorter_labels_cut_between_words() -> None:
    assert sms.segments(CATEGORIES.text + "\n" + sms.menu(CATEGORIES.choices)).parts == 2
    [text] = sms.render(CATEGORIES, 1, "Reply with a number from 1 to 7.")
    assert sms.segments(text).parts == 1
    lines = text.split("\n")
    assert lines[0] == "Who is the applicant?" and len(lines) == 8
    for line, choice in zip(lines[1:], CATEGORIES.choices, strict=True):
        number, label = line.split(". ", 1)
        words = label.removesuffix("...").split()
        assert number == choice.id and choice.label.split()[:len(words)] == words


def test_sms_menu_that_cannot_fit_travels_alone_and_the_question_is_kept() -> None:
    texts = sms.render(LANGUAGES, 1, "Reply with a number from 1 to 9.")
    assert texts[0] == LANGUAGES.text
    assert all(sms.segments(t).parts == 1 for t in texts)
    assert "Reply with a number from 1 to 9." in texts[-1]
    assert "9. العربية" in "\n".join(texts)


def test_sms_long_text_is_split_between_lines_into_messages_within_the_budget() -> None:
    summary = OutboundMessage("\n".join(f"{n}. Applicant name: Jane Mwamba" for n in range(40)),
                              (Choice("confirm", "Everything is correct"),))
    texts = sms.render(summary, 2, "Reply 1.")
    assert all(sms.segments(t).parts <= 2 for t in texts)
    assert texts[-1].endswith("1. Everything is correct")
    assert "\n".join(texts).count("Applicant name: Jane Mwamba") == 40


@pytest.mark.parametrize("word", ["e\u0301t", "น้ำ", "👩\u200d🌾"],
                         ids=["decomposed-french", "thai", "emoji-sequence"])
def test_text_without_spaces_is_never_cut_inside_a_character(word: str) -> None:
    text = word * 40
    for parts in (split_text(text, 25), [shorten(text, 25)]):
        assert all(unicodedata.category(part[0]) not in ("Mn", "Mc", "Me")
                   and part[0] != "\u200d" and not part.rstrip("…").endswith("\u200d")
                   for part in parts)
        assert all(len(part) <= 25 for part in parts)
    assert "".join(split_text(text, 25)) == text  # nothing lost


def test_split_text_never_cuts_a_word() -> None:
    parts = split_text("alpha beta gamma delta epsilon zeta", 12)
    assert parts == ["alpha beta", "gamma delta", "epsilon zeta"]
