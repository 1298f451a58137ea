"""The web chat: the "web" channel, for people who open the mechanism's page in a browser.

It works without JavaScript: a form POST to /chat hands the message in and redirects back to
the page, which shows the whole transcript from the database. With JavaScript, chat.js uses
the JSON endpoints under /chat/api/ and never reloads the page. The browser is identified by
a random token in a cookie; the token is the sender.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from gateway.evidence import AttachmentRefused
from gateway.runtime import Runtime
from gateway.service import Delivered, now_utc
from gateway.web import RUNTIME
from intake.catalog import RIGHT_TO_LEFT, Catalogs
from intake.messages import Attachment, InboundMessage, OutboundMessage
from storage import repository
from storage.db import transaction
from storage.models import MAX_ROW_ID, Conversation, OutboxMessage

CHANNEL = "web"
COOKIE = "gateway_chat"
COOKIE_MAX_AGE = 365 * 24 * 3600
TOKEN = re.compile(r"[A-Za-z0-9_-]{32,128}")
CLIENT_ID = re.compile(r"[A-Za-z0-9-]{8,64}")
MAX_TEXT_BYTES = 200 * 1024
# Half of a UTF-16 pair on its own (JSON.stringify's rendering of a broken emoji): not text.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Opening the page again within this time shows the transcript; later, a welcome back.
RESUME_AFTER = timedelta(minutes=30)
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

# The page's own words (the conversation's words are in the engine's catalogs).
# The page's own words are catalog messages `web.<key>` (intake/locale/<lang>/.../intake.po).
PAGE_WORDS = ("title", "intro", "skip", "conversation", "bot", "you", "message", "send", "attach",
              "attach_hint", "enter_hint", "too_long", "file_too_large", "no_file", "bad_request",
              "cross_origin", "network", "file_type", "too_fast")

Handler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


def setup_chat(app: web.Application) -> None:
    """Register the chat page, its form and its JSON endpoints."""
    app.router.add_get("/chat", chat_page, name="chat")
    app.router.add_post("/chat", chat_form)
    app.router.add_get("/chat/api/messages", api_messages_after)
    app.router.add_post("/chat/api/messages", api_send)
    app.router.add_post("/chat/api/attachments", api_attach)


class Refused(Exception):
    """A request the chat answers with an error; `text_id` names the words in PAGE_WORDS."""

    def __init__(self, status: int, text_id: str, retry_after: float = 0) -> None:
        super().__init__(text_id)
        self.status = status
        self.text_id = text_id
        self.retry_after = retry_after


def check_rate(request: web.Request, token: str | None) -> None:
    """Refused (429) when this address, or this browser sending a message (`token`), is over
    its limit (GATEWAY_CHAT_*): a flood is turned away before anything is stored."""
    from gateway.web.staff_auth import client_address  # it imports this module

    runtime = request.app[RUNTIME]
    settings = runtime.settings
    wait = runtime.throttle.admit(f"chat-address:{client_address(request)}",
                                  settings.chat_requests_per_minute_per_address)
    if not wait and token is not None:
        wait = runtime.throttle.admit(f"chat-sender:{token}", settings.chat_messages_per_minute)
    if wait:
        raise Refused(429, "too_fast", wait)


def retry_after(refused: Refused) -> dict[str, str]:
    """The Retry-After header of a refusal that says when to try again."""
    return {"Retry-After": str(math.ceil(refused.retry_after))} if refused.retry_after else {}


# -- what the page shows ----------------------------------------------------------------


@dataclass
class Line:
    """One message of the transcript as the page shows it."""

    side: str  # "in" (the person) | "out" (the mechanism)
    text: str
    direction: str = "ltr"
    attachments: list[str] = field(default_factory=list)
    choices: list[dict[str, str]] = field(default_factory=list)  # buttons, on the open turn


@dataclass
class Transcript:
    """Everything this browser's conversations said, and the newest outbox id shown."""

    lines: list[Line]
    last_id: int
    language: str | None


def page_text(catalogs: Catalogs, language: str, settings_max_bytes: int) -> dict[str, str]:
    """The page's words in a language (falling back like every message), sizes filled in."""
    megabytes = f"{settings_max_bytes / 1024 / 1024:g}"
    return {key: catalogs.text(language, f"web.{key}", megabytes=megabytes)
            for key in PAGE_WORDS}


def direction_of(language: str) -> str:
    """'rtl' for a right-to-left language."""
    return "rtl" if language in RIGHT_TO_LEFT else "ltr"


def transcript_lines(rows: list[tuple[str, Any, dict[str, Any]]]) -> list[Line]:
    """Both sides in order; a button press shows its label, as the person saw it."""
    last_in = max((i for i, (side, _, _) in enumerate(rows) if side == "in"), default=-1)
    offered: dict[str, str] = {}
    lines = []
    for index, (side, _, content) in enumerate(rows):
        if side == "in":
            text = content.get("text") or ""
            files = [a.get("filename", "") for a in content.get("attachments") or []]
            lines.append(Line("in", offered.get(text, text), "auto", attachments=files))
            offered = {}
            continue
        choices = list(content.get("choices") or [])
        if choices:
            offered = {c["id"]: c["label"] for c in choices}
        if content.get("text") or choices and index > last_in:
            lines.append(Line("out", content.get("text") or "", content.get("direction", "ltr"),
                              choices=choices if index > last_in else []))
    return lines


def load_transcript(runtime: Runtime, sender: str) -> Transcript:
    """The transcript of this browser's conversations; what was pending is now delivered."""
    with transaction(runtime.sessions) as session:
        conversations = list(session.scalars(
            select(Conversation).where(repository.by_sender(session, Conversation, CHANNEL,
                                                            sender)).order_by(Conversation.id)))
        ids = [c.id for c in conversations]
        rows = repository.transcript(session, ids)
        outbox = list(session.scalars(select(OutboxMessage).where(
            OutboxMessage.conversation_id.in_(ids)).order_by(OutboxMessage.id)))
    deliver_pending(runtime, outbox)
    return Transcript(transcript_lines(rows), outbox[-1].id if outbox else 0,
                      conversations[-1].language if conversations else None)


def open_conversation(runtime: Runtime, sender: str, hints: dict[str, str]) -> None:
    """Greet a new browser, or welcome back one that was away; a reload just shows the page."""
    with transaction(runtime.sessions) as session:
        updated_at = session.scalar(
            select(Conversation.updated_at).where(repository.by_sender(
                session, Conversation, CHANNEL, sender))
            .order_by(Conversation.id.desc()).limit(1))
    if updated_at is None or now_utc() - updated_at > RESUME_AFTER:
        runtime.intake.start(CHANNEL, sender, hints)


# -- identity, origin, reading requests ---------------------------------------------------


def sender_of(request: web.Request) -> str | None:
    """The browser's token from its cookie, if it holds a well-formed one."""
    token = request.cookies.get(COOKIE, "")
    return token if TOKEN.fullmatch(token) else None


def remember(response: web.StreamResponse, request: web.Request, token: str) -> None:
    """Set the identity cookie (again, so it lives a year from the last visit)."""
    secure = request.app[RUNTIME].settings.public_url.startswith("https")
    response.set_cookie(COOKIE, token, max_age=COOKIE_MAX_AGE, path="/chat", httponly=True,
                        samesite="Lax", secure=secure)


def same_origin(request: web.Request) -> bool:
    """Whether a POST comes from our own page (Origin or Referer, when the browser sends one)."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source:
        return True
    public = urlsplit(request.app[RUNTIME].settings.public_url).netloc
    return urlsplit(source).netloc.lower() in {request.host.lower(), public.lower()} - {""}


def hints_of(request: web.Request) -> dict[str, str]:
    """What the browser says about the person: the first language it asks for."""
    first = request.headers.get("Accept-Language", "").split(",")[0].split(";")[0].strip()
    return {"language": first} if re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", first) \
        else {}


def page_language(request: web.Request, conversation_language: str | None) -> str:
    """The conversation's language, else the browser's, else the deployment default."""
    if conversation_language:
        return conversation_language
    asked = hints_of(request).get("language", "").split("-")[0].lower()
    catalogs = request.app[RUNTIME].engine.catalogs
    return asked if asked in catalogs.languages else catalogs.default_language


def provider_id(client_id: Any) -> str:
    """The provider message id: the browser's own id for this send, so a retry is recognised."""
    if isinstance(client_id, str) and CLIENT_ID.fullmatch(client_id):
        return f"web-{client_id}"
    return f"web-{uuid.uuid4()}"


def checked_text(text: Any) -> str:
    """The typed text, refused when it is not text or too long; half of a broken emoji
    becomes U+FFFD, so the rest of the words are kept."""
    if not isinstance(text, str):
        raise Refused(400, "bad_request")
    if len(text.encode("utf-8", errors="replace")) > MAX_TEXT_BYTES:
        raise Refused(413, "too_long")
    return LONE_SURROGATE.sub("\ufffd", text)


@dataclass
class ChatForm:
    """A form sent by the page or by chat.js: a typed text or a pressed choice, maybe a file."""

    text: str
    client_id: str | None
    attachment: Attachment | None
    language: str | None


async def read_form(request: web.Request) -> ChatForm:
    """The fields of a form POST; an uploaded file is stored as evidence right away."""
    try:
        form = await request.post()
    except web.HTTPRequestEntityTooLarge as error:
        raise Refused(413, "file_too_large") from error
    except (ValueError, LookupError) as error:  # bytes not in the charset, or no such charset
        raise Refused(400, "bad_request") from error
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    text = checked_text(fields.get("choice") or fields.get("text") or "")
    upload = form.get("file")
    attachment = None
    if isinstance(upload, web.FileField) and upload.filename:
        data = await asyncio.to_thread(upload.file.read)
        if data:
            attachment = await store_upload(request, data, upload.filename,
                                            upload.content_type)
    return ChatForm(text, fields.get("client_id"), attachment, fields.get("lang"))


async def store_upload(request: web.Request, data: bytes, filename: str,
                       media_type: str | None) -> Attachment:
    """Keep an uploaded file as evidence, typed by its content, not by the browser's claim."""
    evidence = request.app[RUNTIME].evidence
    try:
        return await asyncio.to_thread(evidence.accept, data, filename, media_type)
    except AttachmentRefused as error:
        if error.kind == "type":
            raise Refused(415, "file_type") from error
        raise Refused(413, "file_too_large") from error


@dataclass
class Exchange:
    """The replies to one message (None: a retry of a message already handled)."""

    delivered: list[Delivered] | None
    language: str | None


def exchange(runtime: Runtime, message: InboundMessage) -> Exchange:
    """Hand one message in, record the replies as delivered, and say the language now used."""
    delivered = runtime.intake.handle(message)
    if delivered:
        runtime.intake.mark_delivered(delivered)
    with transaction(runtime.sessions) as session:
        language = session.scalar(
            select(Conversation.language).where(repository.by_sender(
                session, Conversation, CHANNEL, message.sender))
            .order_by(Conversation.id.desc()).limit(1))
    return Exchange(delivered, language)


async def send(request: web.Request, sender: str, text: str, client_id: Any,
               attachment: Attachment | None = None) -> Exchange:
    """One message from the browser through the intake pipeline."""
    message = InboundMessage(channel=CHANNEL, sender=sender,
                             provider_message_id=provider_id(client_id), text=text,
                             attachments=(attachment,) if attachment else (),
                             hints=hints_of(request))
    return await asyncio.to_thread(exchange, request.app[RUNTIME], message)


# -- the page and its form (no JavaScript needed) -----------------------------------------


async def chat_page(request: web.Request) -> web.StreamResponse:
    """The chat: a new browser is greeted, a known one sees its transcript."""
    token = sender_of(request) or secrets.token_urlsafe(32)
    runtime = request.app[RUNTIME]
    try:
        check_rate(request, None)
    except Refused as refused:
        words = page_text(runtime.engine.catalogs, page_language(request, None),
                          runtime.settings.max_attachment_bytes)
        return web.Response(status=429, text=words["too_fast"],
                            headers={**PAGE_HEADERS, **retry_after(refused)})
    await asyncio.to_thread(open_conversation, runtime, token, hints_of(request))
    response = await render_chat(request, token)
    remember(response, request, token)
    return response


async def render_chat(request: web.Request, token: str, notice: str | None = None,
                      status: int = 200) -> web.StreamResponse:
    """The page with the whole transcript; `notice` says why the last send failed."""
    runtime = request.app[RUNTIME]
    transcript = await asyncio.to_thread(load_transcript, runtime, token)
    language = page_language(request, transcript.language)
    words = page_text(runtime.engine.catalogs, language, runtime.settings.max_attachment_bytes)
    response = aiohttp_jinja2.render_template("chat.html", request, {
        "lang": language, "dir": direction_of(language), "t": words,
        "notice": words.get(notice) if notice else None,
        "lines": transcript.lines, "last_id": transcript.last_id,
        "new_id": lambda: str(uuid.uuid4()),
    }, status=status)
    response.headers.update(PAGE_HEADERS)
    return response


async def chat_form(request: web.Request) -> web.StreamResponse:
    """The form without JavaScript: hand the message in, then show the page again."""
    if not same_origin(request):
        raise web.HTTPForbidden(text=request.app[RUNTIME].engine.catalogs.text(
            "en", "web.cross_origin"))
    token = sender_of(request) or secrets.token_urlsafe(32)
    try:
        check_rate(request, token)
        form = await read_form(request)
        await send(request, token, form.text, form.client_id, form.attachment)
    except Refused as refused:
        response = await render_chat(request, token, refused.text_id, refused.status)
        response.headers.update(retry_after(refused))
    else:
        response = web.Response(status=303, headers={"Location": "/chat#latest"})
    remember(response, request, token)
    return response


# -- the JSON endpoints used by chat.js -----------------------------------------------------


def message_json(outbox_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """A message for the browser: OutboundMessage.as_dict(), its direction and outbox id."""
    return {**body, "direction": body.get("direction", "ltr"), "id": outbox_id}


def exchange_json(request: web.Request, result: Exchange, shown_language: Any
                  ) -> dict[str, Any]:
    """The answer to a send; with the page's words when the conversation's language changed."""
    delivered = result.delivered or []
    language = page_language(request, result.language)
    answer: dict[str, Any] = {
        "messages": [message_json(d.outbox_id, d.message.as_dict()) | {
            "direction": d.message.direction} for d in delivered],
        "duplicate": result.delivered is None,
        "lang": language,
        "dir": direction_of(language),
    }
    if shown_language != language:
        runtime = request.app[RUNTIME]
        answer["page_text"] = page_text(runtime.engine.catalogs, language,
                                        runtime.settings.max_attachment_bytes)
    return answer


def api(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Same-origin check, identity cookie and errors as JSON, for every chat endpoint."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        token = sender_of(request) or secrets.token_urlsafe(32)
        language = page_language(request, None)
        try:
            if request.method != "GET" and not same_origin(request):
                raise Refused(403, "cross_origin")
            check_rate(request, token if request.method != "GET" else None)
            response = await handler(request, token)
        except Refused as refused:
            runtime = request.app[RUNTIME]
            words = page_text(runtime.engine.catalogs, language,
                              runtime.settings.max_attachment_bytes)
            response = web.json_response({"error": words[refused.text_id],
                                          "code": refused.text_id}, status=refused.status,
                                         headers=retry_after(refused))
        response.headers["Cache-Control"] = "no-store"
        remember(response, request, token)
        return response
    return wrapped


@api
async def api_send(request: web.Request, token: str) -> web.StreamResponse:
    """POST {"text", "client_id"?, "lang"?}: hand a typed message or a choice id in."""
    if (request.content_length or 0) > MAX_TEXT_BYTES:
        raise Refused(413, "too_long")
    body = await request.read()
    if len(body) > MAX_TEXT_BYTES:
        raise Refused(413, "too_long")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise Refused(400, "bad_request") from error
    if not isinstance(payload, dict):
        raise Refused(400, "bad_request")
    text = checked_text(payload.get("text", ""))
    result = await send(request, token, text, payload.get("client_id"))
    return web.json_response(exchange_json(request, result, payload.get("lang")))


@api
async def api_attach(request: web.Request, token: str) -> web.StreamResponse:
    """POST multipart "file" (and optional "text", "client_id", "lang"): evidence in."""
    form = await read_form(request)
    if form.attachment is None:
        raise Refused(400, "no_file")
    result = await send(request, token, form.text, form.client_id, form.attachment)
    answer = exchange_json(request, result, form.language)
    return web.json_response(answer | {"attachment": {"filename": form.attachment.filename,
                                                      "size": form.attachment.size}})


@api
async def api_messages_after(request: web.Request, token: str) -> web.StreamResponse:
    """GET ?after=ID: this browser's newer messages (reminders, the secretariat's)."""
    try:
        after = int(request.query.get("after", "0"))
    except ValueError as error:
        raise Refused(400, "bad_request") from error
    if not 0 <= after <= MAX_ROW_ID:  # a poll after no possible id is no poll
        raise Refused(400, "bad_request")
    rows = await asyncio.to_thread(messages_after, request.app[RUNTIME], token, after)
    return web.json_response({"messages": [message_json(row.id, row.body) for row in rows]})


def messages_after(runtime: Runtime, sender: str, after: int) -> list[OutboxMessage]:
    """This browser's messages after an outbox id, now recorded as delivered: those of every
    conversation it had, so that the secretariat's question on an application filed before
    'new' reaches the chat that is open."""
    with transaction(runtime.sessions) as session:
        conversations = select(Conversation.id).where(repository.by_sender(
            session, Conversation, CHANNEL, sender))
        rows = list(session.scalars(select(OutboxMessage).where(
            OutboxMessage.conversation_id.in_(conversations), OutboxMessage.id > after)
            .order_by(OutboxMessage.id)))
    deliver_pending(runtime, rows)
    return rows


def deliver_pending(runtime: Runtime, rows: list[OutboxMessage]) -> None:
    """Record that the messages not yet delivered have now been shown in the browser."""
    pending = [Delivered(row.id, OutboundMessage.from_dict(row.body))
               for row in rows if row.state == "pending"]
    if pending:
        runtime.intake.mark_delivered(pending)
