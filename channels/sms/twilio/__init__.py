"""Twilio Programmable Messaging: the incoming-message webhook in, the Messages resource out.

Verification: `X-Twilio-Signature` is the Base64 HMAC-SHA1, keyed with the auth token, of the
public URL Twilio called followed by every POST parameter name and value, sorted by name.
The same endpoint receives status callbacks (`MessageStatus`), which become delivery reports.
A `STOP` (Twilio's `OptOutType`) marks the person as unsubscribed; `START` undoes it, and
an opt-in that is also an answer ("YES", one of Twilio's opt-in keywords) goes on to the
conversation as a message.
Media (MMS) arrive as `MediaUrl{N}` with `MediaContentType{N}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import mimetypes
from collections.abc import Iterable
from typing import Any

from channels import sms
from channels.base import (
    BlockChange,
    DeliveryReport,
    MediaRef,
    Parsed,
    PayloadRefused,
    SendFailure,
)
from channels.phone import phone_hints
from intake.messages import InboundMessage, OutboundMessage

CHANNEL = "sms-twilio"
SIGNATURE_HEADER = "X-Twilio-Signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
UNSUBSCRIBED = 21610  # "Attempt to send to unsubscribed recipient"
THROTTLED = {20429, 14107, 30001}
# Opt-in keywords that say nothing else; any other (Twilio's "YES") is also an answer.
OPT_IN_ONLY = {"START", "UNSTOP"}
STATUS = {"accepted": "sent", "queued": "sent", "sending": "sent", "sent": "sent",
          "delivered": "delivered", "read": "read", "undelivered": "failed", "failed": "failed"}


def signature(url: str, params: Iterable[tuple[str, str]], auth_token: str) -> str:
    """The signature Twilio sends for a request to `url` with these POST parameters."""
    pairs = sorted(set(params))
    payload = url + "".join(name + value for name, value in pairs)
    digest = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_valid(url: str, params: Iterable[tuple[str, str]], header: str | None,
                    auth_token: str) -> bool:
    """Whether the header signs this URL and these parameters with the auth token."""
    if not header or not auth_token:
        return False
    expected = signature(url, params, auth_token)
    return hmac.compare_digest(header.encode("utf-8"), expected.encode("utf-8"))


def parse(params: dict[str, str]) -> Parsed:
    """One incoming message or one status callback (form parameters, first value each)."""
    parsed = Parsed(CHANNEL)
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not sid:
        raise PayloadRefused("not a Twilio messaging request: no MessageSid")
    status = params.get("MessageStatus") or params.get("SmsStatus") or "received"
    if status != "received":
        code = params.get("ErrorCode")
        parsed.reports.append(DeliveryReport(
            sid, STATUS.get(status, status), f"Twilio error {code}" if code else None,
            blocked=code == str(UNSUBSCRIBED)))
        return parsed
    sender = params.get("From", "")
    if not sender.startswith("+"):
        parsed.ignored.append(f"message from a non-phone address ({sender.split(':')[0]})")
        return parsed
    opt_out = params.get("OptOutType", "").upper()
    if opt_out in ("STOP", "START"):
        parsed.blocks.append(BlockChange(sender, opt_out == "STOP"))
        if opt_out == "STOP" or params.get("Body", "").strip().upper() in OPT_IN_ONLY:
            return parsed
    media = _media(params)
    parsed.add(InboundMessage(channel=CHANNEL, sender=sender, provider_message_id=sid,
                              text=params.get("Body", ""), hints=phone_hints(sender)), media)
    return parsed


def _media(params: dict[str, str]) -> list[MediaRef]:
    try:
        count = int(params.get("NumMedia") or 0)
    except ValueError as error:
        raise PayloadRefused("NumMedia is not a number") from error
    found = []
    for n in range(min(count, 10)):
        url = params.get(f"MediaUrl{n}")
        if not url:
            raise PayloadRefused(f"NumMedia is {count} but MediaUrl{n} is missing")
        media_type = params.get(f"MediaContentType{n}")
        extension = mimetypes.guess_extension(media_type or "") or ""
        found.append(MediaRef(url, media_type, f"{url.rstrip('/').rsplit('/', 1)[-1]}{extension}"))
    return found


def render(message: OutboundMessage, max_segments: int, number_hint: str) -> list[str]:
    """The message as SMS bodies within the segment budget."""
    return sms.render(message, max_segments, number_hint)


def send_params(to: str, body: str, sender: str, status_callback: str | None) -> dict[str, str]:
    """The form of one `POST /Accounts/{sid}/Messages.json`; a sender starting with MG is a
    Messaging Service."""
    params = {"To": to, "Body": body}
    params["MessagingServiceSid" if sender.startswith("MG") else "From"] = sender
    if status_callback:
        params["StatusCallback"] = status_callback
    return params


def failure(status: int, body: Any) -> SendFailure:
    """What an error answer of the Messages resource means for the message."""
    code = body.get("code") if isinstance(body, dict) else None
    text = f"Twilio {status} ({code}): {body.get('message', '')}" if isinstance(body, dict) \
        else f"Twilio {status}"
    if code == UNSUBSCRIBED:
        return SendFailure("blocked", text)
    if code in THROTTLED or status == 429 or status >= 500:
        return SendFailure("transient", text)
    return SendFailure("permanent", text)
