"""WhatsApp's 24-hour window: a message that falls outside it is announced by a template and
held until the person writes; whenever they write, it reaches them, once, without their having
to write a second time, even when their message comes in while the template is on its way."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from intake.messages import OutboundMessage
from storage import repository
from storage.db import transaction
from storage.models import OutboxMessage
from tests.channels.conftest import Gateway
from tests.channels.drivers import SENDERS, WhatsAppDriver

WHATSAPP = WhatsAppDriver()
PERSON = SENDERS["whatsapp"]
QUESTION = "A question from the secretariat: when did the river turn red?"


async def say(gateway: Gateway, text: str) -> None:
    response = await gateway.post(WHATSAPP, WHATSAPP.text(PERSON, text))
    assert response.status == 200
    await gateway.messaging.inbound.drain()


def question_after_a_day_of_silence(gateway: Gateway) -> int:
    """The secretariat asks a question a day after the person last wrote; its outbox row."""
    with transaction(gateway.runtime.sessions) as session:
        talk = repository.current_conversation(session, "whatsapp", PERSON)
        assert talk is not None
        talk.last_inbound_at = datetime.now(UTC) - timedelta(hours=25)
        [row] = repository.add_outbox(session, talk, [OutboundMessage(QUESTION)],
                                      datetime.now(UTC))
        return row.id


def state_of(gateway: Gateway, outbox_id: int) -> str:
    with transaction(gateway.runtime.sessions) as session:
        return session.scalar(select(OutboxMessage.state).where(OutboxMessage.id == outbox_id))


def received(gateway: Gateway) -> list[str]:
    return [d.text for d in gateway.providers.to("whatsapp", PERSON)]


async def test_a_person_who_writes_while_the_template_is_sent_gets_the_held_message(
        gateway: Gateway) -> None:
    await say(gateway, "Hello")
    await gateway.messaging.outbox.run_until_idle()
    outbox_id = question_after_a_day_of_silence(gateway)
    client = gateway.messaging.clients["whatsapp"]
    send_part = client.send_part
    in_flight, answered = asyncio.Event(), asyncio.Event()

    async def template_answered_late(part: Any) -> str:
        if part["type"] == "template":  # Meta takes its time to accept the template
            in_flight.set()
            await answered.wait()
        return await send_part(part)

    client.send_part = template_answered_late  # type: ignore[method-assign]
    sending = asyncio.create_task(gateway.messaging.outbox.run_until_idle())
    await in_flight.wait()
    await say(gateway, "1")  # the person writes meanwhile: the window is open again
    answered.set()
    await sending
    await gateway.messaging.outbox.run_until_idle()  # the sender's next round

    assert received(gateway).count("[template mcm_new_message]") == 1
    assert received(gateway).count(QUESTION) == 1  # without writing a second time
    assert state_of(gateway, outbox_id) == "sent"
    await gateway.messaging.outbox.run_until_idle()
    assert received(gateway).count(QUESTION) == 1


async def test_a_person_who_wrote_before_the_template_went_is_not_asked_to_write_again(
        gateway: Gateway) -> None:
    await say(gateway, "Hello")
    await gateway.messaging.outbox.run_until_idle()
    outbox_id = question_after_a_day_of_silence(gateway)
    await gateway.messaging.outbox.run_until_idle()
    assert state_of(gateway, outbox_id) == "held"  # no word from them since
    assert received(gateway)[-1] == "[template mcm_new_message]"

    await say(gateway, "1")
    await gateway.messaging.outbox.run_until_idle()
    assert received(gateway).count(QUESTION) == 1
    assert received(gateway).count("[template mcm_new_message]") == 1
    assert state_of(gateway, outbox_id) == "sent"


async def test_a_message_held_in_an_earlier_conversation_goes_when_the_person_writes_in_a_newer(
        gateway: Gateway) -> None:
    await say(gateway, "Hello")
    await gateway.messaging.outbox.run_until_idle()
    outbox_id = question_after_a_day_of_silence(gateway)  # on their first application
    with transaction(gateway.runtime.sessions) as session:  # they began another one since
        first = repository.current_conversation(session, "whatsapp", PERSON)
        assert first is not None
        newer = repository.new_conversation(session, "whatsapp", PERSON, datetime.now(UTC))
        newer.state, newer.last_inbound_at = first.state, first.last_inbound_at
    await gateway.messaging.outbox.run_until_idle()
    assert state_of(gateway, outbox_id) == "held"

    await say(gateway, "1")  # the answer to the template: in their newer conversation
    await gateway.messaging.outbox.run_until_idle()
    assert received(gateway).count(QUESTION) == 1
    assert received(gateway).count("[template mcm_new_message]") == 1
    assert state_of(gateway, outbox_id) == "sent"


async def test_a_template_that_cannot_be_delivered_shows_the_held_message_failed(
        gateway: Gateway) -> None:
    await say(gateway, "Hello")
    await gateway.messaging.outbox.run_until_idle()
    outbox_id = question_after_a_day_of_silence(gateway)
    await gateway.messaging.outbox.run_until_idle()
    template = gateway.providers.to("whatsapp", PERSON)[-1]
    assert template.text == "[template mcm_new_message]"

    undeliverable = WHATSAPP.fixture("status_failed_undeliverable")
    undeliverable["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = template.provider_id
    assert (await gateway.post(WHATSAPP, undeliverable)).status == 200
    assert state_of(gateway, outbox_id) == "failed"  # the person will not hear of it


LONG_QUESTION = "\n\n".join(f"Question {n}. " + "When did the river turn red? " * 130
                            for n in (1, 2, 3))  # three WhatsApp messages


async def test_a_long_message_whose_window_closed_halfway_is_announced_and_not_repeated(
        gateway: Gateway) -> None:
    await say(gateway, "Hello")
    outbox = gateway.messaging.outbox
    await outbox.run_until_idle()
    with transaction(gateway.runtime.sessions) as session:
        talk = repository.current_conversation(session, "whatsapp", PERSON)
        assert talk is not None
        talk.last_inbound_at = datetime.now(UTC) - timedelta(hours=23, minutes=59)
        [row] = repository.add_outbox(session, talk, [OutboundMessage(LONG_QUESTION)],
                                      datetime.now(UTC))
        outbox_id = row.id
    client = gateway.messaging.clients["whatsapp"]
    send_part = client.send_part

    async def busy_after_the_first_part(part: Any) -> str:
        if received(gateway)[-1].startswith("Question 1."):
            gateway.providers.fail_next("whatsapp", 500, {"error": {"code": 131000,
                                                                    "message": "busy"}})
        return await send_part(part)

    client.send_part = busy_after_the_first_part  # type: ignore[method-assign]
    await outbox.run_until_idle()
    client.send_part = send_part  # type: ignore[method-assign]
    assert state_of(gateway, outbox_id) == "pending"  # one part went; the window then closed
    outbox.now = lambda: datetime.now(UTC) + timedelta(minutes=5)
    await outbox.run_until_idle()
    assert received(gateway)[-1] == "[template mcm_new_message]"
    assert state_of(gateway, outbox_id) == "held"

    await say(gateway, "1")
    await outbox.run_until_idle()
    texts = received(gateway)
    assert [text[:11] for text in texts if text.startswith("Question")] == [
        "Question 1.", "Question 2.", "Question 3."]
    assert state_of(gateway, outbox_id) == "sent"
