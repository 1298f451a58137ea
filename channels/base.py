"""What every messaging adapter hands the gateway, and the text helpers they share.

An adapter is pure: it turns a provider's verified payload into a `Parsed` (neutral inbound
messages, files still to fetch, delivery reports, blocks) and an `OutboundMessage` into the
provider's send call. It never touches the network, the database or the conversation.
"""

from __future__ import annotations

import hmac
import unicodedata
from dataclasses import dataclass, field

from intake.messages import InboundMessage


class PayloadRefused(ValueError):
    """A payload that is not what the provider sends (malformed, wrong shape); answered 4xx."""


@dataclass(frozen=True)
class MediaRef:
    """A file the person sent, still at the provider: a Telegram file_id, a WhatsApp media id,
    a Twilio media URL. The gateway downloads it into evidence before the message is processed."""

    reference: str
    media_type: str | None = None
    filename: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class DeliveryReport:
    """What the provider says became of a message the gateway sent."""

    provider_message_id: str
    status: str  # sent | delivered | read | failed
    error: str | None = None
    blocked: bool = False


@dataclass(frozen=True)
class BlockChange:
    """The person blocked the bot or unsubscribed (blocked=True), or came back (False)."""

    sender: str
    blocked: bool


@dataclass
class Parsed:
    """Everything one webhook delivery (or one polled update) holds."""

    channel: str
    messages: list[InboundMessage] = field(default_factory=list)
    media: dict[str, list[MediaRef]] = field(default_factory=dict)  # by provider message id
    reports: list[DeliveryReport] = field(default_factory=list)
    blocks: list[BlockChange] = field(default_factory=list)
    callback_query_ids: list[str] = field(default_factory=list)  # Telegram: stop the spinner
    ignored: list[str] = field(default_factory=list)  # what was skipped, for the log

    def add(self, message: InboundMessage, media: list[MediaRef] | None = None) -> None:
        """One inbound message, with the files it carries."""
        self.messages.append(message)
        if media:
            self.media[message.provider_message_id] = media


class SendFailure(Exception):
    """A send the provider refused. `kind`: transient (try again later), blocked (the person
    blocked the bot or unsubscribed: never retried), window (WhatsApp: outside the 24-hour
    window, needs a template) or permanent (retrying cannot help)."""

    def __init__(self, kind: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.retry_after = retry_after


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented secret with the configured one."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def shorten(text: str, limit: int, ellipsis: str = "…") -> str:
    """The text within `limit` characters, cut at a word boundary (never inside a word)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    room = limit - len(ellipsis)
    cut = text[: room + 1].rsplit(" ", 1)[0] if " " in text[: room + 1] else ""
    cut = cut.rstrip(" ,;:-")
    if not cut:  # one long word (or CJK without spaces): cut between characters
        cut = text[:character_boundary(text, room)]
    return cut + ellipsis


def character_boundary(text: str, cut: int) -> int:
    """`cut`, or the nearest position before it that does not part a letter from its accents
    or tone marks (decomposed French, Thai, Vietnamese), or the halves of an emoji sequence."""
    start = cut
    while 0 < cut < len(text) and (unicodedata.category(text[cut]) in ("Mn", "Mc", "Me")
                                   or text[cut] in _JOINING or text[cut - 1] in _JOINING):
        cut -= 1
    return cut or start  # a "character" longer than the limit: cut it rather than loop


_JOINING = {"\u200d", "\ufe0e", "\ufe0f"}  # zero-width joiner, variation selectors


def split_text(text: str, limit: int) -> list[str]:
    """Parts of at most `limit` characters, split between paragraphs, lines or words."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            cut = window.rfind(separator)
            if cut > limit // 3:
                break
        if cut <= 0:
            cut = character_boundary(rest, limit)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts
