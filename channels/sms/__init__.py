"""What every SMS provider shares: GSM-7 and UCS-2 segments, look-alike characters, menus.

A text message is one or more segments: 160 GSM-7 characters alone or 153 per part when
concatenated (the extension characters ^ { } \\ [ ] ~ | € count twice), or 70 / 67 UTF-16 units
in UCS-2 as soon as one character is outside GSM-7. Typographic quotes, dashes, ellipses, odd
spaces and accents that GSM-7 lacks are replaced by their plain look-alikes when that keeps the
whole text in GSM-7, which more than halves the cost of a message in French, Spanish or
Portuguese.

Choices become a numbered menu ("1. Label"). A message longer than the segment budget is never
cut: the menu's labels are shortened at word boundaries first, then the text is split between
paragraphs, lines or words into several messages, the menu going with the last one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from channels.base import shorten, split_text
from intake.messages import Choice, OutboundMessage

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
LOOK_ALIKES = {
    **dict.fromkeys("‘’‚‛′ʼ`´", "'"),
    **dict.fromkeys("“”„‟″«»", '"'),
    **dict.fromkeys("‐‑‒–—―−", "-"),
    **dict.fromkeys("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
                    "\u200a\u202f\u205f\t", " "),
    **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff", ""),
    "…": "...", "•": "-", "ˆ": "^", "˜": "~", "œ": "oe", "Œ": "OE", "ç": "c",
}
SHORT_LABEL = 20


@dataclass(frozen=True)
class Segments:
    """How a text travels: its encoding and the number of SMS parts it takes."""

    encoding: str  # "GSM-7" | "UCS-2"
    parts: int


def is_gsm7(text: str) -> bool:
    """Whether every character has a GSM-7 code."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def to_gsm7(text: str) -> str:
    """The text with look-alikes replaced, if that makes it GSM-7; otherwise unchanged."""
    if is_gsm7(text):
        return text
    replaced = "".join(_look_alike(ch) for ch in text)
    return replaced if is_gsm7(replaced) else text


def _look_alike(ch: str) -> str:
    if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
        return ch
    if ch in LOOK_ALIKES:
        return LOOK_ALIKES[ch]
    base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
    return base if base and base != ch else ch


def segments(text: str) -> Segments:
    """The encoding and number of parts of a text (an empty text still costs one part)."""
    if is_gsm7(text):
        units = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return Segments("GSM-7", _parts(units, 160, 153))
    units = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return Segments("UCS-2", _parts(units, 70, 67))


def _parts(units: list[int], single: int, per_part: int) -> int:
    """Parts needed, never splitting an escape sequence or a surrogate pair."""
    if sum(units) <= single:
        return 1
    parts, used = 1, 0
    for unit in units:
        if used + unit > per_part:
            parts, used = parts + 1, 0
        used += unit
    return parts


def fits(text: str, max_segments: int) -> bool:
    """Whether the text, as it will be sent, stays within the segment budget."""
    return segments(to_gsm7(text)).parts <= max_segments


def menu(choices: tuple[Choice, ...], short: bool = False) -> str:
    """The numbered menu of a message's choices."""
    return "\n".join(f"{n}. {_short_label(c.label) if short else c.label}"
                     for n, c in enumerate(choices, start=1))


def _short_label(label: str) -> str:
    """A label without its parenthetical part, shortened at a word boundary."""
    plain = re.sub(r"\s*[(（][^)）]*[)）]", "", label).strip() or label
    return shorten(plain, SHORT_LABEL)


def render(message: OutboundMessage, max_segments: int, number_hint: str) -> list[str]:
    """The message as SMS texts, each within `max_segments` where the words allow it.

    `number_hint` is "Reply with a number from 1 to N…" in the person's language; it goes with
    a menu that had to travel in a message of its own.
    """
    texts = _compose(message, max_segments, number_hint)
    return [to_gsm7(text) for text in texts if text.strip()]


def _compose(message: OutboundMessage, max_segments: int, number_hint: str) -> list[str]:
    text = message.text.strip()
    if not message.choices:
        return _split(text, max_segments)
    for labels_short in (False, True):
        whole = "\n".join(p for p in (text, menu(message.choices, labels_short)) if p)
        if fits(whole, max_segments):
            return [whole]
    parts = _split(text, max_segments)
    for labels_short in (False, True):
        last = f"{parts[-1]}\n{menu(message.choices, labels_short)}" if parts else ""
        if last and fits(last, max_segments):
            return [*parts[:-1], last]
    for labels_short in (False, True):
        alone = f"{menu(message.choices, labels_short)}\n{number_hint}"
        if fits(alone, max_segments) or labels_short:
            return [*parts, *_split(alone, max_segments)]
    raise AssertionError("unreachable")


def _split(text: str, max_segments: int) -> list[str]:
    """The text in as few parts within the budget as its words allow."""
    if fits(text, max_segments):
        return [text] if text else []
    limit = 153 * max_segments
    while limit > 10:
        parts = split_text(text, limit)
        if all(fits(part, max_segments) for part in parts):
            return parts
        limit = int(limit * 0.8)
    return split_text(text, 10)
