"""The providers' APIs: which channels are configured, and one client per channel that sends
rendered messages and fetches the files people sent, at the `GATEWAY_*_API_BASE` URLs.

Telegram goes through python-telegram-bot's `Bot` (its base URL set from
GATEWAY_TELEGRAM_API_BASE); WhatsApp, Twilio and Africa's Talking are plain HTTPS calls.
Adapters in `channels/` decide what to send; clients here only carry it.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp
from telegram import Bot, Update
from telegram.error import BadRequest, TelegramError
from telegram.request import HTTPXRequest

from channels import telegram, whatsapp
from channels.base import SendFailure
from channels.sms import africastalking, twilio
from gateway.settings import Settings
from intake.messages import OutboundMessage
from storage.delivery import Claim

log = logging.getLogger(__name__)
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)
WHATSAPP_WINDOW = timedelta(hours=24)
WEBHOOK_PATHS = {
    telegram.CHANNEL: "/webhooks/telegram",
    whatsapp.CHANNEL: "/webhooks/whatsapp",
    twilio.CHANNEL: "/webhooks/sms/twilio",
    africastalking.CHANNEL: "/webhooks/sms/africastalking",
}
# Delivered by their own front-ends (rows are marked sent when shown): never by the sender.
SELF_DELIVERED = frozenset({"web", "terminal"})


@dataclass(frozen=True)
class ChannelStatus:
    """Whether a messaging channel is on, and why not."""

    channel: str
    label: str
    on: bool
    reason: str


def _telegram_needs(settings: Settings) -> dict[str, object]:
    needed: dict[str, object] = {"telegram_token": _secret(settings.telegram_token)}
    if settings.telegram_mode == "webhook":
        needed["telegram_secret_token"] = _secret(settings.telegram_secret_token)
    return needed


# Each messaging channel: its label, and the settings it needs (name: value) to be on.
_NEEDS: dict[str, tuple[str, Callable[[Settings], dict[str, object]]]] = {
    telegram.CHANNEL: ("Telegram", _telegram_needs),
    whatsapp.CHANNEL: ("WhatsApp", lambda settings: {
        "whatsapp_app_secret": _secret(settings.whatsapp_app_secret),
        "whatsapp_verify_token": _secret(settings.whatsapp_verify_token),
        "whatsapp_access_token": _secret(settings.whatsapp_access_token),
        "whatsapp_phone_number_id": settings.whatsapp_phone_number_id}),
    twilio.CHANNEL: ("SMS (Twilio)", lambda settings: {
        "twilio_account_sid": settings.twilio_account_sid,
        "twilio_auth_token": _secret(settings.twilio_auth_token),
        "twilio_from": settings.twilio_from, "public_url": settings.public_url}),
    africastalking.CHANNEL: ("SMS (Africa's Talking)", lambda settings: {
        "africastalking_username": settings.africastalking_username,
        "africastalking_api_key": _secret(settings.africastalking_api_key),
        "africastalking_webhook_secret": _secret(settings.africastalking_webhook_secret)}),
}


def channel_status(settings: Settings, channel: str) -> ChannelStatus:
    """Whether one messaging channel is on: all its credentials set (a webhook asks this of
    every request, so only its own channel's settings are read)."""
    label, needs = _NEEDS[channel]
    missing = [f"GATEWAY_{name.upper()}" for name, value in needs(settings).items() if not value]
    return ChannelStatus(channel, label, not missing,
                         f"not configured ({', '.join(missing)} unset)" if missing else "")


def channel_statuses(settings: Settings) -> list[ChannelStatus]:
    """Each messaging channel, on when its credentials are all set."""
    return [channel_status(settings, channel) for channel in _NEEDS]


def _secret(value: Any) -> str:
    return str(value.get_secret_value()) if hasattr(value, "get_secret_value") else str(value)


def secrets_of(settings: Settings) -> list[str]:
    """Every configured secret, for redaction from the logs."""
    names = ("telegram_token", "telegram_secret_token", "whatsapp_app_secret",
             "whatsapp_verify_token", "whatsapp_access_token", "twilio_auth_token",
             "africastalking_api_key", "africastalking_webhook_secret", "imap_password",
             "smtp_password")
    return [s for s in (_secret(getattr(settings, n)) for n in names) if s]


# -- what the clients share ------------------------------------------------------------------


@dataclass(frozen=True)
class Words:
    """The few words rendering needs in the person's language."""

    choose: str  # WhatsApp's list button
    number_hint: str  # SMS: "Reply with a number from 1 to N"


@dataclass(frozen=True)
class Rendering:
    """What one outbox row becomes: the provider calls in order, and how it is delivered.

    `hold` means the parts are a template announcing a message the window does not allow:
    the row itself waits until the person writes again."""

    parts: Sequence[Any]
    mode: str | None = None
    hold: bool = False


@dataclass(frozen=True)
class Limit:
    """A rate limit: `rate` calls per second on `key`, `burst` of them at once."""

    key: str
    rate: float
    burst: int = 1


class FetchFailure(Exception):
    """A file that could not be fetched; `kind` is too_large, type, download or transient."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


@dataclass(frozen=True)
class Fetched:
    """A file's bytes and the media type the provider gave."""

    data: bytes
    media_type: str | None


class ChannelClient(Protocol):
    """What the outbox sender and the media fetcher need from a provider."""

    channel: str

    def limits(self, recipient: str) -> list[Limit]:
        """The limits one call to this recipient is under, the narrowest first."""

    def render(self, claim: Claim, message: OutboundMessage, words: Words, now: datetime
               ) -> Rendering: ...

    async def send_part(self, part: Any) -> str: ...

    async def fetch(self, reference: str, max_bytes: int) -> Fetched: ...

    async def close(self) -> None: ...


def media_type_allowed(media_type: str | None, allowed: str) -> bool:
    """Whether a media type matches one of the allowed patterns ("image/*,application/pdf")."""
    if not media_type:
        return False
    base = media_type.split(";")[0].strip().lower()
    return any(fnmatch.fnmatch(base, pattern.strip().lower())
               for pattern in allowed.split(",") if pattern.strip())


async def read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The body, refused as soon as it passes `max_bytes`."""
    if (response.content_length or 0) > max_bytes:
        raise FetchFailure("too_large", f"{response.content_length} bytes")
    data = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        data.extend(chunk)
        if len(data) > max_bytes:
            raise FetchFailure("too_large", f"more than {max_bytes} bytes")
    return bytes(data)


def _http_failure(status: int, what: str) -> FetchFailure:
    transient = status == 429 or status >= 500
    return FetchFailure("transient" if transient else "download", f"{what}: HTTP {status}")


class HttpClient:
    """An aiohttp session shared by the plain HTTPS providers."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=HTTP_TIMEOUT)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _json(self, response: aiohttp.ClientResponse) -> Any:
        try:
            return await response.json(content_type=None)
        except (ValueError, aiohttp.ContentTypeError):
            return None


def _network(what: str, error: Exception) -> SendFailure:
    return SendFailure("transient", f"{what}: {type(error).__name__}: {error}".rstrip(": "))


# -- Telegram ------------------------------------------------------------------------------------


class TelegramClient:
    """The Bot API through python-telegram-bot."""

    channel = telegram.CHANNEL

    def __init__(self, settings: Settings) -> None:
        base = settings.telegram_api_base.rstrip("/")
        self.settings = settings
        self.bot = Bot(_secret(settings.telegram_token), base_url=f"{base}/bot",
                       base_file_url=f"{base}/file/bot",
                       request=HTTPXRequest(connection_pool_size=16),
                       get_updates_request=HTTPXRequest(read_timeout=40))

    def limits(self, recipient: str) -> list[Limit]:
        s = self.settings
        rate = s.telegram_rate_per_second
        return [Limit(f"telegram:{recipient}", s.telegram_rate_per_chat_per_second),
                Limit("telegram", rate, max(1, int(rate)))]

    def render(self, claim: Claim, message: OutboundMessage, words: Words, now: datetime
               ) -> Rendering:
        return Rendering(telegram.render(claim.recipient, message))

    async def send_part(self, part: Any) -> str:
        try:
            sent = await self.bot.send_message(chat_id=part.chat_id, text=part.text,
                                               reply_markup=part.reply_markup)
        except TelegramError as error:
            raise telegram.failure(error) from error
        return str(sent.message_id)

    async def fetch(self, reference: str, max_bytes: int) -> Fetched:
        try:
            file = await self.bot.get_file(reference)
            if (file.file_size or 0) > max_bytes:
                raise FetchFailure("too_large", f"{file.file_size} bytes")
            data = bytes(await file.download_as_bytearray())
        except BadRequest as error:
            kind = "too_large" if "too big" in str(error).lower() else "download"
            raise FetchFailure(kind, f"Telegram: {error}") from error
        except TelegramError as error:
            raise FetchFailure("transient", f"Telegram: {error}") from error
        if len(data) > max_bytes:
            raise FetchFailure("too_large", f"{len(data)} bytes")
        return Fetched(data, None)

    async def answer_callback_queries(self, ids: Sequence[str]) -> None:
        """Stop the spinner on pressed buttons (best effort: the answer is processed anyway)."""
        for query_id in ids:
            try:
                await self.bot.answer_callback_query(query_id)
            except TelegramError as error:
                log.warning("answerCallbackQuery failed: %s", error)

    async def set_webhook(self, url: str) -> None:
        """Point Telegram at this gateway, with the secret it must send back."""
        await self.bot.set_webhook(url, secret_token=_secret(self.settings.telegram_secret_token),
                                   allowed_updates=list(telegram.ALLOWED_UPDATES))

    async def updates(self, offset: int, timeout: int) -> list[dict[str, Any]]:
        """One long poll: the updates after `offset`, as the JSON objects a webhook carries."""
        found: tuple[Update, ...] = await self.bot.get_updates(
            offset=offset, timeout=timeout, allowed_updates=list(telegram.ALLOWED_UPDATES))
        return [update.to_dict() for update in found]

    async def delete_webhook(self) -> None:
        await self.bot.delete_webhook()

    async def close(self) -> None:
        await self.bot.shutdown()


# -- WhatsApp -------------------------------------------------------------------------------------


class WhatsAppClient(HttpClient):
    """The Cloud API's messages and media endpoints."""

    channel = whatsapp.CHANNEL

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.base = settings.whatsapp_api_base.rstrip("/")
        self.auth = {"Authorization": f"Bearer {_secret(settings.whatsapp_access_token)}"}

    def limits(self, recipient: str) -> list[Limit]:
        rate = self.settings.whatsapp_rate_per_second
        return [Limit("whatsapp", rate, max(1, int(rate)))]

    def render(self, claim: Claim, message: OutboundMessage, words: Words, now: datetime
               ) -> Rendering:
        """A session message inside the 24-hour window; outside it, an approved template."""
        s = self.settings
        if claim.last_inbound_at is not None and now - claim.last_inbound_at < WHATSAPP_WINDOW:
            return Rendering(whatsapp.render(claim.recipient, message, words.choose), "session")
        language = self._template_language(claim.language)
        if claim.kind == "reminder" and s.whatsapp_template_reminder:
            name = s.whatsapp_template_reminder
            return Rendering([whatsapp.template(claim.recipient, name, language)],
                             f"template:{name}")
        if s.whatsapp_template_notification:
            name = s.whatsapp_template_notification
            return Rendering([whatsapp.template(claim.recipient, name, language)],
                             f"template:{name}", hold=True)
        raise SendFailure("permanent", "outside WhatsApp's 24-hour window and no template is "
                                       "configured (GATEWAY_WHATSAPP_TEMPLATE_NOTIFICATION)")

    def _template_language(self, language: str | None) -> str:
        approved = [code.strip() for code in self.settings.whatsapp_template_languages.split(",")
                    if code.strip()] or ["en"]
        matching = [code for code in approved if code.split("_")[0] == (language or "")]
        return matching[0] if matching else approved[0]

    async def send_part(self, part: Any) -> str:
        url = f"{self.base}/{self.settings.whatsapp_phone_number_id}/messages"
        try:
            async with self.http.post(url, json=part, headers=self.auth) as response:
                body = await self._json(response)
                if response.status >= 400:
                    raise whatsapp.failure(response.status, body)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _network("WhatsApp", error) from error
        try:
            return str(body["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as error:
            raise SendFailure("transient", f"WhatsApp: unexpected answer {body!r:.200}") from error

    async def fetch(self, reference: str, max_bytes: int) -> Fetched:
        """Media id to a short-lived URL, then the file (both with the access token)."""
        try:
            async with self.http.get(f"{self.base}/{reference}", headers=self.auth) as response:
                if response.status >= 400:
                    raise _http_failure(response.status, "WhatsApp media lookup")
                media = await self._json(response) or {}
            if int(media.get("file_size") or 0) > max_bytes:
                raise FetchFailure("too_large", f"{media['file_size']} bytes")
            async with self.http.get(media["url"], headers=self.auth) as response:
                if response.status >= 400:
                    raise _http_failure(response.status, "WhatsApp media download")
                data = await read_capped(response, max_bytes)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise FetchFailure("transient", f"WhatsApp: {type(error).__name__}") from error
        except (KeyError, TypeError) as error:
            raise FetchFailure("download", "WhatsApp: the media lookup had no URL") from error
        return Fetched(data, media.get("mime_type"))


# -- Twilio ---------------------------------------------------------------------------------------


class TwilioClient(HttpClient):
    """The Messages resource, with the account SID and auth token as Basic credentials."""

    channel = twilio.CHANNEL

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.base = settings.twilio_api_base.rstrip("/")
        credentials = f"{settings.twilio_account_sid}:{_secret(settings.twilio_auth_token)}"
        self.auth = {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}

    def limits(self, recipient: str) -> list[Limit]:
        return [Limit("sms-twilio", self.settings.twilio_rate_per_second)]

    def render(self, claim: Claim, message: OutboundMessage, words: Words, now: datetime
               ) -> Rendering:
        parts = twilio.render(message, self.settings.sms_max_segments, words.number_hint)
        return Rendering([twilio.send_params(claim.recipient, text, self.settings.twilio_from,
                                             self._status_callback()) for text in parts])

    def _status_callback(self) -> str:
        return self.settings.public_url.rstrip("/") + WEBHOOK_PATHS[twilio.CHANNEL]

    async def send_part(self, part: Any) -> str:
        url = f"{self.base}/2010-04-01/Accounts/{self.settings.twilio_account_sid}/Messages.json"
        try:
            async with self.http.post(url, data=part, headers=self.auth) as response:
                body = await self._json(response)
                if response.status >= 400:
                    raise twilio.failure(response.status, body)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _network("Twilio", error) from error
        if not isinstance(body, dict) or not body.get("sid"):
            raise SendFailure("transient", f"Twilio: unexpected answer {body!r:.200}")
        return str(body["sid"])

    async def fetch(self, reference: str, max_bytes: int) -> Fetched:
        """A `MediaUrl{N}`: only from Twilio's own API (the credentials go nowhere else)."""
        if not reference.startswith(self.base + "/"):
            raise FetchFailure("download", "media URL outside the Twilio API")
        try:
            async with self.http.get(reference, headers=self.auth) as response:
                if response.status >= 400:
                    raise _http_failure(response.status, "Twilio media")
                data = await read_capped(response, max_bytes)
                media_type = response.headers.get("Content-Type")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise FetchFailure("transient", f"Twilio: {type(error).__name__}") from error
        return Fetched(data, media_type)


# -- Africa's Talking -----------------------------------------------------------------------------


class AfricasTalkingClient(HttpClient):
    """The bulk messaging endpoint, with the API key header."""

    channel = africastalking.CHANNEL

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.base = settings.africastalking_api_base.rstrip("/")
        self.headers = {"apiKey": _secret(settings.africastalking_api_key),
                        "Accept": "application/json"}

    def limits(self, recipient: str) -> list[Limit]:
        return [Limit("sms-africastalking", self.settings.africastalking_rate_per_second)]

    def render(self, claim: Claim, message: OutboundMessage, words: Words, now: datetime
               ) -> Rendering:
        s = self.settings
        parts = africastalking.render(message, s.sms_max_segments, words.number_hint)
        return Rendering([africastalking.send_params(s.africastalking_username, claim.recipient,
                                                     text, s.africastalking_from)
                          for text in parts])

    async def send_part(self, part: Any) -> str:
        try:
            async with self.http.post(f"{self.base}/version1/messaging", data=part,
                                      headers=self.headers) as response:
                body = await self._json(response)
                return africastalking.outcome(response.status, body)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _network("Africa's Talking", error) from error

    async def fetch(self, reference: str, max_bytes: int) -> Fetched:
        raise FetchFailure("download", "Africa's Talking SMS carries no files")


def open_clients(settings: Settings) -> dict[str, ChannelClient]:
    """A client for every channel that is on."""
    makers: dict[str, type[Any]] = {
        telegram.CHANNEL: TelegramClient, whatsapp.CHANNEL: WhatsAppClient,
        twilio.CHANNEL: TwilioClient, africastalking.CHANNEL: AfricasTalkingClient}
    return {status.channel: makers[status.channel](settings)
            for status in channel_statuses(settings) if status.on}


async def close_clients(clients: dict[str, ChannelClient]) -> None:
    """Close every client's connections."""
    await asyncio.gather(*(client.close() for client in clients.values()),
                         return_exceptions=True)
