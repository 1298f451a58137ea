"""Retention: drafts abandoned past GATEWAY_DRAFT_RETENTION_DAYS go with their messages and the
evidence files nothing kept refers to; a dry run reports exactly that and changes nothing."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from gateway import keys
from gateway.cli import main
from gateway.runtime import Runtime
from gateway.service import now_utc
from gateway.settings import Settings
from intake.messages import Attachment, InboundMessage
from storage import mail as mail_store
from storage import repository
from storage.db import transaction
from storage.models import Conversation, InboundFile, OutboxMessage
from storage.models import InboundMessage as InboundRow
from tests.filings import ENGLISH_FILING


def draft(runtime: Runtime, sender: str, files: list[Attachment]) -> int:
    """A draft that got as far as the evidence, with these files; its conversation id."""
    at = ENGLISH_FILING.index("Photos of the river; twelve neighbours saw the pipe.")
    for line in ENGLISH_FILING[:at]:
        runtime.intake.handle(InboundMessage("terminal", sender, uuid.uuid4().hex, line))
    runtime.intake.handle(InboundMessage("terminal", sender, uuid.uuid4().hex,
                                         attachments=tuple(files)))
    with transaction(runtime.sessions) as session:
        conversation = repository.current_conversation(session, "terminal", sender)
        assert conversation is not None
        return conversation.id


def counts(runtime: Runtime) -> tuple[int, int, int, int]:
    with transaction(runtime.sessions) as session:
        return tuple(session.scalar(select(func.count()).select_from(model)) or 0
                     for model in (Conversation, InboundRow, OutboxMessage, InboundFile))


def purge(runtime: Runtime, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
          *args: str) -> dict[str, object]:
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(runtime.settings.data_dir))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("GATEWAY_DRAFT_RETENTION_DAYS", "10")
    assert main(["retention", "purge", "--json", *args]) == 0
    report: dict[str, object] = json.loads(capsys.readouterr().out)
    return report


def test_dry_run_reports_then_the_purge_deletes_the_draft_and_its_own_files(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    own = runtime.evidence.accept(b"photo only the abandoned draft sent", "river.txt")
    shared = runtime.evidence.accept(b"letter both people sent", "letter.txt")
    abandoned = draft(runtime, "ana", [own, shared])
    draft(runtime, "ben", [shared])
    with transaction(runtime.sessions) as session:
        session.execute(update(Conversation).where(Conversation.id == abandoned).values(
            status="expired", expired_at=now_utc() - timedelta(days=11)))
    an_hour_ago = time.time() - 7200
    for sha256 in (own.sha256, shared.sha256):
        os.utime(runtime.evidence.path_of(sha256), (an_hour_ago, an_hour_ago))
    before = counts(runtime)

    report = purge(runtime, monkeypatch, capsys, "--dry-run")
    assert [d["id"] for d in report["drafts"]] == [abandoned]  # type: ignore[index]
    assert report["files"] == [own.sha256] and report["files_kept"] == 1
    rows = report["rows"]
    assert isinstance(rows, dict) and rows["conversations"] == 1
    assert rows["inbound_messages"] > 20 and rows["inbound_files"] == 2
    assert counts(runtime) == before  # nothing went
    assert runtime.evidence.path_of(own.sha256).exists()

    done = purge(runtime, monkeypatch, capsys)
    assert done["rows"] == rows and done["files_deleted"] == 1
    assert counts(runtime) == (before[0] - 1, before[1] - rows["inbound_messages"],
                               before[2] - rows["outbox"], before[3] - 2)
    assert not runtime.evidence.path_of(own.sha256).exists()
    assert runtime.evidence.read(shared.sha256) == b"letter both people sent"
    with transaction(runtime.sessions) as session:
        assert repository.current_conversation(session, "terminal", "ben") is not None
        assert repository.current_conversation(session, "terminal", "ana") is None
    assert purge(runtime, monkeypatch, capsys)["drafts"] == []


def test_a_purge_soon_after_a_key_rotation_deletes_the_files_the_dry_run_listed(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    own = runtime.evidence.accept(b"photo only the abandoned draft sent", "river.txt")
    abandoned = draft(runtime, "ana", [own])
    with transaction(runtime.sessions) as session:
        session.execute(update(Conversation).where(Conversation.id == abandoned).values(
            status="expired", expired_at=now_utc() - timedelta(days=11)))
    two_hours_ago = time.time() - 7200
    os.utime(runtime.evidence.path_of(own.sha256), (two_hours_ago, two_hours_ago))

    listed = purge(runtime, monkeypatch, capsys, "--dry-run")["files"]
    assert keys.rotate(runtime, wait=0).files == 1  # the file is sealed again, a new key
    done = purge(runtime, monkeypatch, capsys)
    assert done["files"] == listed == [own.sha256] and done["files_deleted"] == 1
    assert not runtime.evidence.path_of(own.sha256).exists()


def test_without_a_retention_setting_nothing_is_purged(settings: Settings,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    monkeypatch.delenv("GATEWAY_DRAFT_RETENTION_DAYS", raising=False)
    assert main(["db", "upgrade"]) == 0
    assert main(["retention", "purge", "--dry-run"]) == 0
    assert "drafts are kept" in capsys.readouterr().out


def expire(runtime: Runtime, conversation_id: int, days_ago: float) -> None:
    """The draft expired this many days ago (the worker's expiry, moved back in time)."""
    with transaction(runtime.sessions) as session:
        session.execute(update(Conversation).where(Conversation.id == conversation_id).values(
            status="expired", expired_at=now_utc() - timedelta(days=days_ago)))


def exists(runtime: Runtime, conversation_id: int) -> bool:
    with transaction(runtime.sessions) as session:
        return session.get(Conversation, conversation_id) is not None


def test_a_message_waiting_for_a_person_keeps_its_draft_until_handled(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    abandoned = draft(runtime, "ana", [])
    with transaction(runtime.sessions) as session:
        doubtful = session.scalars(select(InboundRow.id).where(
            InboundRow.conversation_id == abandoned).order_by(InboundRow.id.desc())).first()
        assert doubtful is not None
        # What the e-mail intake records for a mail whose attachment it could not keep.
        session.execute(update(InboundRow).where(InboundRow.id == doubtful).values(
            needs_person="a file was not kept (too large)"))
    expire(runtime, abandoned, days_ago=11)

    assert purge(runtime, monkeypatch, capsys, "--dry-run")["drafts"] == []
    assert purge(runtime, monkeypatch, capsys)["drafts"] == []
    with transaction(runtime.sessions) as session:
        assert [row.id for row in mail_store.needing_person(session)] == [doubtful]
        mail_store.mark_handled(session, doubtful, "olivia", now_utc())
    assert [d["id"] for d in purge(runtime, monkeypatch, capsys)["drafts"]] == [abandoned]
    assert not exists(runtime, abandoned)


def test_a_person_who_comes_back_as_the_purge_runs_keeps_their_draft(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    abandoned = draft(runtime, "ana", [])
    expire(runtime, abandoned, days_ago=11)
    # Their message is stored; its processing waits (the sender's rate, a busy instance).
    inbound_id = runtime.intake.receive(InboundMessage("terminal", "ana", uuid.uuid4().hex,
                                                       "I am back, sorry"))
    assert inbound_id is not None

    assert purge(runtime, monkeypatch, capsys, "--dry-run")["drafts"] == []
    assert purge(runtime, monkeypatch, capsys)["drafts"] == []
    replies = runtime.intake.process(inbound_id)
    with transaction(runtime.sessions) as session:
        conversation = repository.current_conversation(session, "terminal", "ana")
        assert conversation is not None and conversation.id == abandoned
        assert conversation.status == "draft" and conversation.state["answers"]
    assert replies and not any("Welcome" in reply.message.text for reply in replies)


def test_at_the_boundary_the_dry_run_lists_exactly_what_the_purge_deletes(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    older = draft(runtime, "ana", [])
    younger = draft(runtime, "ben", [])
    expire(runtime, older, days_ago=10 + 1 / 24)     # an hour past the 10 days
    expire(runtime, younger, days_ago=10 - 1 / 24)   # an hour to go
    listed = purge(runtime, monkeypatch, capsys, "--dry-run")
    done = purge(runtime, monkeypatch, capsys)
    assert [d["id"] for d in listed["drafts"]] == [d["id"] for d in done["drafts"]] == [older]
    assert listed["rows"] == done["rows"] and listed["files"] == done["files"]
    assert not exists(runtime, older) and exists(runtime, younger)


def test_nothing_submitted_goes_with_an_abandoned_draft(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    photo = runtime.evidence.accept(b"photo of the river", "river.txt")
    at = ENGLISH_FILING.index("Photos of the river; twelve neighbours saw the pipe.")
    for line in [*ENGLISH_FILING[:at]]:
        runtime.intake.handle(InboundMessage("terminal", "cleo", uuid.uuid4().hex, line))
    runtime.intake.handle(InboundMessage("terminal", "cleo", uuid.uuid4().hex,
                                         attachments=(photo,)))
    for line in ENGLISH_FILING[at + 1:]:
        delivered = runtime.intake.handle(InboundMessage("terminal", "cleo", uuid.uuid4().hex,
                                                         line))
    assert delivered and delivered[-1].message.reference
    abandoned = draft(runtime, "ana", [photo])          # the same photo, in a draft
    expire(runtime, abandoned, days_ago=11)
    old = time.time() - 7200
    os.utime(runtime.evidence.path_of(photo.sha256), (old, old))
    before = counts(runtime)

    done = purge(runtime, monkeypatch, capsys)
    assert [d["id"] for d in done["drafts"]] == [abandoned]
    assert done["files"] == [] and done["files_kept"] == 1
    assert runtime.evidence.read(photo.sha256) == b"photo of the river"
    with transaction(runtime.sessions) as session:
        application = repository.application_by_reference(
            session, delivered[-1].message.reference)
        assert application is not None and application.status == "submitted"
        assert [e.sha256 for e in repository.evidence_of(session, application.id)] == \
            [photo.sha256]
    assert counts(runtime)[0] == before[0] - 1
