"""WhatsApp Cloud API: `messages` webhooks in, `/{phone_number_id}/messages` calls out.

Verification: `X-Hub-Signature-256` is "sha256=" and the HMAC-SHA256 of the raw body with the
app secret; the GET handshake echoes `hub.challenge` when `hub.verify_token` matches.

One webhook may carry several messages and delivery statuses. Text, reply-button and list
answers (their id is the choice id) and images, documents, audio and video (a media id to
fetch) become inbound messages keyed by their `wamid`; stickers, reactions, locations and
contact cards are ignored. Choices go out as reply buttons (up to 3 whose labels fit 20
characters), as a list (up to 10: row title 24, description 72) or as a numbered text beyond.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
from datetime import UTC, datetime
from typing import Any

from channels.base import (
    DeliveryReport,
    MediaRef,
    Parsed,
    PayloadRefused,
    SendFailure,
    shorten,
    split_text,
)
from channels.phone import phone_hints
from intake.messages import InboundMessage, OutboundMessage

CHANNEL = "whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_TEXT = 4096
MAX_BODY = 1024
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_ROWS = 10
MAX_ROW_TITLE = 24
MAX_ROW_DESCRIPTION = 72
MAX_ID = 200
MEDIA_KINDS = ("image", "document", "audio", "video")
# Meta's error codes: https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
OUTSIDE_WINDOW = {131047}
UNREACHABLE = {131026, 131050}  # undeliverable (blocked, not on WhatsApp), opted out
THROTTLED = {4, 80007, 130429, 131048, 131056}
UNAVAILABLE = {1, 2, 131000, 131016, 133004}


def signature_valid(body: bytes, header: str | None, app_secret: str) -> bool:
    """Whether the header is the HMAC-SHA256 of the raw body with the app secret."""
    if not header or not app_secret or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header.removeprefix("sha256=").lower().encode(), expected.encode())


def sign(body: bytes, app_secret: str) -> str:
    """The signature header Meta sends with a body (for tests and local tools)."""
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def parse(data: Any) -> Parsed:
    """A `whatsapp_business_account` webhook: its messages and statuses."""
    if not isinstance(data, dict) or data.get("object") != "whatsapp_business_account":
        raise PayloadRefused("not a WhatsApp Business Account webhook")
    parsed = Parsed(CHANNEL)
    try:
        for entry in data["entry"]:
            for change in entry["changes"]:
                if change.get("field") != "messages":
                    parsed.ignored.append(f"change of field {change.get('field')}")
                    continue
                _value(parsed, change["value"])
    except PayloadRefused:
        raise
    except (KeyError, TypeError, AttributeError) as error:
        raise PayloadRefused(f"malformed WhatsApp webhook: missing {error}") from error
    except (ValueError, OverflowError, OSError) as error:  # a timestamp that is not one
        raise PayloadRefused(f"malformed WhatsApp webhook: {error}") from error
    return parsed


def _value(parsed: Parsed, value: dict[str, Any]) -> None:
    names = {c.get("wa_id"): (c.get("profile") or {}).get("name")
             for c in value.get("contacts") or []}
    for message in value.get("messages") or []:
        _message(parsed, message, names.get(message.get("from")))
    for status in value.get("statuses") or []:
        errors = status.get("errors") or [{}]
        code = errors[0].get("code")
        detail = f"WhatsApp ({code}) {errors[0].get('title', '')}".strip() if code else None
        parsed.reports.append(DeliveryReport(_string(status["id"]), _string(status["status"]),
                                             detail, blocked=code in UNREACHABLE))


def _message(parsed: Parsed, message: dict[str, Any], name: str | None) -> None:
    kind = message["type"]
    text, media = "", []
    if kind == "text":
        text = message["text"]["body"]
    elif kind == "interactive":
        reply = message["interactive"]
        answer = reply.get("button_reply") or reply.get("list_reply")
        if not answer:
            parsed.ignored.append(f"interactive reply of type {reply.get('type')}")
            return
        text = answer["id"]
    elif kind == "button":
        text = message["button"].get("payload") or message["button"].get("text", "")
    elif kind in MEDIA_KINDS:
        item = message[kind]
        text = item.get("caption", "")
        media = [MediaRef(item["id"], item.get("mime_type"),
                          item.get("filename") or _name(kind, item), None)]
    else:
        parsed.ignored.append(f"message of type {kind}")
        return
    sender = _string(message["from"])
    if not isinstance(text, str):
        raise PayloadRefused("a message whose text is not text")
    hints = phone_hints(sender)
    if name and isinstance(name, str):
        hints["name"] = name
    parsed.add(InboundMessage(
        channel=CHANNEL, sender=sender, provider_message_id=_string(message["id"]), text=text,
        received_at=datetime.fromtimestamp(int(message["timestamp"]), UTC),
        hints=hints), media)


def _string(value: Any) -> str:
    """An id or a status: a non-empty string, or the payload is not Meta's."""
    if not isinstance(value, str) or not value:
        raise PayloadRefused(f"expected a non-empty string, found {type(value).__name__}")
    return value


def _name(kind: str, item: dict[str, Any]) -> str:
    extension = mimetypes.guess_extension((item.get("mime_type") or "").split(";")[0])
    return f"{kind}-{str(item['id'])[-12:]}{extension or ''}"


# -- sending ------------------------------------------------------------------------------


def render(to: str, message: OutboundMessage, list_button: str) -> list[dict[str, Any]]:
    """The message as Cloud API message objects, sent in order."""
    choices = message.choices
    if not choices:
        return [_text(to, part) for part in split_text(message.text, MAX_TEXT) or ["…"]]
    if len(choices) > MAX_ROWS:
        numbered = "\n".join(f"{n}. {c.label}" for n, c in enumerate(choices, start=1))
        return [_text(to, part) for part in split_text(f"{message.text}\n{numbered}", MAX_TEXT)]
    head, body = _head_and_body(message.text)
    buttons = len(choices) <= MAX_BUTTONS and all(
        len(c.label) <= MAX_BUTTON_TITLE for c in choices)
    action = _buttons(message) if buttons else _list(message, list_button)
    interactive = {"type": "button" if buttons else "list", "body": {"text": body},
                   "action": action}
    return [*(_text(to, part) for part in head), _envelope(to, "interactive", interactive)]


def _head_and_body(text: str) -> tuple[list[str], str]:
    """Text that does not fit an interactive body goes first as plain messages."""
    if len(text) <= MAX_BODY:
        return [], text or "…"
    pieces = split_text(text, MAX_BODY)
    return split_text("\n".join(pieces[:-1]), MAX_TEXT), pieces[-1]


def _choice_id(choice_id: str, number: int) -> str:
    return choice_id if len(choice_id) <= MAX_ID else str(number)


def _buttons(message: OutboundMessage) -> dict[str, Any]:
    return {"buttons": [{"type": "reply", "reply": {"id": _choice_id(c.id, n), "title": c.label}}
                        for n, c in enumerate(message.choices, start=1)]}


def _list(message: OutboundMessage, list_button: str) -> dict[str, Any]:
    rows = []
    for number, choice in enumerate(message.choices, start=1):
        row = {"id": _choice_id(choice.id, number),
               "title": shorten(choice.label, MAX_ROW_TITLE)}
        if len(choice.label) > MAX_ROW_TITLE:
            row["description"] = shorten(choice.label, MAX_ROW_DESCRIPTION)
        rows.append(row)
    return {"button": shorten(list_button, MAX_BUTTON_TITLE), "sections": [{"rows": rows}]}


def _text(to: str, body: str) -> dict[str, Any]:
    return _envelope(to, "text", {"body": body, "preview_url": False})


def _envelope(to: str, kind: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
            "type": kind, kind: content}


def template(to: str, name: str, language: str, parameters: tuple[str, ...] = ()
             ) -> dict[str, Any]:
    """An approved template message (outside the 24-hour window)."""
    content: dict[str, Any] = {"name": name, "language": {"code": language}}
    if parameters:
        content["components"] = [{"type": "body", "parameters": [
            {"type": "text", "text": p} for p in parameters]}]
    return _envelope(to, "template", content)


def failure(status: int, body: Any) -> SendFailure:
    """What an error answer of the messages endpoint means for the message."""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    text = f"WhatsApp {status} ({code}): {error.get('message', '')}" if isinstance(error, dict) \
        else f"WhatsApp {status}"
    if code in OUTSIDE_WINDOW:
        return SendFailure("window", text)
    if code in UNREACHABLE:
        return SendFailure("blocked", text)
    if code in THROTTLED or code in UNAVAILABLE or status == 429 or status >= 500:
        return SendFailure("transient", text)
    return SendFailure("permanent", text)
