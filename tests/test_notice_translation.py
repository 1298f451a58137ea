"""The secretariat's notices reach the applicant in their language: the officer writes in
English or Chinese, the notice goes at once with the line saying a translation will follow,
and when the translation worker has translated it a follow-up message brings the machine
translation, marked as such, with the original quoted. Without a translation the applicant
keeps the original. On SQLite and PostgreSQL; with a fake backend and a real (tiny) Argos
package."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.decisions import decide
from gateway.runtime import Runtime
from gateway.service import now_utc
from gateway.staff import Staff, add_user
from gateway.translation import NoTranslator, argos, argos_installed
from gateway.translation.worker import TranslationWorker
from intake import workflow
from storage import repository
from storage.db import transaction
from storage.models import NoticeTranslation, OutboxMessage
from tests.argos_models import build_package
from tests.conftest import missing_service
from tests.filings import ENGLISH_FILING
from tests.test_translation import (
    FRENCH_FILING,
    Crash,
    CrashingTranslator,
    FakeTranslator,
    file,
    work_off,
)

OFFICERS_WORDS = "Please send the photos of the pipe again.\nThe first ones did not open."


def ask_for_more(runtime: Runtime, reference: str) -> int:
    user = add_user(runtime.sessions, "olivia", "officer", "correct horse battery")
    outcome = decide(runtime, Staff(user.id, "olivia", "officer", 0, "", "api"), reference,
                     workflow.Request("request_supplement", OFFICERS_WORDS, "en"))
    assert outcome.outbox_id is not None
    return outcome.outbox_id


def outbox_row(runtime: Runtime, outbox_id: int) -> OutboxMessage:
    with transaction(runtime.sessions) as session:
        return session.get_one(OutboxMessage, outbox_id)


def waiting_for(runtime: Runtime, sender: str) -> list[dict[str, Any]]:
    """What the applicant gets at their next `gateway chat`."""
    with transaction(runtime.sessions) as session:
        return [row.body for row in repository.undelivered(session, "terminal", sender)]


def test_the_notice_goes_at_once_and_its_translation_follows(runtime: Runtime) -> None:
    application = file(runtime, FRENCH_FILING, sender="amani")
    notice_id = ask_for_more(runtime, application.reference)
    notice = outbox_row(runtime, notice_id).body
    assert OFFICERS_WORDS in notice["text"] and "Une traduction dans votre langue" in \
        notice["text"]
    assert notice["notice"]["translation"] == {"language": "fr", "text": None,
                                               "status": "pending"}

    work_off(TranslationWorker(runtime, FakeTranslator()))
    with transaction(runtime.sessions) as session:
        job = session.query(NoticeTranslation).one()
        assert (job.source_language, job.target_language, job.state) == ("en", "fr", "done")
    slot = outbox_row(runtime, notice_id).body["notice"]["translation"]
    assert slot["status"] == "done" and slot["text"] == f"<fr> {OFFICERS_WORDS}"
    assert slot["machine_translation"] is True and slot["engine"] == "fake"
    follow_up = outbox_row(runtime, slot["follow_up_outbox_id"]).body
    assert follow_up["text"].startswith(
        f"Traduction automatique du message du secrétariat sur votre demande "
        f"{application.reference}")
    assert f"<fr> {OFFICERS_WORDS}" in follow_up["text"]
    assert "traduction automatique" in follow_up["text"] and "(English)" in follow_up["text"]
    assert follow_up["text"].endswith("> Please send the photos of the pipe again.\n"
                                      "> The first ones did not open.")
    assert follow_up["notice_translation"]["of_outbox_id"] == notice_id
    assert [body["text"] for body in waiting_for(runtime, "amani")][-2:] == \
        [notice["text"], follow_up["text"]]
    assert work_off(TranslationWorker(runtime, FakeTranslator())).translated == 0  # once


def test_without_a_translation_the_applicant_keeps_the_original(runtime: Runtime) -> None:
    application = file(runtime, FRENCH_FILING, sender="amani")
    notice_id = ask_for_more(runtime, application.reference)
    TranslationWorker(runtime, NoTranslator("off")).run_round(now_utc())
    assert outbox_row(runtime, notice_id).body["notice"]["translation"]["status"] == "pending"

    runtime.settings.translation_max_attempts = 1
    work_off(TranslationWorker(runtime, FakeTranslator(failing=[OFFICERS_WORDS])))
    assert outbox_row(runtime, notice_id).body["notice"]["translation"]["status"] == "failed"
    from_the_secretariat = [body for body in waiting_for(runtime, "amani")
                            if "notice" in body or "notice_translation" in body]
    assert len(from_the_secretariat) == 1  # the notice, and no follow-up


def test_a_notice_whose_translation_kills_the_worker_is_marked_failed(runtime: Runtime) -> None:
    runtime.settings.translation_max_attempts = 2
    application = file(runtime, FRENCH_FILING, sender="amani")
    work_off(TranslationWorker(runtime, FakeTranslator()))  # the answers' translations
    notice_id = ask_for_more(runtime, application.reference)
    later = timedelta()
    for _ in range(2):  # each time a fresh process, once the dead one's claim ran out
        with pytest.raises(Crash):
            work_off(TranslationWorker(runtime, CrashingTranslator([OFFICERS_WORDS])), later)
        later += timedelta(minutes=10)
        assert outbox_row(runtime, notice_id).body["notice"]["translation"]["status"] == \
            "pending"
    work_off(TranslationWorker(runtime, CrashingTranslator([OFFICERS_WORDS])), later)
    assert outbox_row(runtime, notice_id).body["notice"]["translation"]["status"] == "failed"
    with transaction(runtime.sessions) as session:
        job = session.query(NoticeTranslation).one()
        assert (job.state, job.attempts) == ("failed", 2)
    from_the_secretariat = [body for body in waiting_for(runtime, "amani")
                            if "notice" in body or "notice_translation" in body]
    assert len(from_the_secretariat) == 1  # the notice in the original, and no follow-up


def test_an_english_applicant_gets_no_translation_job(runtime: Runtime) -> None:
    application = file(runtime, ENGLISH_FILING, sender="jane")
    notice_id = ask_for_more(runtime, application.reference)
    assert outbox_row(runtime, notice_id).body["notice"]["translation"]["status"] == \
        "not_needed"
    with transaction(runtime.sessions) as session:
        assert session.query(NoticeTranslation).count() == 0


def test_a_real_argos_package_translates_the_notice(runtime: Runtime, tmp_path: Path) -> None:
    if not argos_installed():
        missing_service("the `translation` extra is not installed")
    argos.install_files(runtime.settings.argos_dir,
                        [build_package(tmp_path, "en", "fr", seed=3)])
    application = file(runtime, FRENCH_FILING, sender="amani")
    notice_id = ask_for_more(runtime, application.reference)
    work_off(TranslationWorker(runtime))
    slot = outbox_row(runtime, notice_id).body["notice"]["translation"]
    assert slot["status"] == "done" and slot["text"].strip()
    assert (slot["engine"], slot["package_version"]) == ("argostranslate", "en-fr 1.0")
    follow_up = outbox_row(runtime, slot["follow_up_outbox_id"]).body
    assert slot["text"] in follow_up["text"] and "> The first ones did not open." in \
        follow_up["text"]
