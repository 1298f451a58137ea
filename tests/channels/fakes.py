"""Local stand-ins for the providers' APIs, speaking their documented formats on 127.0.0.1.

One aiohttp server answers for all four under their own prefixes (the `*_API_BASE`
settings point there): Telegram's Bot API (sendMessage, answerCallbackQuery, getFile, file
downloads, setWebhook, deleteWebhook, getUpdates), WhatsApp Cloud API (messages, media lookup
and download), Twilio (Messages.json, media) and Africa's Talking (version1/messaging). It
checks the credentials each API requires, records what reached it, and answers scripted
errors when a test queues them.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TELEGRAM_TOKEN = "7000000001:AAH-test-token-of-the-bot"
WHATSAPP_TOKEN = "EAAG-test-access-token"
WHATSAPP_PHONE_ID = "106540352242922"
TWILIO_SID = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
TWILIO_TOKEN = "twilio-test-auth-token"
AT_KEY = "atsk_test_api_key"


@dataclass
class Delivered:
    """One message as it reached a provider: who to, the text, and the choices it offered."""

    channel: str
    to: str
    text: str
    choices: list[tuple[str, str]] = field(default_factory=list)  # (id sent back, label)
    raw: dict[str, Any] = field(default_factory=dict)
    provider_id: str = ""  # the id the provider answered with (delivery reports name it)


@dataclass
class FakeProviders:
    """State shared by the fake APIs."""

    delivered: list[Delivered] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (channel, method or path)
    failures: dict[str, deque[tuple[int, Any]]] = field(
        default_factory=lambda: defaultdict(deque))
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # reference: data, type
    updates: list[dict[str, Any]] = field(default_factory=list)  # for getUpdates
    url: str = ""
    ids: Any = field(default_factory=lambda: itertools.count(1))

    def fail_next(self, channel: str, status: int, body: Any) -> None:
        """The next send on this channel gets this error answer."""
        self.failures[channel].append((status, body))

    def to(self, channel: str, recipient: str) -> list[Delivered]:
        """What reached one person on one channel, in order."""
        return [d for d in self.delivered if d.channel == channel and d.to == recipient]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/telegram/bot{token}/{method}", self.telegram)
        app.router.add_get("/telegram/file/bot{token}/{path:.+}", self.telegram_file)
        app.router.add_post("/whatsapp/{phone}/messages", self.whatsapp_send)
        app.router.add_get("/whatsapp/download/{media}", self.whatsapp_download)
        app.router.add_get("/whatsapp/{media}", self.whatsapp_media)
        app.router.add_post("/twilio/2010-04-01/Accounts/{sid}/Messages.json", self.twilio_send)
        app.router.add_get("/twilio/2010-04-01/Accounts/{sid}/Messages/{mm}/Media/{me}",
                           self.twilio_media)
        app.router.add_post("/africastalking/version1/messaging", self.africastalking_send)
        return app

    def _scripted(self, channel: str) -> tuple[int, Any] | None:
        queue = self.failures.get(channel)
        return queue.popleft() if queue else None

    # -- Telegram -------------------------------------------------------------------------------

    async def telegram(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TELEGRAM_TOKEN:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        form = dict(await request.post()) if request.can_read_body else {}
        if request.content_type == "application/json":
            form = await request.json()
        self.calls.append(("telegram", method))
        handler = getattr(self, f"_telegram_{method}", None)
        if handler is None:
            return web.json_response({"ok": False, "error_code": 404,
                                      "description": "Not Found"}, status=404)
        if method == "sendMessage" and (scripted := self._scripted("telegram")):
            return web.json_response(scripted[1], status=scripted[0])
        return web.json_response({"ok": True, "result": handler(form)})

    def _telegram_sendMessage(self, form: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        markup = json.loads(form["reply_markup"]) if form.get("reply_markup") else {}
        choices = [(button["callback_data"], button["text"])
                   for row in markup.get("inline_keyboard", []) for button in row]
        self.delivered.append(Delivered("telegram", str(form["chat_id"]), str(form["text"]),
                                        choices, dict(form)))
        return {"message_id": next(self.ids), "date": int(time.time()),
                "chat": {"id": int(form["chat_id"]), "type": "private"}, "text": form["text"]}

    def _telegram_answerCallbackQuery(self, form: dict[str, Any]) -> bool:  # noqa: N802
        return True

    def _telegram_setWebhook(self, form: dict[str, Any]) -> bool:  # noqa: N802
        self.calls.append(("telegram", f"setWebhook {form.get('url')} "
                                       f"secret={form.get('secret_token')}"))
        return True

    def _telegram_deleteWebhook(self, form: dict[str, Any]) -> bool:  # noqa: N802
        return True

    def _telegram_getUpdates(self, form: dict[str, Any]) -> list[Any]:  # noqa: N802
        offset = int(form.get("offset") or 0)
        return [u for u in self.updates if u["update_id"] >= offset]

    def _telegram_getFile(self, form: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        data, _ = self.files[str(form["file_id"])]
        return {"file_id": form["file_id"], "file_unique_id": "u" + str(form["file_id"])[-6:],
                "file_size": len(data), "file_path": f"documents/{form['file_id']}"}

    async def telegram_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TELEGRAM_TOKEN:
            return web.Response(status=401)
        reference = request.match_info["path"].rsplit("/", 1)[-1]
        if scripted := self._scripted("telegram-file"):
            return web.Response(status=scripted[0], text=str(scripted[1]))
        data, media_type = self.files[reference]
        return web.Response(body=data, content_type=media_type)

    # -- WhatsApp -------------------------------------------------------------------------------

    def _whatsapp_authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {WHATSAPP_TOKEN}"

    async def whatsapp_send(self, request: web.Request) -> web.Response:
        if not self._whatsapp_authorised(request) or \
                request.match_info["phone"] != WHATSAPP_PHONE_ID:
            return web.json_response({"error": {"code": 190, "message": "Invalid OAuth"}},
                                     status=401)
        payload = await request.json()
        self.calls.append(("whatsapp", payload["type"]))
        if scripted := self._scripted("whatsapp"):
            return web.json_response(scripted[1], status=scripted[0])
        wamid = f"wamid.OUT{next(self.ids):08d}"
        self.delivered.append(whatsapp_delivered(payload, wamid))
        return web.json_response({"messaging_product": "whatsapp",
                                  "contacts": [{"input": payload["to"], "wa_id": payload["to"]}],
                                  "messages": [{"id": wamid}]})

    async def whatsapp_media(self, request: web.Request) -> web.Response:
        if not self._whatsapp_authorised(request):
            return web.Response(status=401)
        media = request.match_info["media"]
        if media not in self.files:
            return web.json_response({"error": {"code": 100, "message": "not found"}},
                                     status=404)
        data, media_type = self.files[media]
        return web.json_response({"messaging_product": "whatsapp", "id": media,
                                  "url": f"{self.url}/whatsapp/download/{media}",
                                  "mime_type": media_type, "file_size": len(data),
                                  "sha256": "x"})

    async def whatsapp_download(self, request: web.Request) -> web.Response:
        if not self._whatsapp_authorised(request):
            return web.Response(status=401)
        if scripted := self._scripted("whatsapp-file"):
            return web.Response(status=scripted[0], text=str(scripted[1]))
        data, media_type = self.files[request.match_info["media"]]
        return web.Response(body=data, content_type=media_type)

    # -- Twilio ---------------------------------------------------------------------------------

    def _twilio_authorised(self, request: web.Request) -> bool:
        import base64

        expected = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}" and \
            request.match_info["sid"] == TWILIO_SID

    async def twilio_send(self, request: web.Request) -> web.Response:
        if not self._twilio_authorised(request):
            return web.json_response({"code": 20003, "message": "Authenticate",
                                      "status": 401}, status=401)
        form = dict(await request.post())
        self.calls.append(("sms-twilio", "Messages.json"))
        if scripted := self._scripted("sms-twilio"):
            return web.json_response(scripted[1], status=scripted[0])
        sid = f"SM{next(self.ids):032x}"
        self.delivered.append(Delivered("sms-twilio", str(form["To"]), str(form["Body"]),
                                        raw={k: str(v) for k, v in form.items()},
                                        provider_id=sid))
        return web.json_response({"sid": sid, "status": "queued",
                                  "to": form["To"], "body": form["Body"]}, status=201)

    async def twilio_media(self, request: web.Request) -> web.Response:
        if not self._twilio_authorised(request):
            return web.Response(status=401)
        if scripted := self._scripted("twilio-file"):
            return web.Response(status=scripted[0], text=str(scripted[1]))
        data, media_type = self.files[request.match_info["me"]]
        return web.Response(body=data, content_type=media_type)

    # -- Africa's Talking ---------------------------------------------------------------------

    async def africastalking_send(self, request: web.Request) -> web.Response:
        if request.headers.get("apiKey") != AT_KEY:
            return web.Response(status=401, text="The supplied authentication is invalid")
        form = dict(await request.post())
        self.calls.append(("sms-africastalking", "messaging"))
        if scripted := self._scripted("sms-africastalking"):
            return web.json_response(scripted[1], status=scripted[0])
        message_id = f"ATXid_{next(self.ids)}"
        self.delivered.append(Delivered("sms-africastalking", str(form["to"]),
                                        str(form["message"]),
                                        raw={k: str(v) for k, v in form.items()},
                                        provider_id=message_id))
        return web.json_response({"SMSMessageData": {
            "Message": "Sent to 1/1 Total Cost: KES 0.8000",
            "Recipients": [{"statusCode": 101, "number": form["to"], "status": "Success",
                            "cost": "KES 0.8000", "messageId": message_id}]}},
            status=201)


def whatsapp_delivered(payload: dict[str, Any], wamid: str = "") -> Delivered:
    """What a person sees of one Cloud API message object (`wamid`: the id Meta gave it)."""
    kind = payload["type"]
    if kind == "text":
        return Delivered("whatsapp", payload["to"], payload["text"]["body"], raw=payload,
                         provider_id=wamid)
    if kind == "template":
        return Delivered("whatsapp", payload["to"], f"[template {payload['template']['name']}]",
                         raw=payload, provider_id=wamid)
    interactive = payload["interactive"]
    if interactive["type"] == "button":
        choices = [(b["reply"]["id"], b["reply"]["title"])
                   for b in interactive["action"]["buttons"]]
    else:
        choices = [(row["id"], row["title"]) for section in interactive["action"]["sections"]
                   for row in section["rows"]]
    return Delivered("whatsapp", payload["to"], interactive["body"]["text"], choices, payload,
                     wamid)
