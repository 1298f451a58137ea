"""Limits on what comes in: every route refuses an oversized body with 413; the web chat turns a
flood away with 429 (retrying early does not help); webhooks answer 429 to an address that
keeps failing, yet never turn away an authentic delivery; a flooding sender's messages are
stored at once and processed later, never dropped."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import func, select

from gateway.web.limits import body_limit
from storage.db import transaction
from storage.models import Conversation
from tests.channels.conftest import Gateway
from tests.channels.drivers import SENDERS, TelegramDriver, WhatsAppDriver

WHATSAPP, TELEGRAM = WhatsAppDriver(), TelegramDriver()
PLACEHOLDERS = {"reference": "MCM-2026-7K3Q9X", "sha256": "0" * 64, "filename": "gateway.css",
                "inbound_id": "1"}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: PLACEHOLDERS.get(m.group(1), "1"), path)


async def test_every_route_refuses_a_body_over_its_limit_with_413(gateway: Gateway) -> None:
    settings = gateway.runtime.settings
    routes = [(route.method, concrete(route.resource.canonical))
              for route in gateway.client.app.router.routes()
              if route.resource is not None and route.method != "HEAD"]
    assert len(routes) > 20
    answers = {}
    for method, path in routes:
        path = path.rstrip("/") + ("/gateway.css" if path.startswith("/static") else "")
        limit = body_limit(method, path.split("?")[0], settings)
        response = await gateway.client.request(
            method, path + ("?secret=x" if "africastalking" in path else ""),
            data=b"x" * (limit + 1),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        answers[(method, path)] = (response.status, await response.text())
    assert {key: status for key, (status, _) in answers.items() if status != 413} == {}
    assert "at most 1024 bytes" in answers[("GET", "/secretariat")][1]
    assert "too long" in answers[("POST", "/chat/api/messages")][1]  # in the person's words
    assert '"code": "too_large"' in answers[("POST", "/api/session")][1]


async def test_a_chunked_body_over_the_limit_is_refused_while_it_is_read(
        gateway: Gateway) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"username=olivia&password=" + b"x" * 64 * 1024
    response = await gateway.client.post("/secretariat/login", data=chunks(), headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 413 and "too large" in await response.text()


async def say(gateway: Gateway, text: str, browser: str) -> Any:
    """A message from the browser holding this chat cookie (sent by hand: it is Secure)."""
    return await gateway.client.post("/chat/api/messages", headers={
        "Cookie": f"gateway_chat={browser}"}, json={"text": text, "client_id": str(uuid.uuid4())})


async def test_the_web_chat_turns_a_flood_away_and_retrying_early_does_not_help(
        gateway: Gateway) -> None:
    gateway.runtime.settings.chat_messages_per_minute = 3
    browser, other = "b" * 43, "c" * 43
    statuses = [(await say(gateway, text, browser)).status for text in ("Hello", "1", "1")]
    assert statuses == [200] * 3
    refused = await say(gateway, "1", browser)
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "too quickly" in (await refused.json())["error"]
    assert (await say(gateway, "1", browser)).status == 429  # the retry changes nothing
    assert (await say(gateway, "Hello", other)).status == 200  # another browser goes on


async def test_one_address_opening_conversation_after_conversation_is_stopped(
        gateway: Gateway) -> None:
    gateway.runtime.settings.chat_requests_per_minute_per_address = 5
    statuses = []
    for _ in range(8):
        gateway.client.session.cookie_jar.clear()
        statuses.append((await gateway.client.get("/chat")).status)
    assert statuses == [200] * 5 + [429] * 3
    with transaction(gateway.runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Conversation)) == 5


async def test_an_address_that_keeps_failing_gets_429_but_authentic_deliveries_pass(
        gateway: Gateway) -> None:
    gateway.runtime.settings.webhook_refusals_per_minute_per_address = 3
    payload = WHATSAPP.text(SENDERS["whatsapp"], "Hello")
    body = WHATSAPP.encode(payload)
    forged = [(await gateway.post(WHATSAPP, body=body, signed=False,
                                  headers=WHATSAPP.forge(body))).status for _ in range(5)]
    assert forged == [403, 403, 403, 429, 429]
    genuine = await gateway.post(WHATSAPP, payload)
    assert genuine.status == 200
    await gateway.settle()
    assert len(gateway.inbound("whatsapp")) == 1


async def test_a_flooding_sender_is_stored_at_once_and_processed_later_in_order(
        gateway: Gateway) -> None:
    gateway.runtime.settings.inbound_messages_per_minute = 2
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)
    gateway.messaging.inbound.sleep = no_sleep
    texts = ["Hello", "1", "2", "3", "4"]
    for text in texts:
        response = await gateway.post(TELEGRAM, TELEGRAM.text(SENDERS["telegram"], text))
        assert response.status == 200  # stored and answered at once, whatever the rate
    other = await gateway.post(WHATSAPP, WHATSAPP.text(SENDERS["whatsapp"], "Hello"))
    assert other.status == 200
    await gateway.messaging.inbound.drain()
    assert len(waits) == 3 and waits == sorted(waits) and waits[0] > 0
    flooded = gateway.inbound("telegram")
    assert [row.text for row in flooded] == texts
    assert all(row.processed_at is not None for row in flooded)
    assert [r.processed_at for r in flooded] == sorted(r.processed_at for r in flooded)
    assert gateway.inbound("whatsapp")[0].processed_at is not None
