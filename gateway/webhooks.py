"""The providers' webhooks: `POST /webhooks/telegram`, `GET|POST /webhooks/whatsapp`,
`POST /webhooks/sms/twilio`, `POST /webhooks/sms/africastalking`.

One wrapper, `webhook`, does what every provider's handler needs, in this order: refuse
everything while the channel is not configured (fail closed); read the body within the size
limit (413); verify the provider's signature or shared secret (403, nothing stored); parse
the payload with the channel's adapter; commit what it carries; answer; and only then
process. Errors become the answer each provider expects: a payload that is authentic but
unreadable gets an ignored 200 from Telegram and WhatsApp (which would otherwise retry it for
days) and a 400 from Twilio and Africa's Talking (which do not retry); a database that is down
gets a 503, so the provider retries later and nothing is lost. Nothing here answers 500.
Log lines name the channel, the outcome and the counts, never a secret or a message text.

Limits: an address whose requests keep failing (bad signature, wrong secret, too large:
GATEWAY_WEBHOOK_REFUSALS_PER_MINUTE_PER_ADDRESS) gets 429 for the next failures, and they are
no longer logged one by one. A request that is authentic is taken whatever its address did
before (behind a proxy that is not listed in GATEWAY_TRUSTED_PROXIES every request shares one
address, and a forger must not get the provider turned away). Authentic deliveries are never
refused for their rate: a provider answered 429 retries for
days (Meta, Telegram, holding up everyone's messages behind it) or drops the message (Twilio,
Africa's Talking). They are stored and answered 200 at once, and a sender over
GATEWAY_INBOUND_MESSAGES_PER_MINUTE has the processing of their messages deferred
(gateway.inbound): accept and defer, never lose.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from channels import telegram, whatsapp
from channels.base import Parsed, PayloadRefused, same_secret
from channels.sms import africastalking, twilio
from gateway.messaging import MESSAGING
from gateway.providers import WEBHOOK_PATHS, TelegramClient, channel_status
from gateway.settings import Settings
from gateway.web import RUNTIME
from gateway.web.staff_auth import client_address
from storage.db import DatabaseUnavailable

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Endpoint:
    """How one provider's webhook is checked, read and answered."""

    channel: str
    authentic: Callable[[web.Request, bytes, Settings], bool]
    parse: Callable[[web.Request, bytes], Parsed]
    acknowledge: Callable[[], web.Response]
    unreadable_status: int  # for an authentic payload the adapter cannot read


def setup_webhooks(app: web.Application) -> None:
    """Register the four webhook routes."""
    app.router.add_post(WEBHOOK_PATHS[telegram.CHANNEL], webhook(TELEGRAM))
    app.router.add_get(WEBHOOK_PATHS[whatsapp.CHANNEL], whatsapp_handshake)
    app.router.add_post(WEBHOOK_PATHS[whatsapp.CHANNEL], webhook(WHATSAPP))
    app.router.add_post(WEBHOOK_PATHS[twilio.CHANNEL], webhook(TWILIO))
    app.router.add_post(WEBHOOK_PATHS[africastalking.CHANNEL], webhook(AFRICASTALKING))


def webhook(endpoint: Endpoint) -> Handler:
    """The handler for one provider: verify, store, answer, then process."""
    async def handle(request: web.Request) -> web.StreamResponse:
        runtime = request.app[RUNTIME]
        settings = runtime.settings
        channel = endpoint.channel
        address = f"webhook:{client_address(request)}"
        limit = settings.webhook_refusals_per_minute_per_address

        def refuse(status: int, reason: str) -> web.Response:
            """Only requests that fail count; past the limit they get 429, quietly."""
            wait = runtime.throttle.exceeded(address, limit)
            runtime.throttle.count(address, limit)
            if not wait:
                return _refuse(channel, status, reason)
            log.debug("webhook %s: answered 429: %s", channel, reason)
            return web.Response(status=429, text="too many refused requests",
                                headers={"Retry-After": str(math.ceil(wait))})
        if not _configured(settings, channel):
            return refuse(403, "channel not configured")
        try:
            body = await _read(request, settings.webhook_max_body_bytes)
        except web.HTTPRequestEntityTooLarge:
            return refuse(413, "body over the size limit")
        try:
            if not endpoint.authentic(request, body, settings):
                return refuse(403, "signature or secret missing or wrong")
        except PayloadRefused as error:
            return refuse(400, f"unreadable request: {error}")
        try:
            parsed = endpoint.parse(request, body)
        except PayloadRefused as error:
            return _refuse(channel, endpoint.unreadable_status, f"payload ignored: {error}")
        messaging = request.app[MESSAGING]
        try:
            ingested = await messaging.inbound.ingest(parsed)
        except DatabaseUnavailable as error:
            log.error("webhook %s: not stored, the database is unavailable: %s", channel, error)
            return web.Response(status=503, text="try again later")
        messaging.inbound.schedule(ingested)
        if parsed.callback_query_ids:
            _answer_callbacks(request, parsed.callback_query_ids)
        log.info("webhook %s: stored %s%s", channel, ingested.summary(),
                 f"; ignored: {'; '.join(parsed.ignored)}" if parsed.ignored else "")
        return endpoint.acknowledge()
    return handle


def _configured(settings: Settings, channel: str) -> bool:
    return channel_status(settings, channel).on


def _refuse(channel: str, status: int, reason: str) -> web.Response:
    log.warning("webhook %s: answered %d: %s", channel, status, reason)
    return web.Response(status=status, text="ok" if status == 200 else reason)


async def _read(request: web.Request, limit: int) -> bytes:
    """The raw body (signatures are over the exact bytes), at most `limit` bytes."""
    if (request.content_length or 0) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit,
                                           actual_size=request.content_length or 0)
    body = bytearray()
    while chunk := await request.content.read(64 * 1024):
        body.extend(chunk)
        if len(body) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return bytes(body)


def _answer_callbacks(request: web.Request, ids: list[str]) -> None:
    """Stop the spinner on pressed Telegram buttons, after the answer."""
    client = request.app[MESSAGING].clients.get(telegram.CHANNEL)
    if isinstance(client, TelegramClient):
        request.app[MESSAGING].inbound.spawn(client.answer_callback_queries(ids))


# -- reading bodies -----------------------------------------------------------------------------


def json_of(body: bytes) -> Any:
    """A JSON body; invalid UTF-8 or JSON is refused."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise PayloadRefused(f"not JSON: {type(error).__name__}") from error


def form_of(body: bytes) -> list[tuple[str, str]]:
    """The pairs of an application/x-www-form-urlencoded body; invalid UTF-8 is refused."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PayloadRefused("form body is not UTF-8") from error
    if not text.strip():
        raise PayloadRefused("empty form body")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError) as error:
        raise PayloadRefused(f"malformed form body: {error}") from error
    return pairs


def _first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in pairs:
        values.setdefault(name, value)
    return values


# -- Telegram ------------------------------------------------------------------------------------


def _telegram_authentic(request: web.Request, body: bytes, settings: Settings) -> bool:
    secret = settings.telegram_secret_token.get_secret_value()
    return same_secret(request.headers.get(telegram.SECRET_HEADER), secret)


TELEGRAM = Endpoint(
    channel=telegram.CHANNEL, authentic=_telegram_authentic,
    parse=lambda request, body: telegram.parse(json_of(body)),
    acknowledge=lambda: web.Response(text="ok"), unreadable_status=200)


# -- WhatsApp ------------------------------------------------------------------------------------


async def whatsapp_handshake(request: web.Request) -> web.StreamResponse:
    """Meta's subscription check: echo hub.challenge when hub.verify_token is ours."""
    settings = request.app[RUNTIME].settings
    query = request.query
    token = settings.whatsapp_verify_token.get_secret_value()
    if query.get("hub.mode") == "subscribe" and same_secret(query.get("hub.verify_token"), token) \
            and _configured(settings, whatsapp.CHANNEL):
        log.info("webhook whatsapp: subscription verified")
        return web.Response(text=query.get("hub.challenge", ""))
    return _refuse(whatsapp.CHANNEL, 403, "verification with a wrong or missing token")


WHATSAPP = Endpoint(
    channel=whatsapp.CHANNEL,
    authentic=lambda request, body, settings: whatsapp.signature_valid(
        body, request.headers.get(whatsapp.SIGNATURE_HEADER),
        settings.whatsapp_app_secret.get_secret_value()),
    parse=lambda request, body: whatsapp.parse(json_of(body)),
    acknowledge=lambda: web.Response(text="ok"), unreadable_status=200)


# -- Twilio --------------------------------------------------------------------------------------


def _twilio_authentic(request: web.Request, body: bytes, settings: Settings) -> bool:
    """The signature over the public URL (GATEWAY_PUBLIC_URL: right behind a proxy)."""
    url = settings.public_url.rstrip("/") + request.path_qs
    return twilio.signature_valid(url, form_of(body), request.headers.get(
        twilio.SIGNATURE_HEADER), settings.twilio_auth_token.get_secret_value())


TWILIO = Endpoint(
    channel=twilio.CHANNEL, authentic=_twilio_authentic,
    parse=lambda request, body: twilio.parse(_first_values(form_of(body))),
    acknowledge=lambda: web.Response(text=twilio.EMPTY_TWIML, content_type="text/xml"),
    unreadable_status=400)


# -- Africa's Talking ------------------------------------------------------------------------------


def _africastalking_authentic(request: web.Request, body: bytes, settings: Settings) -> bool:
    """The shared secret in the callback URL, and the caller's address when a list is set."""
    secret = settings.africastalking_webhook_secret.get_secret_value()
    if not same_secret(request.query.get(africastalking.SECRET_PARAMETER), secret):
        return False
    return address_allowed(client_address(request), settings.africastalking_allowed_ips)


def address_allowed(address: str, allowed: str) -> bool:
    """Whether an address is in one of the comma-separated networks (all, when none is set)."""
    networks = [n.strip() for n in allowed.split(",") if n.strip()]
    if not networks:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


AFRICASTALKING = Endpoint(
    channel=africastalking.CHANNEL, authentic=_africastalking_authentic,
    parse=lambda request, body: africastalking.parse(_first_values(form_of(body))),
    acknowledge=lambda: web.Response(text="ok"), unreadable_status=400)
