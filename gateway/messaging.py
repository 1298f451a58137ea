"""The messaging channels of one process: provider clients, inbound dispatch, media, outbox.

`gateway serve` builds one `Messaging` for its webhooks and runs its background work (the
outbox sender, due file downloads, and Telegram's long polling when that mode is chosen);
`gateway worker` runs the same background work without webhooks or polling.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from telegram.error import TelegramError

from channels import email, telegram
from channels.base import PayloadRefused
from gateway.inbound import InboundDispatcher
from gateway.mail import MailClient, MailPoller, mail_status
from gateway.media import MediaFetcher
from gateway.outbox import OutboxSender
from gateway.providers import (
    WEBHOOK_PATHS,
    ChannelClient,
    TelegramClient,
    channel_statuses,
    close_clients,
    open_clients,
    secrets_of,
)
from gateway.redaction import install
from gateway.runtime import Runtime
from storage.db import DatabaseUnavailable

log = logging.getLogger(__name__)
POLL_TIMEOUT_SECONDS = 30
POLL_ERROR_PAUSE_SECONDS = 5.0


class Messaging:
    """Everything the messaging channels need while a process runs."""

    def __init__(self, runtime: Runtime, clients: dict[str, ChannelClient] | None = None
                 ) -> None:
        self.runtime = runtime
        self.clients = open_clients(runtime.settings) if clients is None else clients
        self.mail_on = mail_status(runtime.settings).on
        if self.mail_on and clients is None:
            self.clients[email.CHANNEL] = MailClient(runtime)
        self.outbox = OutboxSender(runtime, self.clients)
        self.media = MediaFetcher(runtime, self.clients)
        self.inbound = InboundDispatcher(runtime, self.media, on_processed=self.outbox.wake)
        install(secrets_of(runtime.settings))

    def announce(self) -> None:
        """One log line per messaging channel: on (with its webhook) or off (and why)."""
        settings = self.runtime.settings
        for status in channel_statuses(settings):
            if not status.on:
                log.info("channel %s: off, %s", status.label, status.reason)
            elif status.channel == telegram.CHANNEL and settings.telegram_mode == "polling":
                log.info("channel %s: on (long polling)", status.label)
            else:
                log.info("channel %s: on, webhook %s", status.label,
                         WEBHOOK_PATHS[status.channel])
        mail = mail_status(settings)
        if mail.on:
            log.info("channel %s: on, mailbox %s (IMAP %s), replies by SMTP %s", mail.label,
                     settings.imap_folder, settings.imap_host, settings.smtp_host)
        else:
            log.info("channel %s: off, %s", mail.label, mail.reason)

    async def start(self) -> None:
        """Register Telegram's webhook when the gateway runs in webhook mode."""
        settings = self.runtime.settings
        client = self.clients.get(telegram.CHANNEL)
        if not isinstance(client, TelegramClient) or settings.telegram_mode != "webhook":
            return
        if not settings.public_url:
            log.warning("Telegram in webhook mode without GATEWAY_PUBLIC_URL: the webhook is "
                        "not registered; register %s yourself", WEBHOOK_PATHS[telegram.CHANNEL])
            return
        url = settings.public_url.rstrip("/") + WEBHOOK_PATHS[telegram.CHANNEL]
        try:
            await client.set_webhook(url)
            log.info("Telegram webhook registered at %s", url)
        except TelegramError as error:
            log.error("registering the Telegram webhook failed: %s", error)

    async def run(self, polling: bool) -> None:
        """The background work until cancelled: outbox, due downloads, and polling."""
        jobs = [self.outbox.run(), self._retry_media()]
        if self.mail_on:
            # In every process: the mailbox's lease lets one of them read it at a time.
            jobs.append(MailPoller(self.runtime, self.inbound.submit).run())
        client = self.clients.get(telegram.CHANNEL)
        if polling and isinstance(client, TelegramClient) and \
                self.runtime.settings.telegram_mode == "polling":
            jobs.append(self._poll_telegram(client))
        await asyncio.gather(*jobs)

    async def _retry_media(self) -> None:
        interval = self.runtime.settings.worker_interval_seconds
        while True:
            try:
                await self.inbound.retry_media()
            except DatabaseUnavailable as error:
                log.warning("retrying file downloads: %s", error)
            except Exception:  # noqa: BLE001 - the loop must outlive any one round
                log.exception("retrying file downloads failed; trying again next round")
            await asyncio.sleep(interval)

    async def _poll_telegram(self, client: TelegramClient) -> None:
        """Long polling (getUpdates): one instance only; the updates go the webhook's way."""
        await client.delete_webhook()
        offset = 0
        while True:
            try:
                updates = await client.updates(offset, POLL_TIMEOUT_SECONDS)
                for data in updates:
                    await self.take_telegram_update(data)
                    offset = max(offset, int(data["update_id"]) + 1)
            except asyncio.CancelledError:
                raise
            except (TelegramError, DatabaseUnavailable) as error:
                log.warning("Telegram polling: %s", error)
                await asyncio.sleep(POLL_ERROR_PAUSE_SECONDS)
            except Exception:  # noqa: BLE001 - polling must outlive any one error
                # The update is not acknowledged: Telegram keeps it, and it is tried again
                # after the pause (as a webhook answered 500 would be).
                log.exception("Telegram polling failed; trying again")
                await asyncio.sleep(POLL_ERROR_PAUSE_SECONDS)

    async def take_telegram_update(self, data: dict[str, object]) -> None:
        """One polled update, stored and scheduled like a webhook delivery."""
        try:
            parsed = telegram.parse(data)
        except PayloadRefused as error:
            log.warning("Telegram polling: update ignored: %s", error)
            return
        ingested = await self.inbound.ingest(parsed)
        self.inbound.schedule(ingested)
        client = self.clients.get(telegram.CHANNEL)
        if parsed.callback_query_ids and isinstance(client, TelegramClient):
            await client.answer_callback_queries(parsed.callback_query_ids)

    async def close(self) -> None:
        """Stop processing and close the providers' connections."""
        await self.inbound.close()
        await self.outbox.close()
        await close_clients(self.clients)


MESSAGING = web.AppKey("messaging", Messaging)
