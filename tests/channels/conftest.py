"""The gateway with all four messaging channels configured against local fake providers, on
SQLite and on PostgreSQL (the `settings` fixture of tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from gateway.app import create_app
from gateway.messaging import MESSAGING, Messaging
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.web import RUNTIME
from storage.db import transaction
from storage.models import InboundMessage as InboundRow
from tests.channels import fakes
from tests.channels.drivers import (
    AT_SECRET,
    PUBLIC_URL,
    TELEGRAM_SECRET,
    WHATSAPP_APP_SECRET,
    WHATSAPP_VERIFY_TOKEN,
    Driver,
)


@pytest.fixture
async def providers(aiohttp_server: Any) -> fakes.FakeProviders:
    """The fake provider APIs, listening on 127.0.0.1."""
    fake = fakes.FakeProviders()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


def configured(settings: Settings, providers: fakes.FakeProviders, **extra: Any) -> Settings:
    """Settings with every messaging channel on, pointed at the fake providers."""
    values: dict[str, Any] = {
        "public_url": PUBLIC_URL,
        "telegram_token": SecretStr(fakes.TELEGRAM_TOKEN),
        "telegram_secret_token": SecretStr(TELEGRAM_SECRET),
        "telegram_mode": "webhook",
        "telegram_api_base": f"{providers.url}/telegram",
        "whatsapp_app_secret": SecretStr(WHATSAPP_APP_SECRET),
        "whatsapp_verify_token": SecretStr(WHATSAPP_VERIFY_TOKEN),
        "whatsapp_access_token": SecretStr(fakes.WHATSAPP_TOKEN),
        "whatsapp_phone_number_id": fakes.WHATSAPP_PHONE_ID,
        "whatsapp_api_base": f"{providers.url}/whatsapp",
        "whatsapp_template_reminder": "mcm_reminder",
        "whatsapp_template_notification": "mcm_new_message",
        "twilio_account_sid": fakes.TWILIO_SID,
        "twilio_auth_token": SecretStr(fakes.TWILIO_TOKEN),
        "twilio_from": "+243800000100",
        "twilio_api_base": f"{providers.url}/twilio",
        "africastalking_username": "mcm",
        "africastalking_api_key": SecretStr(fakes.AT_KEY),
        "africastalking_api_base": f"{providers.url}/africastalking",
        "africastalking_webhook_secret": SecretStr(AT_SECRET),
        "africastalking_from": "22384",
        "webhook_max_body_bytes": 64 * 1024,
        "max_attachment_bytes": 64 * 1024,
        "language_detector": "script",
    }
    return settings.model_copy(update=values | extra)


@pytest.fixture
def channel_settings(settings: Settings, providers: fakes.FakeProviders) -> Settings:
    return configured(settings, providers)


@dataclass
class Gateway:
    """The running gateway as the tests drive it."""

    client: TestClient
    providers: fakes.FakeProviders

    @property
    def runtime(self) -> Runtime:
        return self.client.app[RUNTIME]

    @property
    def messaging(self) -> Messaging:
        return self.client.app[MESSAGING]

    async def post(self, driver: Driver, payload: Any = None, body: bytes | None = None,
                   headers: dict[str, str] | None = None, path: str | None = None,
                   signed: bool = True) -> ClientResponse:
        """A provider's request: the payload encoded and signed as that provider does."""
        raw = driver.encode(payload) if body is None else body
        sent = {"Content-Type": driver.content_type}
        if signed:
            sent |= driver.sign(raw)
        sent |= headers or {}
        return await self.client.post(path or driver.path_qs, data=raw, headers=sent)

    async def settle(self) -> None:
        """Process what was received and send what was queued (no background workers)."""
        await self.messaging.inbound.drain()
        while await self.messaging.outbox.run_until_idle():
            await self.messaging.inbound.drain()

    def inbound(self, channel: str) -> list[InboundRow]:
        with transaction(self.runtime.sessions) as session:
            return list(session.scalars(select(InboundRow).where(
                InboundRow.channel == channel).order_by(InboundRow.id)))


async def open_gateway(aiohttp_client: Any, settings: Settings,
                       providers: fakes.FakeProviders) -> Gateway:
    client = await aiohttp_client(create_app(settings, workers=False))
    return Gateway(client, providers)


@pytest.fixture
async def gateway(aiohttp_client: Any, channel_settings: Settings,
                  providers: fakes.FakeProviders) -> AsyncIterator[Gateway]:
    """The gateway app (no background workers: tests settle it explicitly)."""
    yield await open_gateway(aiohttp_client, channel_settings, providers)
