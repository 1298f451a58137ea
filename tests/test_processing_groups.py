"""Messages of different people processed together, in one transaction
(IntakeService.process_many, as `gateway serve` does under load), on SQLite and PostgreSQL:
each person gets what one-by-one processing gives them, a message that fails does so alone,
and a delivery waiting to be acknowledged is not kept behind a long group."""

from __future__ import annotations

import contextlib
import threading
import uuid

import pytest
from pydantic import SecretStr
from sqlalchemy import event, func, select

from gateway.runtime import Runtime, open_runtime
from gateway.settings import Settings
from intake.messages import InboundMessage
from storage import repository
from storage.crypto import new_key
from storage.db import DatabaseUnavailable, reading, transaction
from storage.models import Conversation, OutboxMessage
from storage.models import InboundMessage as InboundRow
from tests.filings import CHINESE_FILING, ENGLISH_FILING


def store(runtime: Runtime, sender: str, text: str) -> int:
    message = InboundMessage(channel="whatsapp", sender=sender,
                             provider_message_id=str(uuid.uuid4()), text=text)
    inbound_id = runtime.intake.receive(message)
    assert inbound_id is not None
    return inbound_id


def replies(runtime: Runtime, sender: str) -> list[str]:
    with transaction(runtime.sessions) as session:
        conversations = select(Conversation.id).where(
            repository.by_sender(session, Conversation, "whatsapp", sender))
        rows = session.scalars(select(OutboxMessage).where(
            OutboxMessage.conversation_id.in_(conversations)).order_by(OutboxMessage.id))
        return [row.body["text"] for row in rows]


def test_filings_processed_in_groups_match_one_by_one(runtime: Runtime) -> None:
    people = {"+243810000001": ENGLISH_FILING, "+243810000002": CHINESE_FILING,
              "+243810000003": ENGLISH_FILING}
    alone = "+243810000009"
    for line in ENGLISH_FILING:  # the reference: one message, one transaction
        runtime.intake.process(store(runtime, alone, line))
    for step in range(max(len(lines) for lines in people.values())):
        ids = [store(runtime, sender, lines[step]) for sender, lines in people.items()
               if step < len(lines)]
        outcomes = runtime.intake.process_many(ids)
        assert all(isinstance(outcome, list) and outcome for outcome in outcomes), outcomes
    expected = replies(runtime, alone)
    for sender, lines in people.items():
        got = replies(runtime, sender)
        if lines is ENGLISH_FILING:
            # The same conversation, word for word but for the reference number at the end.
            assert got[:-1] == expected[:-1]
        assert "申请编号" in got[-1] if lines is CHINESE_FILING else "reference" in got[-1]
    with transaction(runtime.sessions) as session:
        references = [a.reference for a in repository.applications(session)]
        unprocessed = session.scalars(select(InboundRow).where(
            InboundRow.processed_at.is_(None))).all()
    assert len(set(references)) == 4 and unprocessed == []


def conversations_of(runtime: Runtime, sender: str) -> int:
    with transaction(runtime.sessions) as session:
        return session.scalar(select(func.count()).select_from(Conversation).where(
            repository.by_sender(session, Conversation, "whatsapp", sender))) or 0


def test_one_persons_messages_in_one_group_keep_to_one_conversation(runtime: Runtime) -> None:
    # The dispatcher never groups one person's messages, but a caller of process_many may:
    # the second message must find the conversation the first one opened.
    together, alone = "+243810000201", "+243810000202"
    runtime.intake.process_many([store(runtime, together, line) for line in ENGLISH_FILING[:4]])
    for line in ENGLISH_FILING[:4]:
        runtime.intake.process(store(runtime, alone, line))
    assert conversations_of(runtime, together) == 1
    assert replies(runtime, together) == replies(runtime, alone)


def test_a_group_during_a_key_rotation_continues_everyones_conversation(
        settings: Settings) -> None:
    # People who began under the old key write again after a new key became current (the
    # rotation has not resealed their conversations yet): each goes on where they were.
    old = new_key()
    people = [f"+24381000030{n}" for n in range(3)]
    before = open_runtime(settings.model_copy(update={"encryption_key": SecretStr(old)}))
    try:
        for line in ENGLISH_FILING[:2]:
            before.intake.process_many([store(before, person, line) for person in people])
    finally:
        before.close()
    both = settings.model_copy(update={"encryption_key": SecretStr(f"{new_key()},{old}")})
    runtime = open_runtime(both)
    try:
        runtime.intake.process_many([store(runtime, person, ENGLISH_FILING[2])
                                     for person in people])
        for line in ENGLISH_FILING[:3]:
            runtime.intake.process(store(runtime, "+243810000309", line))
        expected = replies(runtime, "+243810000309")
        for person in people:
            assert conversations_of(runtime, person) == 1
            assert replies(runtime, person) == expected
    finally:
        runtime.close()


def test_a_new_persons_first_messages_on_two_instances_open_one_conversation(
        settings: Settings, monkeypatch) -> None:
    # Each instance received one of the two and processes it at the same moment; both look
    # for the person's conversation before either has opened it.
    first, second = open_runtime(settings), open_runtime(settings)
    try:
        person = "+243810000777"
        ids = [store(first, person, "Hello"), store(second, person, "I want to complain")]
        both_looked = threading.Barrier(2, timeout=2)
        look_up = repository.current_conversation

        def looked_up_together(session, channel, sender):  # type: ignore[no-untyped-def]
            found = look_up(session, channel, sender)
            # Broken when the other instance waits for this one's transaction (PostgreSQL).
            with contextlib.suppress(threading.BrokenBarrierError):
                both_looked.wait()
            return found
        monkeypatch.setattr(repository, "current_conversation", looked_up_together)
        threads = [threading.Thread(target=runtime.intake.process, args=(inbound_id,))
                   for runtime, inbound_id in ((first, ids[0]), (second, ids[1]))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert conversations_of(first, person) == 1
        assert replies(first, person).count(replies(first, person)[0]) == 1  # one welcome
    finally:
        first.close()
        second.close()


def test_a_message_that_fails_in_a_group_fails_alone(runtime: Runtime, monkeypatch) -> None:
    ids = [store(runtime, f"+24381000010{n}", "Hello") for n in range(3)]
    runtime.intake.process_many(ids)
    ids = [store(runtime, f"+24381000010{n}", "1") for n in range(3)]
    original = runtime.engine.handle

    def broken_for_the_second(state, message, context):
        if message.sender == "+243810000101":
            raise RuntimeError("engine exploded")
        return original(state, message, context)
    monkeypatch.setattr(runtime.engine, "handle", broken_for_the_second)
    outcomes = runtime.intake.process_many(ids)
    assert [isinstance(outcome, list) and bool(outcome) for outcome in outcomes] == \
        [True, True, True]  # the second gets the apology, the message kept
    with transaction(runtime.sessions) as session:
        rows = [session.get_one(InboundRow, inbound_id) for inbound_id in ids]
        assert [row.processed_at is not None for row in rows] == [True, False, True]
        assert "engine exploded" in rows[1].error and rows[1].attempts == 1
    assert "Your message is saved" in replies(runtime, "+243810000101")[-1]
    assert replies(runtime, "+243810000100")[-1] == replies(runtime, "+243810000102")[-1]


@pytest.mark.parametrize("group", [1, 3], ids=["alone", "in-a-group"])
def test_a_database_outage_leaves_messages_unprocessed_without_an_apology(
        runtime: Runtime, monkeypatch, group: int) -> None:
    ids = [store(runtime, f"+24381000030{n}", "Hello") for n in range(group)]

    def unavailable(*args: object) -> None:
        raise DatabaseUnavailable("connection refused")
    monkeypatch.setattr(runtime.intake, "_process_in", unavailable)
    outcomes = runtime.intake.process_many(ids)
    assert all(isinstance(outcome, DatabaseUnavailable) for outcome in outcomes)
    with transaction(runtime.sessions) as session:
        rows = [session.get_one(InboundRow, inbound_id) for inbound_id in ids]
        # Not a failure of the message: no attempt spent, no error, tried again later.
        assert [(row.processed_at, row.attempts, row.error) for row in rows] == \
            [(None, 0, None)] * group
    assert all(replies(runtime, f"+24381000030{n}") == [] for n in range(group))
    monkeypatch.undo()
    assert all(isinstance(outcome, list) and outcome
               for outcome in runtime.intake.process_many(ids))


def test_a_waiting_delivery_splits_a_group_into_transactions(runtime: Runtime,
                                                             monkeypatch) -> None:
    ids = [store(runtime, f"+24381000020{n}", "Hello") for n in range(4)]
    commits: list[int] = []
    event.listen(runtime.database, "commit", lambda connection: commits.append(1))
    runtime.intake.process_many(ids[:2])
    assert len(commits) == 1  # nothing waiting: one transaction for the group
    monkeypatch.setattr("gateway.service.urgent_writer_waiting", lambda sessions: True)
    commits.clear()
    runtime.intake.process_many(ids[2:])
    assert len(commits) == 2  # a delivery waits: each message committed before it goes
    with transaction(runtime.sessions) as session:
        assert all(session.get_one(InboundRow, i).processed_at for i in ids)


def test_a_reading_transaction_does_not_wait_for_a_writer(runtime: Runtime) -> None:
    inbound_id = store(runtime, "+243810000301", "Hello")
    holding, release = threading.Event(), threading.Event()

    def write() -> None:
        with transaction(runtime.sessions) as session:
            session.get_one(InboundRow, inbound_id).attempts = 3
            session.flush()
            holding.set()
            release.wait(5)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert holding.wait(5)
        with reading(runtime.sessions) as session:  # at once, and sees what is committed
            assert session.get_one(InboundRow, inbound_id).attempts == 0
    finally:
        release.set()
        writer.join(5)
