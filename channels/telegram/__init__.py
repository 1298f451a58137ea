"""Telegram: Bot API updates in, `sendMessage` with an inline keyboard out.

Updates are read with python-telegram-bot's types (`Update.de_json`). A message becomes one
inbound message keyed by `update_id`; a button press (`callback_query`) becomes one whose text
is the choice id the button carries, and its id is handed back so the gateway can call
`answerCallbackQuery`. Photos, documents, voice notes, audio and video arrive as file ids to
fetch with `getFile`. `my_chat_member` tells when a person blocks the bot (status "kicked").
Group chats, edited messages, stickers, locations and the like are ignored.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from telegram import (
    CallbackQuery,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from telegram import error as tg

from channels.base import BlockChange, MediaRef, Parsed, PayloadRefused, SendFailure, split_text
from intake.messages import InboundMessage, OutboundMessage

CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_TEXT = 4096
MAX_CALLBACK_DATA_BYTES = 64
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
# What the Start button sends; for someone who already began it shows where they are.
START_COMMAND = "/start"


def parse(data: Any) -> Parsed:
    """One Update object (a webhook body or one element of getUpdates)."""
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        raise PayloadRefused("not a Telegram Update: no update_id")
    try:
        update = Update.de_json(data, None)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise PayloadRefused(f"not a Telegram Update: {error}") from error
    parsed = Parsed(CHANNEL)
    try:
        _update(parsed, data, update)
    except PayloadRefused:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        # python-telegram-bot builds objects without checking field types (a list for a text,
        # a chat without a type): such an update did not come from Telegram as documented.
        raise PayloadRefused(f"malformed Telegram Update: {type(error).__name__}") from error
    return parsed


def _update(parsed: Parsed, data: dict[str, Any], update: Update) -> None:
    provider_id = str(update.update_id)
    if update.message is not None:
        _message(parsed, provider_id, update.message)
    elif update.callback_query is not None:
        _button_press(parsed, provider_id, update.callback_query)
    elif update.my_chat_member is not None:
        member = update.my_chat_member
        if member.chat.type == Chat.PRIVATE:
            status = member.new_chat_member.status
            parsed.blocks.append(BlockChange(str(member.chat.id), status == "kicked"))
    else:
        kinds = [k for k in data if k != "update_id"]
        parsed.ignored.append(f"update of kind {', '.join(kinds) or 'none'}")


def _message(parsed: Parsed, provider_id: str, message: Message) -> None:
    """A text, or a file with an optional caption, from a private chat."""
    if message.chat.type != Chat.PRIVATE or message.from_user is None:
        parsed.ignored.append(f"message in a {message.chat.type} chat")
        return
    media = _media(message)
    text = message.text if message.text is not None else (message.caption or "")
    if not text and not media:
        parsed.ignored.append("message without text or a supported file")
        return
    if not isinstance(message.chat.id, int) or not isinstance(text, str):
        raise PayloadRefused("a message without a numeric chat id or with a text that is not one")
    if text.split(" ", 1)[0] == START_COMMAND:
        text = "help"
    parsed.add(InboundMessage(
        channel=CHANNEL, sender=str(message.chat.id), provider_message_id=provider_id,
        text=text, received_at=message.date, hints=hints(message.from_user)), media)


def _button_press(parsed: Parsed, provider_id: str, query: CallbackQuery) -> None:
    """A pressed inline button: its callback data is the id of the choice."""
    parsed.callback_query_ids.append(query.id)
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    if not isinstance(chat_id, int) or not isinstance(query.data or "", str):
        raise PayloadRefused("a button press without a numeric chat id or with data not text")
    parsed.add(InboundMessage(
        channel=CHANNEL, sender=str(chat_id), provider_message_id=provider_id,
        text=query.data or "", hints=hints(query.from_user)))


def _media(message: Message) -> list[MediaRef]:
    """The file a message carries, as a file id to fetch."""
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.file_size or 0, p.width * p.height))
        return [MediaRef(largest.file_id, "image/jpeg", f"photo-{largest.file_unique_id}.jpg",
                         largest.file_size)]
    if message.document is not None:
        doc = message.document
        return [MediaRef(doc.file_id, doc.mime_type, doc.file_name or _name("document", doc),
                         doc.file_size)]
    for kind in ("voice", "audio", "video", "video_note"):
        item = getattr(message, kind)
        if item is not None:
            media_type = getattr(item, "mime_type", None) or (
                "video/mp4" if kind == "video_note" else None)
            name = getattr(item, "file_name", None) or _name(kind, item, media_type)
            return [MediaRef(item.file_id, media_type, name, item.file_size)]
    return []


def _name(kind: str, item: Any, media_type: str | None = None) -> str:
    """A file name for a file sent without one."""
    extension = mimetypes.guess_extension(media_type or getattr(item, "mime_type", "") or "")
    return f"{kind}-{item.file_unique_id}{extension or ''}"


def hints(user: User) -> dict[str, str]:
    """What Telegram tells about the person: their language, name and Telegram address."""
    handle = f"@{user.username}" if user.username else user.full_name
    found = {"contact": f"Telegram {handle} (id {user.id})", "name": user.full_name}
    if user.language_code:
        found["language"] = user.language_code
    return {key: value for key, value in found.items() if isinstance(value, str)}


@dataclass(frozen=True)
class TelegramSend:
    """The arguments of one `sendMessage` call."""

    chat_id: int | str
    text: str
    reply_markup: InlineKeyboardMarkup | None = None


def render(chat_id: str, message: OutboundMessage) -> list[TelegramSend]:
    """The message as sendMessage calls: long text split, the keyboard on the last part."""
    parts = split_text(message.text, MAX_TEXT) or ["…"]
    keyboard = keyboard_of(message) if message.choices else None
    target: int | str = int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id
    return [TelegramSend(target, part, keyboard if i == len(parts) - 1 else None)
            for i, part in enumerate(parts)]


def keyboard_of(message: OutboundMessage) -> InlineKeyboardMarkup:
    """One button per row; the callback data is the choice id (its number when the id is long)."""
    rows = []
    for number, choice in enumerate(message.choices, start=1):
        data = choice.id if len(choice.id.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES \
            else str(number)
        rows.append([InlineKeyboardButton(choice.label, callback_data=data)])
    return InlineKeyboardMarkup(rows)


def failure(error: Exception) -> SendFailure:
    """What a Bot API error means for the message being sent."""
    if isinstance(error, tg.RetryAfter):
        after = error.retry_after
        seconds = after.total_seconds() if isinstance(after, timedelta) else float(after)
        return SendFailure("transient", f"flood control: retry after {seconds:g} s", seconds)
    if isinstance(error, tg.Forbidden):
        return SendFailure("blocked", f"Telegram 403: {error.message}")
    if isinstance(error, tg.BadRequest | tg.ChatMigrated):
        return SendFailure("permanent", f"Telegram 400: {error}")
    # Timeouts, 5xx, connection errors, and a token being replaced: worth trying again.
    return SendFailure("transient", f"Telegram: {type(error).__name__}: {error}")
