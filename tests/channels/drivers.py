"""How a person's phone reaches the gateway on each channel: the provider's payloads, signed
as the provider signs them, for typed text and for pressed buttons."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from channels import whatsapp
from channels.sms import twilio
from tests.channels.fakes import Delivered

ROOT = Path(__file__).parent.parent.parent
PUBLIC_URL = "https://intake.example.org"
TELEGRAM_SECRET = "tg-webhook-secret-0123456789"
WHATSAPP_APP_SECRET = "wa-app-secret-abcdef"
WHATSAPP_VERIFY_TOKEN = "wa-verify-token"
AT_SECRET = "at-callback-secret-42"
_counter = itertools.count(1)


class Driver:
    """One channel, as the provider calls the gateway."""

    channel: str
    folder: str
    path: str
    query: str = ""
    content_type: str = "application/json"
    buttons = False  # whether the person answers choices by pressing a button

    @property
    def path_qs(self) -> str:
        return self.path + self.query

    def fixture(self, name: str, api_base: str = "") -> Any:
        text = (ROOT / self.folder / "fixtures" / f"{name}.json").read_text(encoding="utf-8")
        return json.loads(text.replace("{TWILIO_API_BASE}", api_base))

    def encode(self, payload: Any) -> bytes:
        if self.content_type == "application/json":
            return json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return urlencode(payload).encode("utf-8")

    unreadable = 200  # the answer to an authentic payload the gateway cannot read

    def sign(self, body: bytes) -> dict[str, str]:
        """The headers that make a body authentic."""
        return {}

    def forge(self, body: bytes) -> dict[str, str]:
        """Headers with a wrong signature."""
        return {}

    def forged(self, body: bytes) -> tuple[str, dict[str, str]]:
        """Path and headers of a request with a wrong signature or secret."""
        return self.path_qs, self.forge(body)

    def unsigned(self, body: bytes) -> tuple[str, dict[str, str]]:
        """Path and headers of a request without any signature or secret."""
        return self.path_qs, {}

    def text(self, sender: str, text: str) -> Any:
        """A payload carrying one typed message."""
        raise NotImplementedError

    def answer(self, sender: str, line: str, last: Delivered | None) -> Any:
        """A typed line, or the button the line's number stands for when buttons are shown."""
        if self.buttons and last is not None and last.choices and line.isdigit() and \
                1 <= int(line) <= len(last.choices):
            return self.press(sender, last.choices[int(line) - 1][0])
        return self.text(sender, line)

    def press(self, sender: str, choice_id: str) -> Any:
        raise NotImplementedError


class TelegramDriver(Driver):
    channel = "telegram"
    folder = "channels/telegram"
    path = "/webhooks/telegram"
    buttons = True

    def sign(self, body: bytes) -> dict[str, str]:
        return {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}

    def forge(self, body: bytes) -> dict[str, str]:
        return {"X-Telegram-Bot-Api-Secret-Token": "guessed"}

    def _user(self, sender: str) -> dict[str, Any]:
        return {"id": int(sender), "is_bot": False, "first_name": "Jane", "last_name": "Mwamba",
                "username": "jane_m", "language_code": "en"}

    def text(self, sender: str, text: str) -> Any:
        return {"update_id": 900000 + next(_counter), "message": {
            "message_id": next(_counter), "from": self._user(sender), "date": int(time.time()),
            "chat": {"id": int(sender), "type": "private", "first_name": "Jane"}, "text": text}}

    def press(self, sender: str, choice_id: str) -> Any:
        return {"update_id": 900000 + next(_counter), "callback_query": {
            "id": f"cq{next(_counter)}", "from": self._user(sender), "chat_instance": "42",
            "data": choice_id, "message": {
                "message_id": next(_counter), "date": int(time.time()),
                "chat": {"id": int(sender), "type": "private"}, "text": "…"}}}


class WhatsAppDriver(Driver):
    channel = "whatsapp"
    folder = "channels/whatsapp"
    path = "/webhooks/whatsapp"
    buttons = True

    def sign(self, body: bytes) -> dict[str, str]:
        return {"X-Hub-Signature-256": whatsapp.sign(body, WHATSAPP_APP_SECRET)}

    def forge(self, body: bytes) -> dict[str, str]:
        return {"X-Hub-Signature-256": whatsapp.sign(body, "not-the-app-secret")}

    def _webhook(self, sender: str, message: dict[str, Any]) -> Any:
        return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398",
                "changes": [{"field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881",
                                 "phone_number_id": "106540352242922"},
                    "contacts": [{"profile": {"name": "Jane Mwamba"}, "wa_id": sender}],
                    "messages": [{"from": sender, "id": f"wamid.IN{next(_counter):010d}",
                                  "timestamp": str(int(time.time())), **message}]}}]}]}

    def text(self, sender: str, text: str) -> Any:
        return self._webhook(sender, {"type": "text", "text": {"body": text}})

    def press(self, sender: str, choice_id: str) -> Any:
        return self._webhook(sender, {"type": "interactive", "interactive": {
            "type": "button_reply", "button_reply": {"id": choice_id, "title": "…"}}})


class TwilioDriver(Driver):
    channel = "sms-twilio"
    folder = "channels/sms/twilio"
    path = "/webhooks/sms/twilio"
    content_type = "application/x-www-form-urlencoded"
    unreadable = 400

    def _pairs(self, body: bytes) -> list[tuple[str, str]]:
        from urllib.parse import parse_qsl

        return parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)

    def sign(self, body: bytes) -> dict[str, str]:
        from tests.channels.fakes import TWILIO_TOKEN

        return {"X-Twilio-Signature": twilio.signature(PUBLIC_URL + self.path_qs,
                                                       self._pairs(body), TWILIO_TOKEN)}

    def forge(self, body: bytes) -> dict[str, str]:
        return {"X-Twilio-Signature": twilio.signature(PUBLIC_URL + self.path_qs,
                                                       self._pairs(body), "wrong-token")}

    def text(self, sender: str, text: str) -> Any:
        sid = f"SM{next(_counter):032x}"
        return {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "SmsStatus": "received",
                "AccountSid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "From": sender,
                "To": "+243800000100", "Body": text, "NumMedia": "0", "NumSegments": "1",
                "ApiVersion": "2010-04-01"}


class AfricasTalkingDriver(Driver):
    channel = "sms-africastalking"
    folder = "channels/sms/africastalking"
    path = "/webhooks/sms/africastalking"
    query = f"?secret={AT_SECRET}"
    content_type = "application/x-www-form-urlencoded"
    unreadable = 400

    def forged(self, body: bytes) -> tuple[str, dict[str, str]]:
        return self.path + "?secret=guessed", {}

    def unsigned(self, body: bytes) -> tuple[str, dict[str, str]]:
        return self.path, {}

    def text(self, sender: str, text: str) -> Any:
        return {"date": "2026-01-01T09:00:00.000Z", "from": sender,
                "id": f"ATXid_in{next(_counter)}", "linkId": "", "text": text, "to": "22384",
                "networkCode": "63902"}


DRIVERS = [TelegramDriver(), WhatsAppDriver(), TwilioDriver(), AfricasTalkingDriver()]
SENDERS = {"telegram": "5550000001", "whatsapp": "243970000001",
           "sms-twilio": "+243970000001", "sms-africastalking": "+254711000001"}
