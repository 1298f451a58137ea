"""How large a request body each route accepts; anything larger is answered 413 with the reason.
A path or query that is no storable text (a NUL, a lone surrogate) is answered 400.

Every request passes `body_limits`: the route's limit becomes the request's `client_max_size`
(so reading the body stops there, declared length or not), and a declared length over the
limit is refused before a byte of the body is read. The web chat, the webhooks and the JSON
API read their bodies themselves and answer in their own way (the chat in the person's
language, each webhook as its provider expects); for them the limit here is the backstop.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.settings import Settings
from gateway.web import RUNTIME
from gateway.web.api import MAX_BODY_BYTES as API_BODY_BYTES
from gateway.web.api import problem
from gateway.web.chat import LONE_SURROGATE
from gateway.web.chat import MAX_TEXT_BYTES as CHAT_TEXT_BYTES

# Room for a multipart form's boundaries and fields around an uploaded file.
FORM_OVERHEAD_BYTES = 1024 * 1024
# The secretariat's forms: a notice and a note of 20,000 characters each, URL-encoded.
SECRETARIAT_FORM_BYTES = 1024 * 1024
# Requests that carry no body (GET, HEAD, OPTIONS, DELETE) and anything not listed.
NO_BODY_BYTES = 1024
OTHER_BYTES = 64 * 1024
ANSWERED_BY_THE_ROUTE = ("/chat", "/webhooks/")
BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
# What no database column can hold (PostgreSQL refuses NUL; UTF-8 has no lone surrogates).
NOT_TEXT = re.compile(f"\x00|{LONE_SURROGATE.pattern}")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def body_limit(method: str, path: str, settings: Settings) -> int:
    """The most bytes a request to this route may carry."""
    if method in BODYLESS:
        return NO_BODY_BYTES
    if path.startswith("/webhooks/"):
        return settings.webhook_max_body_bytes
    if path in ("/chat", "/chat/api/attachments"):
        return settings.max_attachment_bytes + FORM_OVERHEAD_BYTES
    if path == "/chat/api/messages":
        return CHAT_TEXT_BYTES
    if path.startswith("/api/"):
        return API_BODY_BYTES
    if path.startswith("/secretariat/"):
        return SECRETARIAT_FORM_BYTES
    return OTHER_BYTES


def not_text(path: str) -> web.Response:
    """The refusal of an address holding characters that are not text (as JSON for the API)."""
    message = "The address holds a character that is not text (a NUL or a lone surrogate)."
    if path.startswith("/api/"):
        return problem(400, "bad_request", message)
    return web.Response(status=400, text=message, headers={"Cache-Control": "no-store"})


def too_large(path: str, limit: int) -> web.Response:
    """The refusal, with the limit in words (as JSON for the API)."""
    message = f"The request body is too large: this address accepts at most {limit} bytes."
    if path.startswith("/api/"):
        return problem(413, "too_large", message)
    return web.Response(status=413, text=message, headers={"Cache-Control": "no-store"})


@web.middleware
async def body_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Hold every request to its route's body limit."""
    limit = body_limit(request.method, request.path, request.app[RUNTIME].settings)
    answered_by_route = request.path.startswith(ANSWERED_BY_THE_ROUTE) and \
        request.method not in BODYLESS
    if (request.content_length or 0) > limit and not answered_by_route:
        return too_large(request.path, limit)
    try:
        return await handler(request.clone(client_max_size=limit))
    except web.HTTPRequestEntityTooLarge:
        return too_large(request.path, limit)


@web.middleware
async def text_addresses(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a path or query with characters no handler could look up or store."""
    if NOT_TEXT.search(request.path) or NOT_TEXT.search(request.query_string):
        return not_text(request.path)
    return await handler(request)
