"""Every part of a reply stays findable by the providers' delivery reports: across the upgrade
that introduced parts (rows sent before it), a key rotation and prune, and the retention purge,
which takes the parts with their draft. Runs on SQLite and PostgreSQL (the `settings` fixture).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import func, select, text, update

from gateway import keys, retention, workers
from gateway.outbox import OutboxSender
from gateway.runtime import Runtime, open_runtime
from gateway.service import now_utc
from gateway.settings import Settings
from intake.messages import OutboundMessage
from storage import delivery, repository
from storage.db import alembic_config, open_engine, session_factory, transaction
from storage.models import Conversation, OutboxMessage, OutboxPart
from storage.sealing import KEYRING
from tests.test_outbox import FakeClient, Provider

PERSON = "+243970000001"


def queue_long_reply(runtime: Runtime) -> tuple[int, int]:
    """A reply to one WhatsApp user; (its conversation, its outbox row)."""
    with transaction(runtime.sessions) as session:
        conversation = repository.new_conversation(session, "whatsapp", PERSON, now_utc())
        [row] = repository.add_outbox(session, conversation, [OutboundMessage("long")],
                                      now_utc())
        return conversation.id, row.id


async def send_in_three_parts(runtime: Runtime) -> list[str]:
    """Send what is due, each reply as three provider messages; their ids, in order."""
    sender = OutboxSender(runtime, {"whatsapp": FakeClient(Provider(), parts=3)})
    await sender.run_until_idle()
    await sender.close()
    return [f"id-{PERSON} long part {n}" for n in (1, 2, 3)]


def report(runtime: Runtime, provider_id: str, status: str) -> bool:
    with transaction(runtime.sessions) as session:
        return delivery.record_report(session, "whatsapp", provider_id, status,
                                      "WhatsApp (131049) not delivered", False, now_utc())


def state_of(runtime: Runtime, outbox_id: int) -> tuple[str, str | None]:
    with transaction(runtime.sessions) as session:
        row = session.get_one(OutboxMessage, outbox_id)
        return row.state, row.delivery_status


@pytest.fixture
def opened(settings: Settings) -> Iterator[Runtime]:
    runtime = open_runtime(settings.model_copy(update={"draft_retention_days": 10}))
    yield runtime
    runtime.close()


async def test_parts_stay_findable_after_a_rotation_and_prune(opened: Runtime) -> None:
    _, outbox_id = queue_long_reply(opened)
    first, _, last = await send_in_three_parts(opened)
    old = opened.keyring.current_id

    keys.rotate(opened, wait=0)
    assert keys.prune(opened, wait=0) == [old]
    assert set(keys.status(opened).values["outbox_parts"]) == {opened.keyring.current_id}

    assert report(opened, last, "delivered")
    assert state_of(opened, outbox_id) == ("sent", None)  # two parts not yet reported
    assert report(opened, first, "failed")
    assert state_of(opened, outbox_id) == ("failed", "failed")


async def test_the_purge_of_an_abandoned_draft_takes_its_replies_parts(opened: Runtime) -> None:
    conversation_id, outbox_id = queue_long_reply(opened)
    first, _, _ = await send_in_three_parts(opened)
    with transaction(opened.sessions) as session:
        session.execute(update(Conversation).where(Conversation.id == conversation_id).values(
            status="expired", expired_at=now_utc() - timedelta(days=11)))

    done = retention.purge(opened, now_utc())
    assert done.rows["outbox"] == 1 and done.rows["outbox_parts"] == 3
    with transaction(opened.sessions) as session:
        assert session.scalar(select(func.count()).select_from(OutboxPart)) == 0
    assert not report(opened, first, "failed")  # a report on it finds nothing any more


async def test_a_report_on_a_message_never_recorded_is_kept_a_day_only(
        opened: Runtime) -> None:
    assert not report(opened, "wamid.sent-by-another-system", "delivered")
    with transaction(opened.sessions) as session:
        session.execute(update(OutboxPart).values(reported_at=now_utc() - timedelta(days=2)))
    assert not report(opened, "wamid.another-one", "failed")
    with transaction(opened.sessions) as session:
        kept = list(session.scalars(select(OutboxPart)))
        assert [part.provider_message_id for part in kept] == ["wamid.another-one"]


# -- the upgrade that introduced parts -------------------------------------------------------


def at_0005_with_a_sent_row(settings: Settings) -> tuple[str, int]:
    """A database as 0005 left it: a reply sent in three parts, the last one's id on the row
    (sealed, its blind index where the id was); (that id, the row)."""
    keyring = keys.open_keyring(settings)
    database = open_engine(settings.effective_database_url)
    config = alembic_config(database.url.render_as_string(hide_password=False))
    with database.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes[KEYRING] = keyring
        command.upgrade(config, "0005_merge")
    provider_id = "SM0123456789abcdef0123456789abcdef"
    with transaction(session_factory(database, keyring)) as session:
        conversation = repository.new_conversation(session, "sms-twilio", PERSON, now_utc())
        [row] = repository.add_outbox(session, conversation, [OutboundMessage("long")],
                                      now_utc())
        row.state, row.parts_sent, row.sent_at = "sent", 3, now_utc()
        row.provider_message_id = provider_id
        session.flush()
        session.execute(text("UPDATE outbox SET provider_message_id = :index WHERE id = :id"),
                        {"index": keyring.index("provider_message",
                                                f"sms-twilio\x00{provider_id}"), "id": row.id})
        outbox_id = row.id
    database.dispose()
    return provider_id, outbox_id


async def test_the_background_round_forgets_a_kept_report_after_a_day(opened: Runtime) -> None:
    # Its sealed id names a person's number on WhatsApp: it goes even if no report follows.
    assert not report(opened, "wamid.never-recorded", "failed")
    assert workers.run_once(opened, now_utc() + timedelta(hours=23)).reports_forgotten == 0
    assert workers.run_once(opened, now_utc() + timedelta(hours=25)).reports_forgotten == 1
    with transaction(opened.sessions) as session:
        assert session.scalar(select(func.count()).select_from(OutboxPart)) == 0


def test_a_reply_sent_before_the_upgrade_is_still_found_by_its_report(
        settings: Settings) -> None:
    provider_id, outbox_id = at_0005_with_a_sent_row(settings)
    runtime = open_runtime(settings)  # upgrades, with the key
    try:
        with transaction(runtime.sessions) as session:
            assert delivery.record_report(session, "sms-twilio", provider_id, "failed",
                                          "Twilio error 30003", False, now_utc())
        assert state_of(runtime, outbox_id) == ("failed", "failed")
        with transaction(runtime.sessions) as session:
            assert session.get_one(OutboxMessage, outbox_id).provider_message_id == provider_id
            part = session.scalars(select(OutboxPart)).one()
            assert (part.provider_message_id, part.part) == (provider_id, 3)
            assert part.sent_at is not None and part.sent_at.tzinfo is not None
    finally:
        runtime.close()


def test_the_upgrade_without_the_key_is_refused_and_says_what_to_run(
        settings: Settings) -> None:
    at_0005_with_a_sent_row(settings)
    with pytest.raises(RuntimeError, match="gateway db upgrade"):
        command.upgrade(alembic_config(settings.effective_database_url), "head")


async def test_a_downgrade_gives_each_row_its_last_parts_index_back(settings: Settings) -> None:
    provider_id, before = at_0005_with_a_sent_row(settings)
    runtime = open_runtime(settings)
    try:
        _, after = queue_long_reply(runtime)
        *_, last = await send_in_three_parts(runtime)
        command.downgrade(alembic_config(settings.effective_database_url), "0005_merge")
        with runtime.database.connect() as connection:
            indexes = {row_id: index for row_id, index in connection.execute(text(
                "SELECT id, provider_message_id FROM outbox"))}
        index = runtime.keyring.index
        assert indexes == {before: index("provider_message", f"sms-twilio\x00{provider_id}"),
                           after: index("provider_message", f"whatsapp\x00{last}")}
    finally:
        runtime.close()
