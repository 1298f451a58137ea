"""A message held for WhatsApp's 24-hour window and a person who writes at the same moment, on
PostgreSQL with the person's message processed by another instance: whichever commits first,
the message reaches them without their writing again, once."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gateway.outbox import OutboxSender
from gateway.providers import WHATSAPP_WINDOW, Rendering
from gateway.runtime import Runtime
from intake.messages import OutboundMessage
from storage import delivery, repository
from storage.db import transaction
from storage.delivery import Claim
from storage.models import OutboxMessage
from tests.postgres_locks import lock_waited_or_done
from tests.test_outbox import FakeClient, Provider

PERSON = "+243970000001"
TEMPLATE = "[template mcm_new_message]"


class WindowedClient(FakeClient):
    """WhatsApp as the outbox sees it: inside the window the message, outside a template that
    announces it (the row is held)."""

    def render(self, claim: Claim, message: OutboundMessage, words: Any, now: datetime
               ) -> Rendering:
        if claim.last_inbound_at is not None and now - claim.last_inbound_at < WHATSAPP_WINDOW:
            return Rendering([message.text], "session")
        return Rendering([TEMPLATE], "template:mcm_new_message", hold=True)


class OtherInstance:
    """Another gateway instance processing the person's message: its transaction has locked
    the conversation, recorded that they wrote and released what was held (nothing yet), and
    commits when told."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.begun, self.commit = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._process)

    def _process(self) -> None:
        with transaction(self.runtime.sessions) as session:
            conversation = repository.current_conversation(session, "whatsapp", PERSON)
            assert conversation is not None
            conversation.last_inbound_at = datetime.now(UTC)
            session.flush()
            delivery.release_held(session, [conversation.id], datetime.now(UTC))
            self.begun.set()
            self.commit.wait(10)


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
async def test_a_message_processed_while_the_template_is_recorded_releases_it(
        runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        conversation = repository.new_conversation(session, "whatsapp", PERSON,
                                                   datetime.now(UTC))
        conversation.last_inbound_at = datetime.now(UTC) - timedelta(hours=25)
        [row] = repository.add_outbox(session, conversation,
                                      [OutboundMessage("A question from the secretariat")],
                                      datetime.now(UTC))
    provider, other = Provider(), OtherInstance(runtime)

    async def person_writes_as_the_template_goes(part: str) -> None:
        if part == TEMPLATE:
            other.thread.start()
            await asyncio.to_thread(other.begun.wait, 10)

    sender = OutboxSender(runtime, {"whatsapp": WindowedClient(
        provider, before_send=person_writes_as_the_template_goes)})
    recording = asyncio.create_task(sender.send_due())
    # The sender records the template sent: it waits for the other's commit, or records first.
    await asyncio.to_thread(lock_waited_or_done, runtime, recording.done)
    other.commit.set()
    await recording
    await asyncio.to_thread(other.thread.join)
    await sender.run_until_idle()
    await sender.close()

    assert provider.received == {TEMPLATE: 1, "A question from the secretariat": 1}
    with transaction(runtime.sessions) as session:
        assert session.scalar(select(OutboxMessage.state).where(
            OutboxMessage.id == row.id)) == "sent"
