"""Africa's Talking SMS: the incoming-message callback in, `POST /version1/messaging` out.

Africa's Talking signs nothing, so the gateway checks a shared secret that is part of the
callback URL configured on their dashboard (`?secret=…`) and, optionally, the caller's address.
An incoming message has `from`, `to`, `text`, `id`, `date`, `linkId`, `networkCode`; a delivery
report (when pointed at the same URL) has `id`, `status`, `phoneNumber`, `failureReason`.
The send answer lists one recipient with its `statusCode` (100-102: accepted).
"""

from __future__ import annotations

from typing import Any

from channels import sms
from channels.base import DeliveryReport, Parsed, PayloadRefused, SendFailure
from channels.phone import phone_hints
from intake.messages import InboundMessage, OutboundMessage

CHANNEL = "sms-africastalking"
SECRET_PARAMETER = "secret"
ACCEPTED = {100, 101, 102}
BLOCKED = {406, 409}  # UserInBlacklist, DoNotDisturbRejection
TRANSIENT = {405, 500, 501, 502}  # InsufficientBalance, InternalServerError, Gateway errors
STATUS = {"Success": "delivered", "Sent": "sent", "Submitted": "sent", "Buffered": "sent",
          "Queued": "sent", "Rejected": "failed", "Failed": "failed",
          "AbsentSubscriber": "failed", "Expired": "failed"}
BLOCKED_REASONS = {"UserInBlackList", "UserInBlacklist", "DoNotDisturbRejection"}


def parse(params: dict[str, str]) -> Parsed:
    """One incoming message or one delivery report (form parameters)."""
    parsed = Parsed(CHANNEL)
    message_id = params.get("id")
    if not message_id:
        raise PayloadRefused("not an Africa's Talking callback: no id")
    if "from" not in params and "status" in params:
        reason = params.get("failureReason")
        parsed.reports.append(DeliveryReport(
            message_id, STATUS.get(params["status"], params["status"].lower()),
            f"Africa's Talking: {reason}" if reason else None,
            blocked=reason in BLOCKED_REASONS))
        return parsed
    sender = params.get("from", "")
    if not sender.startswith("+") or "text" not in params:
        raise PayloadRefused("incoming SMS without a phone number or text")
    parsed.add(InboundMessage(channel=CHANNEL, sender=sender, provider_message_id=message_id,
                              text=params["text"], hints=phone_hints(sender)))
    return parsed


def render(message: OutboundMessage, max_segments: int, number_hint: str) -> list[str]:
    """The message as SMS texts within the segment budget."""
    return sms.render(message, max_segments, number_hint)


def send_params(username: str, to: str, text: str, sender: str) -> dict[str, str]:
    """The form of one send; without a sender id the account's default is used."""
    params = {"username": username, "to": to, "message": text}
    if sender:
        params["from"] = sender
    return params


def outcome(status: int, body: Any) -> str:
    """The message id of an accepted send, or raise the SendFailure the answer means."""
    if status == 429 or status >= 500:
        raise SendFailure("transient", f"Africa's Talking {status}")
    data = body.get("SMSMessageData") if isinstance(body, dict) else None
    if status >= 400 or not isinstance(data, dict):
        raise SendFailure("permanent", f"Africa's Talking {status}: {str(body)[:200]}")
    recipients = data.get("Recipients") or []
    if not recipients:
        raise SendFailure("permanent", f"Africa's Talking: {data.get('Message', 'no recipient')}")
    recipient = recipients[0]
    code = int(recipient.get("statusCode", 0))
    if code in ACCEPTED:
        return str(recipient.get("messageId", ""))
    text = f"Africa's Talking {code}: {recipient.get('status', '')}"
    if code in BLOCKED:
        raise SendFailure("blocked", text)
    raise SendFailure("transient" if code in TRANSIENT else "permanent", text)
