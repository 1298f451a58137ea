"""Cleaning and recognising what people type: control characters, refusals, numbers."""

from __future__ import annotations

import re
import unicodedata

_CONTROL = {"Cc", "Cf", "Co", "Cs"}
_KEEP = {"\n", "\t"}


def clean(text: str) -> str:
    """NFC-normalised text without control characters, trimmed; newlines are kept."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    kept = "".join(
        ch for ch in text
        if ch in _KEEP or ch == "\u200d" or unicodedata.category(ch) not in _CONTROL
    )
    return kept.strip()


def fold(text: str) -> str:
    """The form used to compare words: case-folded, without surrounding punctuation or spaces."""
    text = unicodedata.normalize("NFKC", text).casefold().strip()
    text = re.sub(r"\s+", " ", text)
    return text.strip(" .,;:!?。，；：！？、'\"“”‘’()（）[]【】")


def has_words(text: str) -> bool:
    """Whether the text holds at least one letter or digit (not only emoji or punctuation)."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


# Ways people decline to give a name or a contact, in the languages applicants write in.
_REFUSALS = {
    "anonymous", "anon", "anonym", "anonyme", "anónimo", "anonimo", "anónima", "anonima",
    "anônimo", "anônima", "anonim", "анонимно", "аноним", "مجهول", "匿名", "不愿透露", "不想透露",
    "不透露", "不告诉",
    "保密", "秘密", "无", "没有", "无名", "无名氏", "不知道", "none", "no", "nope", "no name",
    "noname", "nobody", "no one", "n/a", "nil", "null", "unknown", "secret",
    "confidential", "prefer not to say", "rather not say", "i prefer not to say",
    "i'd rather not say", "not telling", "sans nom", "pas de nom", "sin nombre",
    "ninguno", "nadie", "sem nome", "bila jina", "siri", "hakuna", "tanpa nama", "rahasia",
    "tidak ada", "x", "xx", "xxx", "xxxx", "-", "--", "---", ".", "..",
    "...", "?", "??", "???", "*", "**", "***", "0", "000",
}
_REFUSAL_PATTERNS = re.compile(
    r"^(i\s+)?(do\s*n[o']?t|won'?t|will\s+not|would\s+rather\s+not|prefer\s+not|can'?t)\b"
    r".*\b(say|give|tell|share|disclose|name)\b"
    r"|^(je\s+)?(ne\s+veux\s+pas|préfère\s+ne\s+pas)"
    r"|^(prefiero\s+no|no\s+quiero)"
    r"|^我?(不想|不愿|不愿意|不方便)"
)


def is_refusal(text: str) -> bool:
    """Whether an answer to a name or contact question declines to identify the person."""
    folded = fold(text)
    if not folded or not has_words(folded):
        return True
    return folded in _REFUSALS or bool(_REFUSAL_PATTERNS.search(folded))


_CHINESE_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
                   "七": 7, "八": 8, "九": 9, "十": 10}


def parse_count(text: str) -> int | None:
    """The one whole number in an answer ("12", "about 40 families", "三个人"), else None."""
    found = re.findall(r"\d+(?:[., ]\d+)*", unicodedata.normalize("NFKC", text))
    # "1,200", "1.200" and "1 200" are thousands; "1.5" is no count of people.
    numbers = [n for n in found if re.fullmatch(r"\d{1,3}(?:([., ])\d{3})(?:\1\d{3})*|\d+", n)]
    if len(numbers) != len(found):
        return None
    if len(numbers) == 1:
        return int(re.sub(r"[,. ]", "", numbers[0]))
    if not numbers:
        chinese = [ch for ch in text if ch in _CHINESE_DIGITS]
        if len(chinese) == 1:
            return _CHINESE_DIGITS[chinese[0]]
    return None


def split_names(text: str) -> list[str]:
    """Names given on separate lines, or separated by commas, semicolons or 、."""
    parts = re.split(r"[\n,;，；、،؛]+|\s+(?:and|et|y|na|dan|и|و|和)\s+", text)
    return [part.strip() for part in parts if part.strip()]
