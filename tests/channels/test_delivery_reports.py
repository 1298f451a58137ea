"""Delivery reports on replies that went out as several provider messages: a long SMS is split
into parts, a long WhatsApp question into a text and its buttons. A report on any part reaches
the reply's outbox row, so the secretariat sees a reply the applicant did not get as failed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.settings import Settings
from intake.messages import OutboundMessage
from storage import repository
from storage.db import transaction
from storage.models import OutboxMessage
from tests.channels.conftest import Gateway, open_gateway
from tests.channels.drivers import (
    SENDERS,
    AfricasTalkingDriver,
    Driver,
    TwilioDriver,
    WhatsAppDriver,
)
from tests.channels.fakes import Delivered, FakeProviders

TWILIO, AFRICASTALKING, WHATSAPP = TwilioDriver(), AfricasTalkingDriver(), WhatsAppDriver()
# Three SMS of 153 characters or fewer (GATEWAY_SMS_MAX_SEGMENTS=1), or three WhatsApp texts.
LONG = {
    "sms": "\n\n".join(f"Paragraph {n} of the secretariat's question about the river: "
                       + "who saw the pipe break, and when? " * 2 for n in (1, 2, 3)),
    "whatsapp": "\n\n".join(f"Paragraph {n}. " + "The river turned red below the mine. " * 100
                            for n in (1, 2, 3)),
}


def long_reply(gateway: Gateway, channel: str) -> int:
    """A long question from the secretariat to the person on `channel`; its outbox row."""
    with transaction(gateway.runtime.sessions) as session:
        now = datetime.now(UTC)
        conversation = repository.new_conversation(session, channel, SENDERS[channel], now)
        conversation.last_inbound_at = now  # inside WhatsApp's 24-hour window
        [row] = repository.add_outbox(session, conversation, [OutboundMessage(
            LONG["whatsapp" if channel == "whatsapp" else "sms"])], now)
        return row.id


def row_of(gateway: Gateway, outbox_id: int) -> OutboxMessage:
    with transaction(gateway.runtime.sessions) as session:
        return session.get_one(OutboxMessage, outbox_id)


def received(gateway: Gateway, channel: str) -> list[Delivered]:
    return gateway.providers.to(channel, SENDERS[channel])


def report(driver: Driver, provider_id: str, status: str) -> Any:
    """The provider's report that one of its messages was delivered or not."""
    if driver.channel == "sms-twilio":
        fixture = "status_delivered" if status == "delivered" else \
            "status_undelivered_unsubscribed"
        payload = driver.fixture(fixture) | {"MessageSid": provider_id, "SmsSid": provider_id}
        if status != "delivered":
            payload |= {"ErrorCode": "30003"}  # unreachable destination handset
        return payload
    if driver.channel == "sms-africastalking":
        fixture = "delivery_report_success" if status == "delivered" else \
            "delivery_report_absent_subscriber"
        return driver.fixture(fixture) | {"id": provider_id}
    fixture = "status_delivered" if status == "delivered" else "status_failed_undeliverable"
    payload = driver.fixture(fixture)
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = provider_id
    return payload


async def tell(gateway: Gateway, driver: Driver, provider_id: str, status: str) -> None:
    assert (await gateway.post(driver, report(driver, provider_id, status))).status == 200


PARTS = pytest.mark.parametrize("driver", [TWILIO, AFRICASTALKING, WHATSAPP],
                                ids=lambda d: d.channel)


@pytest.fixture
async def one_segment(aiohttp_client: Any, channel_settings: Settings,
                      providers: FakeProviders) -> Gateway:
    """The gateway with SMS of one segment each, so a question of a few lines goes as
    several."""
    return await open_gateway(aiohttp_client, channel_settings.model_copy(
        update={"sms_max_segments": 1, "twilio_rate_per_second": 100}), providers)


@PARTS
async def test_a_failed_first_part_marks_the_reply_failed(one_segment: Gateway,
                                                          driver: Driver) -> None:
    gateway = one_segment
    outbox_id = long_reply(gateway, driver.channel)
    await gateway.messaging.outbox.run_until_idle()
    parts = received(gateway, driver.channel)
    assert len(parts) == 3 and row_of(gateway, outbox_id).state == "sent"

    await tell(gateway, driver, parts[0].provider_id, "failed")
    await tell(gateway, driver, parts[2].provider_id, "delivered")  # after the failure

    row = row_of(gateway, outbox_id)
    assert (row.state, row.delivery_status) == ("failed", "failed")
    assert row.last_error


@PARTS
async def test_a_reply_is_delivered_when_every_part_is(one_segment: Gateway,
                                                       driver: Driver) -> None:
    gateway = one_segment
    outbox_id = long_reply(gateway, driver.channel)
    await gateway.messaging.outbox.run_until_idle()
    parts = received(gateway, driver.channel)

    await tell(gateway, driver, parts[-1].provider_id, "delivered")
    assert row_of(gateway, outbox_id).delivery_status is None  # two parts not yet arrived
    await tell(gateway, driver, parts[0].provider_id, "delivered")
    await tell(gateway, driver, parts[1].provider_id, "delivered")
    row = row_of(gateway, outbox_id)
    assert (row.state, row.delivery_status) == ("sent", "delivered")


async def test_parts_sent_before_a_retry_are_still_reported_on(one_segment: Gateway) -> None:
    gateway = one_segment
    outbox_id = long_reply(gateway, "sms-twilio")
    outbox, client = gateway.messaging.outbox, gateway.messaging.clients["sms-twilio"]
    send_part = client.send_part

    async def busy_after_the_first_part(part: Any) -> str:
        if len(received(gateway, "sms-twilio")) == 1:
            gateway.providers.fail_next("sms-twilio", 503, {"code": 20500, "message": "busy"})
        return await send_part(part)

    client.send_part = busy_after_the_first_part  # type: ignore[method-assign]
    await outbox.run_until_idle()
    client.send_part = send_part  # type: ignore[method-assign]
    assert row_of(gateway, outbox_id).state == "pending"  # part 1 went, part 2 will be retried
    outbox.now = lambda: datetime.now(UTC) + timedelta(minutes=5)
    await outbox.run_until_idle()
    parts = received(gateway, "sms-twilio")
    assert len(parts) == 3 and row_of(gateway, outbox_id).state == "sent"

    await tell(gateway, TWILIO, parts[0].provider_id, "failed")  # sent by the first attempt
    assert row_of(gateway, outbox_id).state == "failed"


@PARTS
async def test_a_report_that_comes_before_the_last_part_is_sent_is_kept(
        one_segment: Gateway, driver: Driver) -> None:
    gateway = one_segment
    outbox_id = long_reply(gateway, driver.channel)
    client = gateway.messaging.clients[driver.channel]
    send_part = client.send_part
    first_sent, reported = asyncio.Event(), asyncio.Event()

    async def last_part_waits_for_its_turn(part: Any) -> str:
        if len(received(gateway, driver.channel)) == 2:  # a slow channel: others go first
            first_sent.set()
            await reported.wait()
        return await send_part(part)

    client.send_part = last_part_waits_for_its_turn  # type: ignore[method-assign]
    sending = asyncio.create_task(gateway.messaging.outbox.run_until_idle())
    await first_sent.wait()
    parts = received(gateway, driver.channel)
    await tell(gateway, driver, parts[0].provider_id, "failed")  # the carrier is quick
    reported.set()
    await sending

    assert len(received(gateway, driver.channel)) == 3
    row = row_of(gateway, outbox_id)
    assert (row.state, row.delivery_status) == ("failed", "failed")
