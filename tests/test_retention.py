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
    assert main(["retention", "purge", "--dry-run"]) == 0
    assert "drafts are kept" in capsys.readouterr().out
