"""Reading what applicants type: refusals to give a name, counts, lists of names."""

from __future__ import annotations

import pytest

from intake.text import clean, has_words, is_refusal, is_unknown, parse_count, split_names


@pytest.mark.parametrize("answer", [
    "anonymous", "Anonymous.", "ANONYME", "匿名", "no name", "N/A", "x", "-", "???", "",
    "😶", "prefer not to say", "I don't want to give my name", "保密", "不想说",
    "我不想透露姓名", "I want to stay anonymous", "Anonymous please", "我要匿名", "匿名申请",
    "je préfère rester anonyme", "anónimo por favor", "quiero ser anónimo", "saya ingin anonim",
    "nama dirahasiakan", "sitaki kutaja jina langu", "bila jina tafadhali",
    "je ne souhaite pas donner mon nom", "saya tidak mau menyebutkan nama",
])
def test_refusal_to_give_a_name_is_recognised(answer: str) -> None:
    assert is_refusal(answer)


@pytest.mark.parametrize("name", [
    "Li Na", "Ngozi Okafor", "王芳", "Xu Ming", "Ng Wai Man", "Noé Kasongo", "Nonhlanhla Dlamini",
    "Siri Hansen", "Kasulo community", "Haki Madini", "Amani", "Annisa", "Nadia", "Ana Nimo",
    "Anon Chaiyaporn", "Nimo Abdi", "Rahma Siregar", "Dian Sastrowardoyo", "Jina Mwangi",
    "Nonhle Zulu", "Amina Mohamed", "Noor Anisa", "Minera Andina Sociedad Anónima",
    "Kolwezi Mining Société Anonyme", "刘安宁", "尼莫",
])
def test_real_names_are_not_refusals(name: str) -> None:
    assert not is_refusal(name)


@pytest.mark.parametrize("answer", [
    "I don't know", "dont know", "I do not know the address", "no idea", "Unknown.", "not sure",
    "je ne sais pas", "Je ne sais pas l'adresse", "sais pas", "je ne la connais pas",
    "aucune idée", "inconnue", "no sé", "No lo sé", "desconocido", "não sei", "Não conheço",
    "sijui", "Sijui.", "haijulikani", "tidak tahu", "saya tidak tahu", "nggak tau", "不知道",
    "我不知道", "不清楚", "不知道地址", "не знаю", "Я не знаю", "неизвестно", "لا أعرف",
    "غير معروف",
])
def test_not_knowing_is_recognised_in_each_language(answer: str) -> None:
    assert is_unknown(answer)


@pytest.mark.parametrize("answer", [
    "Kolwezi Mining", "Unknown Minerals Ltd", "I don't know the street, but it is near Kasulo",
    "je ne sais pas l'adresse exacte, c'est près de Kolwezi", "Sijui Mining Co.",
    "不知道具体地址，在科卢韦齐卡苏洛村附近", "Près de Kolwezi, Lualaba, RDC", "Noe Sais",
])
def test_answers_that_say_something_are_not_taken_for_not_knowing(answer: str) -> None:
    assert not is_unknown(answer)


@pytest.mark.parametrize(("answer", "count"), [
    ("12", 12), ("about 40 families", 40), ("三", 3), ("三个人", 3), ("1,200", 1200),
    ("2 000", 2000), ("２０", 20), ("十二个人", 12), ("两千人", 2000), ("一百户", 100),
    ("三百多人", 300), ("一万", 10000), ("3千人", 3000), ("1.5万人", 15000), ("几百户", 100),
    ("2 ribu orang", 2000), ("5 ratus keluarga", 500), ("watu elfu 2", 2000),
    ("3 mil personas", 3000), ("3 mille habitants", 3000), ("2 thousand", 2000), ("3k", 3000),
    ("1.5k", 1500), ("hundreds of families", 100), ("ribuan orang", 1000),
])
def test_count_is_read_from_the_answer(answer: str, count: int) -> None:
    assert parse_count(answer) == count


@pytest.mark.parametrize("answer", ["many", "10 or 20", "40 families, 200 people", "", "1.5",
                                    "40户，200人"])
def test_answer_without_one_clear_count_gives_none(answer: str) -> None:
    assert parse_count(answer) is None


@pytest.mark.parametrize(("answer", "names"), [
    ("Li Na, Wang Fang", ["Li Na", "Wang Fang"]),
    ("Li Na and Wang Fang", ["Li Na", "Wang Fang"]),
    ("Li Na\nWang Fang", ["Li Na", "Wang Fang"]),
    ("李娜、王芳", ["李娜", "王芳"]),
    ("Neema Mwamba na Furaha Ilunga", ["Neema Mwamba", "Furaha Ilunga"]),
    ("Ngozi Okafor;", ["Ngozi Okafor"]),
])
def test_names_are_split_at_commas_lines_and_and(answer: str, names: list[str]) -> None:
    assert split_names(answer) == names


def test_cleaning_removes_control_characters_and_keeps_line_breaks() -> None:
    assert clean("  Kasulo\x00 river\r\nwells\u200b red\x1b  ") == "Kasulo river\nwells red"


def test_emoji_and_punctuation_are_not_words() -> None:
    assert not has_words("😡👍 !!")
    assert has_words("水 😡")
