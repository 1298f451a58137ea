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
    r"|^(je\s+)?(ne\s+(veux|souhaite)\s+pas|préfère\s+ne\s+pas)"
    r"|^(saya\s+)?(tidak|tak|gak|nggak)\s+(mau|ingin)\b.*\bnama\b"
    r"|^(prefiero\s+no|no\s+quiero)"
    r"|^我?(不想|不愿|不愿意|不方便)"
)


# Words that ask for anonymity wherever they stand in the answer ("I want to stay anonymous",
# "quiero ser anónimo", "saya ingin anonim"); none of them is a name.
_ANONYMITY_WORDS = {
    "anonymous", "anonymously", "anonymity", "anonym", "anonyme", "anonymes", "anonymement",
    "anonymat", "anónimo", "anónima", "anónimos", "anónimamente", "anonimo", "anonima",
    "anonimato", "anônimo", "anônima", "anonimamente", "anonim", "anonimitas", "anonimous",
    "анонимно", "аноним", "анонимный", "анонимная", "анонимность", "مجهول", "مجهولة",
    "dirahasiakan", "rahasiakan",
}
_ANONYMITY_PHRASES = re.compile(
    r"匿名|不具名|不署名|不留名|隐去姓名|姓名保密|名字保密"
    r"|\b(?:no name|without (?:a |my )?name|sans (?:mon )?nom|sin (?:mi )?nombre|sem nome"
    r"|bila (?:jina|kujitambulisha)|tanpa nama|без имени|بدون اسم"
    r"|kutaja jina|kujitambulisha|jina langu ni siri|nama saya rahasia)\b"
)
# Company forms that contain the word: "Minera Andina Sociedad Anónima" is a real name.
_COMPANY_FORMS = re.compile(
    r"\b(?:soci[ée]t[ée] anonyme|sociedad an[óo]nima|sociedade an[óoô]nima|anonim şirketi)\b"
)


def is_refusal(text: str) -> bool:
    """Whether an answer to a name or contact question declines to identify the person."""
    folded = fold(text)
    if not folded or not has_words(folded):
        return True
    if folded in _REFUSALS or _REFUSAL_PATTERNS.search(folded):
        return True
    words = _COMPANY_FORMS.sub(" ", folded)
    return bool(_ANONYMITY_PHRASES.search(words)
                or _ANONYMITY_WORDS.intersection(re.findall(r"\w+", words)))


# "I don't know" as a whole answer, in the languages applicants write in, with the object
# people add ("I don't know the address", "je ne la connais pas").
_UNKNOWN = re.compile(
    r"^(?:"
    r"(?:i\s+)?(?:do\s*n[o']?t|do\s+not|dunno)\s+know(?:\s+(?:it|that|where|the\s+\w+))?"
    r"|i\s+have\s+no\s+idea|no\s+idea|not\s+sure|idk|unknown|not\s+known|n/?a|\?+"
    r"|(?:je\s+ne\s+)?(?:sais|connais)\s+pas(?:\s+(?:l'\w+|le\s+\w+|la\s+\w+))?"
    r"|je\s+ne\s+(?:le|la|les)\s+(?:sais|connais)\s+pas|j'?sais\s+pas|aucune\s+id[ée]e"
    r"|inconnu|inconnue|non\s+connu|non\s+connue"
    r"|(?:yo\s+)?no\s+(?:lo\s+|la\s+)?s[ée]|(?:no\s+)?(?:lo\s+)?desconozco|ni\s+idea"
    r"|desconocid[oa]|no\s+(?:lo\s+|la\s+)?conozco"
    r"|(?:eu\s+)?n[ãa]o\s+(?:o\s+|a\s+)?(?:sei|conhe[çc]o)|desconhecid[oa]|sem\s+ideia"
    r"|sijui|sifahamu|haijulikani|haijulikani|sina\s+habari"
    r"|(?:saya\s+)?(?:tidak|tak|gak|nggak|ga|enggak)\s+(?:tahu|tau)|tidak\s+diketahui"
    r"|entahlah|entah"
    r"|我?不知道(?:地址|在哪里?|在哪儿)?|不清楚|不详|未知|不晓得|不了解"
    r"|(?:я\s+)?не\s+знаю|неизвестно|без\s+понятия"
    r"|لا\s+أعرف|لا\s+اعرف|لا\s+أعلم|لا\s+اعلم|غير\s+معروف|مش\s+عارف|ما\s+بعرف"
    r")$"
)


def is_unknown(text: str) -> bool:
    """Whether the whole answer only says the person does not know it."""
    return bool(_UNKNOWN.match(fold(text)))


_CHINESE_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
                   "六": 6, "七": 7, "八": 8, "九": 9}
_CHINESE_UNITS = {"十": 10, "百": 100, "千": 1000}
_CHINESE_SECTIONS = {"万": 10_000, "亿": 100_000_000}
# A Chinese number, possibly with Arabic digits: 三, 十二, 两千, 三百多, 3千, 1.5万.
_CHINESE_NUMBER = re.compile(r"(?:\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千万亿])+")
# Words with 一 that are no count: 一共 (in all), 一起 (together), 一些 (some)…
_CHINESE_NOT_NUMBERS = re.compile(r"一共|一起|一些|一直|一样|一下|之一|统一|一般")
# "A few hundred", "thousands of": the unit is the smallest value they can mean.
_CHINESE_SOME = {"成千上万": "一万", "上万": "一万", "上千": "一千", "上百": "一百"}
_CHINESE_SOME_WORDS = re.compile(r"成千上万|上万|上千|上百|[几数](?=[十百千万])")

# Words that multiply the number before them ("2 thousand", "3 mil", "5 ratus", "3k"), or
# in Swahili the number after them ("elfu 2", "mia 3").
_MULTIPLIERS = {
    "hundred": 100, "hundreds": 100, "thousand": 1000, "thousands": 1000, "k": 1000,
    "million": 1_000_000, "millions": 1_000_000,
    "cent": 100, "cents": 100, "mille": 1000, "milliers": 1000,
    "cien": 100, "ciento": 100, "cientos": 100, "mil": 1000, "millón": 1_000_000,
    "millones": 1_000_000, "centenas": 100, "milhares": 1000, "milhão": 1_000_000,
    "ratus": 100, "ribu": 1000, "rb": 1000, "juta": 1_000_000,
    "mia": 100, "elfu": 1000, "laki": 100_000, "milioni": 1_000_000,
    "сотни": 100, "сотен": 100, "тысяча": 1000, "тысячи": 1000, "тысяч": 1000,
    "مئة": 100, "مائة": 100, "ألف": 1000, "آلاف": 1000,
}
_MULTIPLIER_BEFORE = {"mia", "elfu", "laki", "milioni"}
# A multiplier alone is "hundreds" or "thousands of" (counted as the unit itself).
_SOME = {
    "hundreds": 100, "thousands": 1000, "centaines": 100, "milliers": 1000, "cientos": 100,
    "miles": 1000, "centenas": 100, "milhares": 1000, "ratusan": 100, "ribuan": 1000,
    "mamia": 100, "maelfu": 1000, "seratus": 100, "seribu": 1000, "сотни": 100, "тысячи": 1000,
}
_WORD_NUMBER = re.compile(
    r"(?:(?<!\w)(?P<before>[^\W\d]+)\s+)?(?P<number>\d+(?:[., ]\d+)*)(?:\s*(?P<after>[^\W\d]+))?")


def parse_count(text: str) -> int | None:
    """The one whole number in an answer ("12", "about 40 families", "三个人", "两千人",
    "2 ribu orang", "watu elfu 2"), else None."""
    values: list[int | None] = []

    def chinese(match: re.Match[str]) -> str:
        if re.fullmatch(r"[\d.]+", match.group()):
            return match.group()
        values.append(_chinese_number(match.group()))
        return " "

    text = _CHINESE_NOT_NUMBERS.sub(" ", unicodedata.normalize("NFKC", text).casefold())
    text = _CHINESE_SOME_WORDS.sub(lambda m: _CHINESE_SOME.get(m.group(), "一"), text)
    text = _CHINESE_NUMBER.sub(chinese, text)
    for match in _WORD_NUMBER.finditer(text):
        values.append(_number_with_multiplier(match))
    if not values:
        values = [value for word, value in _SOME.items() if word in re.findall(r"\w+", text)]
    return values[0] if len(values) == 1 else None


def _number_with_multiplier(match: re.Match[str]) -> int | None:
    """One number in digits, times the multiplier word before or after it, if any."""
    number, after, before = match["number"], match["after"], match["before"]
    multiplier = _MULTIPLIERS.get(after or "") or (
        _MULTIPLIERS[before] if before in _MULTIPLIER_BEFORE else 1)
    # "1,200", "1.200" and "1 200" are thousands; "1.5" is a count only as "1.5 thousand".
    if re.fullmatch(r"\d{1,3}(?:([., ])\d{3})(?:\1\d{3})*|\d+", number):
        return int(re.sub(r"[,. ]", "", number)) * multiplier
    if multiplier > 1 and re.fullmatch(r"\d+[.,]\d{1,2}", number):
        return round(float(number.replace(",", ".")) * multiplier)
    return None


def _chinese_number(written: str) -> int:
    """A number written in Chinese characters, Arabic digits or both (三百, 两千, 3千, 1.5万)."""
    total, section, digit = 0.0, 0.0, 0.0
    for part in re.findall(r"\d+(?:\.\d+)?|\D", written):
        if part in _CHINESE_UNITS:
            section += (digit or 1) * _CHINESE_UNITS[part]
            digit = 0
        elif part in _CHINESE_SECTIONS:
            total += (section + digit or 1) * _CHINESE_SECTIONS[part]
            section = digit = 0
        else:
            digit = float(part) if part[0].isdigit() else _CHINESE_DIGITS[part]
    return round(total + section + digit)


def split_names(text: str) -> list[str]:
    """Names given on separate lines, or separated by commas, semicolons or 、."""
    parts = re.split(r"[\n,;，；、،؛]+|\s+(?:and|et|y|na|dan|и|و|和)\s+", text)
    return [part.strip() for part in parts if part.strip()]
