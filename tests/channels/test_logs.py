"""Secrets and applicants never reach the logs, even at DEBUG: a whole filing over SMS and
WhatsApp, a provider error quoting the person's number, the web chat, a secretariat login and
decision through the API, and the translation worker, with every logger at DEBUG."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest

from gateway.keys import KEY_FILE
from gateway.redaction import MASK
from gateway.service import now_utc
from gateway.staff import add_user
from gateway.translation.worker import TranslationWorker
from intake.translation import Translation
from tests.channels import fakes
from tests.channels.conftest import open_gateway
from tests.channels.drivers import (
    AT_SECRET,
    SENDERS,
    TELEGRAM_SECRET,
    WHATSAPP_APP_SECRET,
    WHATSAPP_VERIFY_TOKEN,
    Driver,
    TwilioDriver,
    WhatsAppDriver,
)
from tests.filings import ENGLISH_FILING

PASSWORD = "correct horse battery staple"


class Echo:
    engine = "echo"

    def supports(self, source: str, target: str) -> bool:
        return True

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[Translation]:
        return [Translation(f"<{target}> {t}", "echo", "1", source, target) for t in texts]


async def file_over(gateway: Any, driver: Driver) -> str:
    """A whole application typed on this channel; the receipt's text."""
    sender, last = SENDERS[driver.channel], None
    for line in ENGLISH_FILING:
        response = await gateway.post(driver, driver.answer(sender, line, last))
        assert response.status == 200
        await gateway.settle()
        last = gateway.providers.to(driver.channel, sender)[-1]
    assert last is not None
    return last.text


async def test_nothing_secret_or_personal_is_logged_at_debug(
        aiohttp_client: Any, channel_settings: Any, providers: fakes.FakeProviders,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = await open_gateway(aiohttp_client, channel_settings, providers)
    runtime = gateway.runtime
    providers.fail_next("sms-twilio", 400, {
        "code": 21211, "message": f"The 'To' number {SENDERS['sms-twilio']} is not valid."})
    await file_over(gateway, TwilioDriver())
    receipt = await file_over(gateway, WhatsAppDriver())
    reference = receipt.split("MCM-", 1)[1][:11]
    web = await gateway.client.post("/chat/api/messages", json={"text": "Jane Mwamba"})
    assert web.status == 200

    add_user(runtime.sessions, "olivia", "supervisor", PASSWORD)
    login = await gateway.client.post("/api/session", json={"username": "olivia",
                                                            "password": PASSWORD})
    token = (await login.json())["token"]
    headers = {"Authorization": f"Bearer {token}"}
    shown = await gateway.client.get(f"/api/applications/MCM-{reference}", headers=headers)
    assert (await shown.json())["fields"]["applicant.name"] == "Jane Mwamba"
    acted = await gateway.client.post(
        f"/api/applications/MCM-{reference}/actions", headers=headers,
        json={"action": "request_supplement", "message": "Jane Mwamba, send the photos."})
    assert acted.status == 200
    await gateway.settle()
    TranslationWorker(runtime, Echo()).run_round(now_utc())
    await gateway.client.delete("/api/session", headers=headers)

    logged = caplog.text
    assert len(caplog.records) > 100  # DEBUG was on: the database, the server, the workers
    secrets = [fakes.TELEGRAM_TOKEN, fakes.WHATSAPP_TOKEN, fakes.TWILIO_TOKEN, fakes.AT_KEY,
               WHATSAPP_APP_SECRET, TELEGRAM_SECRET, AT_SECRET, WHATSAPP_VERIFY_TOKEN,
               PASSWORD, token, token.split(".")[0],
               (runtime.settings.data_dir / KEY_FILE).read_text().strip(),
               (runtime.settings.data_dir / "secret_key").read_text().strip()]
    personal = ["Jane Mwamba", "Kasulo", "970 000 001", "243970000001", "+243970000001",
                "Kolwezi Mining SARL"]
    assert [s for s in secrets + personal if s in logged] == []
    assert "is not valid" in logged and MASK in logged  # the provider's error, number masked
