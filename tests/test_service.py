"""The inbound pipeline on a real database (SQLite and PostgreSQL): what the secretariat gets."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from gateway.queue import application_detail, queue_entry
from gateway.runtime import Runtime, open_runtime
from gateway.service import now_utc
from gateway.settings import Settings
from gateway.workers import run_once
from intake.deadlines import formal_review_deadline
from intake.messages import InboundMessage
from intake.translation import SUPPLEMENT
from storage import repository, translations
from storage.db import transaction
from storage.models import Application, Conversation, Evidence, OutboxMessage
from storage.models import InboundMessage as InboundRow
from tests.filings import CHINESE_FILING, ENGLISH_FILING


def send(runtime: Runtime, sender: str, text: str, channel: str = "terminal", **extra):
    """One message from a person, as a channel hands it in."""
    message = InboundMessage(channel=channel, sender=sender,
                             provider_message_id=extra.pop("provider_message_id",
                                                           str(uuid.uuid4())),
                             text=text, **extra)
    return runtime.intake.handle(message)


def file(runtime: Runtime, sender: str, lines: list[str]):
    """Send every line; return the last reply."""
    delivered = []
    for line in lines:
        delivered = send(runtime, sender, line) or []
    return delivered[-1].message


def only_application(runtime: Runtime) -> Application:
    with transaction(runtime.sessions) as session:
        rows = repository.applications(session)
    assert len(rows) == 1
    return rows[0]


def test_english_filing_lands_in_queue_with_reference_and_deadline(runtime: Runtime) -> None:
    receipt = file(runtime, "jane", ENGLISH_FILING)
    application = only_application(runtime)
    assert receipt.reference == application.reference
    assert application.reference in receipt.text
    assert application.formal_review_deadline == \
        formal_review_deadline(application.submitted_at).due
    entry = queue_entry(runtime.engine, application)
    assert entry["completeness"] == {key: True for key in entry["completeness"]}
    assert len(entry["completeness"]) == 9
    assert application.fields["applicant.name"] == "Jane Mwamba"
    assert application.fields["dispute.facts"].startswith("Since March 2026")
    assert "rashes" in application.fields["dispute.facts"]
    assert application.fields["declaration.accepted"] is True
    assert application.language == "en"


def test_deadlines_count_from_when_the_application_was_received_not_processed(
        runtime: Runtime) -> None:
    # Sent on a Thursday at 23:59:50 in Beijing; processed later (a backlog, a restart).
    received = datetime(2026, 11, 19, 23, 59, 50, tzinfo=ZoneInfo("Asia/Shanghai"))
    for line in ENGLISH_FILING[:-1]:
        send(runtime, "jane", line)
    receipt = send(runtime, "jane", ENGLISH_FILING[-1], received_at=received)[-1].message
    application = only_application(runtime)
    assert application.submitted_at == received
    assert application.formal_review_deadline == date(2026, 12, 3)  # Friday's would be 4 Dec
    assert receipt.reference in receipt.text and "December 3, 2026" in receipt.text


def test_chinese_filing_keeps_chinese_text(runtime: Runtime) -> None:
    receipt = file(runtime, "wang", CHINESE_FILING)
    application = only_application(runtime)
    assert application.language == "zh"
    assert application.fields["applicant.name"] == "王家村村民委员会"
    assert "申请编号" in receipt.text and application.reference in receipt.text


def test_every_message_both_ways_is_stored(runtime: Runtime) -> None:
    file(runtime, "jane", ENGLISH_FILING)
    with transaction(runtime.sessions) as session:
        inbound = session.scalar(select(func.count()).select_from(InboundRow))
        outbound = session.scalar(select(func.count()).select_from(OutboxMessage))
        unprocessed = session.scalar(select(func.count()).where(InboundRow.processed_at.is_(None)))
        lines = repository.transcript(session, [c.id for c in session.scalars(
            select(Conversation))])
    assert inbound == len(ENGLISH_FILING)
    assert unprocessed == 0
    assert outbound >= len(ENGLISH_FILING)
    assert [line for line in lines if line[0] == "in"][4][2]["text"] == "Jane Mwamba"


def test_provider_retry_is_acknowledged_not_processed_twice(runtime: Runtime) -> None:
    send(runtime, "amina", "Hello", provider_message_id="m-1")
    first = send(runtime, "amina", "1", provider_message_id="m-2")
    again = send(runtime, "amina", "1", provider_message_id="m-2")
    assert first and again is None
    with transaction(runtime.sessions) as session:
        state = repository.current_conversation(session, "terminal", "amina").state
        count = session.scalar(select(func.count()).select_from(InboundRow))
    assert count == 2
    assert state["current"] == "applicant.on_behalf"


def test_draft_survives_restart_and_continues_where_it_stopped(settings: Settings) -> None:
    first = open_runtime(settings)
    for line in ENGLISH_FILING[:8]:
        send(first, "jane", line)
    first.close()

    second = open_runtime(settings)
    welcome = second.intake.start("terminal", "jane")
    assert "Welcome back" in welcome[0].message.text
    assert welcome[-1].message.awaiting == "respondent.name"
    for line in ENGLISH_FILING[8:]:
        send(second, "jane", line)
    assert only_application(second).fields["applicant.name"] == "Jane Mwamba"
    second.close()


def test_each_sender_has_their_own_draft(runtime: Runtime) -> None:
    for line in ENGLISH_FILING[:5]:
        send(runtime, "jane", line)
    for line in CHINESE_FILING[:3]:
        send(runtime, "wang", line)
    with transaction(runtime.sessions) as session:
        jane = repository.current_conversation(session, "terminal", "jane").state
        wang = repository.current_conversation(session, "terminal", "wang").state
    assert jane["answers"]["applicant.name"] == "Jane Mwamba"
    assert wang["language"] == "zh" and "applicant.name" not in wang["answers"]


def test_evidence_files_and_descriptions_join_the_application(runtime: Runtime) -> None:
    photo = runtime.evidence.store(b"\x89PNG fake river photo", "../../river.png", "image/png")
    lines = ENGLISH_FILING
    at = lines.index("Photos of the river; twelve neighbours saw the pipe.")
    for line in lines[:at]:
        send(runtime, "jane", line)
    send(runtime, "jane", "", attachments=(photo,))
    for line in lines[at:]:
        send(runtime, "jane", line)
    application = only_application(runtime)
    with transaction(runtime.sessions) as session:
        detail = application_detail(session, runtime.engine, application)
    kinds = sorted(item["kind"] for item in detail["evidence"])
    assert kinds == ["attachment", "description"]
    stored = next(i for i in detail["evidence"] if i["kind"] == "attachment")
    assert stored["filename"] == "river.png"
    assert runtime.evidence.read(stored["sha256"]) == b"\x89PNG fake river photo"


def test_after_submission_more_material_joins_and_new_starts_fresh(runtime: Runtime) -> None:
    file(runtime, "jane", ENGLISH_FILING)
    reference = only_application(runtime).reference
    letter = runtime.evidence.store(b"%PDF-1.4 letter", "letter.pdf", "application/pdf")
    reply = send(runtime, "jane", "", attachments=(letter,))
    assert reference in reply[-1].message.text
    send(runtime, "jane", "The pipe was moved last night.")
    status = send(runtime, "jane", "status")
    assert reference in status[-1].message.text
    fresh = send(runtime, "jane", "new")
    assert fresh[-1].message.awaiting == "language"
    with transaction(runtime.sessions) as session:
        application = repository.application_by_reference(session, reference)
        late = [e for e in repository.evidence_of(session, application.id) if e.after_submission]
        notes = [row.text for row in session.scalars(select(InboundRow).where(
            InboundRow.application_id == application.id))]
        conversations = session.scalar(select(func.count()).select_from(Conversation))
    assert [e.filename for e in late] == ["letter.pdf"]
    assert "The pipe was moved last night." in notes
    assert conversations == 2


def test_confidentiality_request_gets_its_own_deadline(runtime: Runtime) -> None:
    lines = list(ENGLISH_FILING)
    at = lines.index("2", lines.index("done", lines.index("Photos of the river; twelve "
                                                         "neighbours saw the pipe.")))
    lines[at:at + 1] = ["1", "My name and phone number", "1, 3", "Until the mediation ends",
                        "I fear losing my job"]
    file(runtime, "jane", lines)
    application = only_application(runtime)
    assert application.confidentiality_requested
    assert application.confidentiality_decision_deadline is not None
    assert application.confidentiality_decision_deadline < application.formal_review_deadline
    assert application.fields["confidentiality.audiences"] == ["respondent", "public"]


@pytest.mark.parametrize(("filing", "request_words", "confirmation"), [
    (ENGLISH_FILING, "request confidentiality", "Your confidentiality request is recorded"),
    (CHINESE_FILING, "申请保密", "您的保密申请已记录"),
])
def test_confidentiality_request_after_submission_is_recorded_on_the_application(
        runtime: Runtime, filing: list[str], request_words: str, confirmation: str) -> None:
    file(runtime, "jane", filing)
    assert not only_application(runtime).confidentiality_requested
    reply = send(runtime, "jane", request_words)
    assert confirmation in reply[-1].message.text
    application = only_application(runtime)
    with transaction(runtime.sessions) as session:
        entry = queue_entry(runtime.engine, application)
        history = [a.action for a in repository.actions_of(session, application.id)]
        material = [job for job in translations.of_application(session, application.id)
                    if job.field_key == SUPPLEMENT]
    assert entry["confidentiality_requested"]
    assert entry["confidentiality_decision_deadline"] is not None
    assert application.confidentiality_decision_deadline < application.formal_review_deadline
    assert application.fields["confidentiality.requested"] is True
    assert history == ["confidentiality_requested"]
    assert material == []


def test_crash_in_processing_keeps_message_and_worker_retries(runtime: Runtime,
                                                              monkeypatch) -> None:
    send(runtime, "jane", "Hello")
    original = runtime.engine.handle

    def broken(*args, **kwargs):
        raise RuntimeError("engine exploded")
    monkeypatch.setattr(runtime.engine, "handle", broken)
    reply = send(runtime, "jane", "1")
    assert "Your message is saved" in reply[-1].message.text
    with transaction(runtime.sessions) as session:
        row = next(r for r in session.scalars(select(InboundRow)) if r.text == "1")
        assert row.processed_at is None and "engine exploded" in row.error

    monkeypatch.setattr(runtime.engine, "handle", original)
    report = run_once(runtime, now_utc() + timedelta(minutes=5))
    assert report.reprocessed == 1
    with transaction(runtime.sessions) as session:
        state = repository.current_conversation(session, "terminal", "jane").state
    assert state["language"] == "en"


def test_idle_draft_gets_one_reminder_then_expires_but_is_kept(runtime: Runtime) -> None:
    for line in ENGLISH_FILING[:6]:
        send(runtime, "jane", line)
    later = now_utc() + timedelta(hours=25)
    assert run_once(runtime, later).reminded == 1
    assert run_once(runtime, later + timedelta(hours=1)).reminded == 0
    assert run_once(runtime, later + timedelta(days=31)).expired == 1
    with transaction(runtime.sessions) as session:
        conversation = repository.current_conversation(session, "terminal", "jane")
        reminders = [row.body for row in session.scalars(select(OutboxMessage))]
        assert conversation.status == "expired"
        assert conversation.state["answers"]["applicant.name"] == "Jane Mwamba"
    assert sum("not finished yet" in body["text"] for body in reminders) == 1
    welcome = runtime.intake.start("terminal", "jane")
    assert welcome[-1].message.awaiting == "applicant.address"


def test_retention_setting_purges_expired_drafts_only(settings: Settings) -> None:
    settings.draft_retention_days = 10
    runtime = open_runtime(settings)
    for line in ENGLISH_FILING[:6]:
        send(runtime, "jane", line)
    file(runtime, "wang", CHINESE_FILING)
    start = now_utc()
    run_once(runtime, start + timedelta(hours=25))
    run_once(runtime, start + timedelta(days=31))
    assert run_once(runtime, start + timedelta(days=42)).purged == 1
    with transaction(runtime.sessions) as session:
        senders = [row.sender for row in session.scalars(select(Conversation))]
        applications = session.scalar(select(func.count()).select_from(Application))
        evidence = session.scalar(select(func.count()).select_from(Evidence))
    assert senders == ["wang"] and applications == 1 and evidence == 1
    runtime.close()


def test_sqlite_write_lock_held_briefly_does_not_lose_the_answer(tmp_path) -> None:
    runtime = open_runtime(Settings(data_dir=tmp_path))
    send(runtime, "jane", "Hello")
    path = runtime.settings.effective_database_url.removeprefix("sqlite:///")
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")
    threading.Timer(1.0, blocker.rollback).start()
    started = time.monotonic()
    reply = send(runtime, "jane", "1")
    assert time.monotonic() - started >= 0.9
    assert reply[-1].message.awaiting == "applicant.on_behalf"
    blocker.close()
    runtime.close()


def test_deliveries_waiting_for_the_write_lock_go_before_processing(tmp_path) -> None:
    """On SQLite, a webhook's delivery (its provider waits for the answer) takes the write
    lock before the processing and sending that queued earlier."""
    runtime = open_runtime(Settings(data_dir=tmp_path))
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with transaction(runtime.sessions):
            holding.set()
            release.wait(5)

    def write(name: str, urgent: bool) -> None:
        with transaction(runtime.sessions, urgent=urgent):
            order.append(name)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    waiters = [threading.Thread(target=write, args=(f"processing {n}", False)) for n in range(3)]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.2)  # the processing transactions are queued on the lock
    delivery = threading.Thread(target=write, args=("delivery", True))
    delivery.start()
    time.sleep(0.2)
    release.set()
    for thread in (holder, *waiters, delivery):
        thread.join(5)
    assert order[0] == "delivery" and sorted(order[1:]) == [f"processing {n}" for n in range(3)]
    # Re-entrant within one thread.
    with transaction(runtime.sessions), transaction(runtime.sessions, urgent=True) as session:
        assert session.scalar(select(func.count()).select_from(InboundRow)) == 0
    runtime.close()


def test_unreachable_database_is_a_clear_error(tmp_path) -> None:
    from storage.db import DatabaseUnavailable

    broken = Settings(data_dir=tmp_path,
                      database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(Exception) as raised:
        open_runtime(broken)
    assert "127.0.0.1" in str(raised.value) or isinstance(raised.value, DatabaseUnavailable)
