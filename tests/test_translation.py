"""Machine translation of free-text answers into Chinese and English, off the conversation path.

Real Argos packages (random weights, built once per session by tests/argos_models.py) go
through argostranslate's own install and package code and CTranslate2; fake translators stand
in where a backend must fail, hang or count its calls; a fake LibreTranslate server speaks
the documented HTTP API. Everything runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import select

import gateway.translation
from gateway.app import create_app
from gateway.queue import application_detail, queue_entry
from gateway.runtime import Runtime, open_runtime
from gateway.service import now_utc
from gateway.settings import Settings
from gateway.staff import add_user
from gateway.stats import prometheus_text
from gateway.translation import NoTranslator, argos, argos_installed, build_translator
from gateway.translation.argos import ArgosTranslator, split_sentences
from gateway.translation.libretranslate import LibreTranslateTranslator
from gateway.translation.worker import (
    TranslationRound,
    TranslationWorker,
    start_translation_worker,
)
from gateway.web import RUNTIME
from gateway.workers import run_workers
from intake.form import load_form
from intake.messages import InboundMessage
from intake.translation import (
    Translation,
    TranslationUnavailable,
    free_texts,
    targets_for,
)
from storage import repository, translations
from storage.db import transaction
from storage.models import Application, FieldTranslation
from tests.argos_models import build_package
from tests.conftest import missing_service
from tests.filings import CHINESE_FILING, ENGLISH_FILING

FRENCH = {
    "Hello": "Bonjour",
    "Jane Mwamba": "Jeanne Mwamba",
    "Since March 2026 the river next to the mine is orange.":
        "Depuis mars 2026, la rivière à côté de la mine est orange.",
    "Children who bathe in it have rashes.": "Les enfants qui s'y baignent ont des boutons.",
    "Stop the discharge and clean the river.": "Arrêtez le rejet et nettoyez la rivière.",
    "The discharge pipe of the mine ends in the river.":
        "Le tuyau de rejet de la mine finit dans la rivière.",
    "Photos of the river; twelve neighbours saw the pipe.":
        "Des photos de la rivière ; douze voisins ont vu le tuyau.",
}
FRENCH_FILING = [FRENCH.get(line, line) for line in ENGLISH_FILING]
FRENCH_FILING[ENGLISH_FILING.index("1")] = "fr"  # the answer to the language question
REQUESTS = web.AppKey("requests", list[dict[str, Any]])


# -- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real .argosmodel files, built once: French→English and English→Chinese."""
    if not argos_installed():
        missing_service("the `translation` extra (argostranslate, CTranslate2) is not installed")
    folder = tmp_path_factory.mktemp("argos-packages")
    return {"fr-en": build_package(folder, "fr", "en", seed=1),
            "en-zh": build_package(folder, "en", "zh", seed=2)}


def install(runtime: Runtime, packages: dict[str, Path], *names: str) -> None:
    argos.install_files(runtime.settings.argos_dir, [packages[name] for name in names])


def file(runtime: Runtime, lines: Sequence[str], sender: str | None = None) -> Application:
    """File a whole application like an applicant; the stored application."""
    sender = sender or uuid.uuid4().hex
    delivered: Any = []
    for line in lines:
        delivered = runtime.intake.handle(InboundMessage(
            channel="terminal", sender=sender, provider_message_id=uuid.uuid4().hex, text=line))
    reference = delivered[-1].message.reference
    assert reference, delivered[-1].message.text
    with transaction(runtime.sessions) as session:
        application = repository.application_by_reference(session, reference)
    assert application is not None
    return application


def work_off(worker: TranslationWorker, later: timedelta = timedelta()) -> TranslationRound:
    """Rounds until the worker finds nothing more to do now; what they did together."""
    total = TranslationRound()
    for _ in range(20):
        done = worker.run_round(now_utc() + later)
        total += done
        if not done.busy:
            return total
    raise AssertionError("the worker never ran out of work")


def rows_of(runtime: Runtime, application: Application | None = None) -> list[FieldTranslation]:
    with transaction(runtime.sessions) as session:
        statement = select(FieldTranslation).order_by(FieldTranslation.id)
        if application is not None:
            statement = statement.where(FieldTranslation.application_id == application.id)
        return list(session.scalars(statement))


def detail_of(runtime: Runtime, application: Application) -> dict[str, Any]:
    with transaction(runtime.sessions) as session:
        return application_detail(session, runtime.engine, application)


def entry_of(runtime: Runtime, application: Application) -> dict[str, Any]:
    with transaction(runtime.sessions) as session:
        states = translations.states_by_application(session, [application.id])
    return queue_entry(runtime.engine, application, states.get(application.id, {}))


class FakeTranslator:
    """A backend that echoes, fails on some texts, hangs on others, and counts its calls."""

    engine = "fake"

    def __init__(self, failing: Sequence[str] = (), hanging: Sequence[str] = (),
                 unavailable: bool = False) -> None:
        self.failing = set(failing)
        self.hanging = set(hanging)
        self.unavailable = unavailable
        self.calls: list[tuple[str, ...]] = []
        self.release = threading.Event()

    def supports(self, source: str, target: str) -> bool:
        return True

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[Translation]:
        self.calls.append(tuple(texts))
        if self.unavailable:
            raise TranslationUnavailable("the model is being replaced")
        for text in texts:
            if text in self.hanging:
                self.release.wait(10)
            if text in self.failing:
                raise RuntimeError(f"the model choked on {text[:20]!r}")
        return [Translation(f"<{target}> {text}", "fake", "0.1", source, target)
                for text in texts]


# -- what is translated ----------------------------------------------------------------------


def test_free_text_answers_and_evidence_descriptions_are_translated_not_choices() -> None:
    form = load_form()
    answers = {
        "applicant.category": "individual", "applicant.name": "Jane Mwamba",
        "applicant.count": 4, "applicant.representatives": ["Jane Mwamba", "Joseph Ilunga"],
        "applicant.contact": "+243 970 000 001", "dispute.facts": "The river is orange.",
        "dispute.minerals": ["cobalt"], "dispute.claims": "   ",
        "evidence": [{"kind": "attachment", "filename": "river.png"},
                     {"kind": "description", "text": "Twelve neighbours saw the pipe."}],
    }
    texts = {(t.field_key, t.item): t.text for t in free_texts(form, answers)}
    assert texts == {
        ("applicant.name", 0): "Jane Mwamba",
        ("applicant.representatives", 0): "Jane Mwamba",
        ("applicant.representatives", 1): "Joseph Ilunga",
        ("dispute.facts", 0): "The river is orange.",
        ("evidence", 1): "Twelve neighbours saw the pipe.",
    }
    assert [t.field_key for t in free_texts(form, answers, ["dispute.facts"])] == \
        ["dispute.facts"]


def test_each_text_goes_into_the_working_languages_it_is_not_in() -> None:
    assert targets_for("fr") == ("zh", "en")
    assert targets_for("en") == ("zh",)
    assert targets_for("zh") == ("en",)
    assert targets_for("zh-Hant") == ("en",)


def test_sentences_are_split_at_final_punctuation_and_long_runs_are_cut() -> None:
    assert split_sentences("The river is orange. Children have rashes!  Why?") == \
        ["The river is orange.", "Children have rashes!", "Why?"]
    assert split_sentences("废水流进了水田。停止排放！") == ["废水流进了水田。", "停止排放！"]
    run_on = " ".join(["word"] * 300)
    pieces = split_sentences(run_on)
    assert len(pieces) > 1 and all(len(piece) <= 400 for piece in pieces)
    assert " ".join(pieces) == run_on


# -- Argos packages, for real ------------------------------------------------------------------


def test_packages_install_offline_and_pivot_through_english(tmp_path: Path,
                                                            packages: dict[str, Path]) -> None:
    argos_dir = tmp_path / "argos"
    installed = argos.install_files(argos_dir, [packages["fr-en"], packages["en-zh"]])
    assert [(p.source, p.target, p.version) for p in installed] == \
        [("fr", "en", "1.0"), ("en", "zh", "1.0")]
    assert all(p.path.is_relative_to(argos_dir) for p in installed)
    pairs = argos.routes(argos.installed_packages(argos_dir))
    assert [step.label for step in pairs[("fr", "zh")]] == ["fr-en 1.0", "en-zh 1.0"]
    assert ("zh", "en") not in pairs

    translator = ArgosTranslator(argos_dir)
    texts = ["Depuis mars 2026, la rivière est orange. Les enfants ont des boutons.",
             "Arrêtez le rejet.\n\nNettoyez la rivière."]
    to_chinese = translator.translate(texts, "fr", "zh")
    to_english = translator.translate(texts, "fr", "en")
    assert all(t.text.strip() for t in to_chinese + to_english)
    assert [t.text.count("\n") for t in to_chinese] == [0, 2]  # paragraphs are kept
    assert {(t.engine, t.package_version, t.pivot, t.machine_translation)
            for t in to_chinese} == {("argostranslate", "fr-en 1.0 + en-zh 1.0", "en", True)}
    assert {(t.package_version, t.pivot) for t in to_english} == {("fr-en 1.0", None)}
    with pytest.raises(TranslationUnavailable):
        translator.translate(["你好"], "zh", "en")


def test_a_newer_package_replaces_the_older_one(tmp_path: Path,
                                                packages: dict[str, Path]) -> None:
    argos_dir = tmp_path / "argos"
    older = build_package(tmp_path / "files", "en", "zh", version="1.0")
    newer = build_package(tmp_path / "files", "en", "zh", version="1.2", seed=5)
    argos.install_files(argos_dir, [older])
    argos.install_files(argos_dir, [newer])
    assert [(p.source, p.target, p.version) for p in argos.installed_packages(argos_dir)] == \
        [("en", "zh", "1.2")]
    assert len(list((argos_dir / "packages").iterdir())) == 1


def test_broken_package_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    not_zip = tmp_path / "model.argosmodel"
    not_zip.write_text("hello")
    with pytest.raises(argos.PackageInvalid, match="not a zip"):
        argos.install_files(tmp_path / "argos", [not_zip])
    import zipfile

    no_model = tmp_path / "empty.argosmodel"
    with zipfile.ZipFile(no_model, "w") as archive:
        archive.writestr("translate-en_zh/metadata.json",
                         json.dumps({"from_code": "en", "to_code": "zh"}))
    with pytest.raises(argos.PackageInvalid, match="no CTranslate2 model"):
        argos.install_files(tmp_path / "argos", [no_model])


def test_without_argostranslate_the_gateway_runs_and_says_why_once(
        settings: Settings, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(gateway.translation, "argos_installed", lambda: False)
    translator = build_translator(settings)
    assert isinstance(translator, NoTranslator) and not translator.supports("fr", "zh")
    assert "argostranslate is not installed" in translator.reason
    off = build_translator(settings.model_copy(update={"translation_backend": "none"}))
    assert isinstance(off, NoTranslator) and "GATEWAY_TRANSLATION_BACKEND=none" in off.reason
    runtime = open_runtime(settings)
    try:
        stop = threading.Event()
        stop.set()
        with caplog.at_level("WARNING"):
            TranslationWorker(runtime, translator).run(stop)
    finally:
        runtime.close()
    assert [r.message for r in caplog.records if "not installed" in r.message] == \
        ["translation: argostranslate is not installed; see the README, \"Machine "
         "translation\"; translations stay pending"]


# -- the pipeline and the worker ------------------------------------------------------------------


def test_without_a_package_the_application_is_complete_and_translation_pending(
        runtime: Runtime) -> None:
    application = file(runtime, ENGLISH_FILING)
    round_ = TranslationWorker(runtime).run_round(now_utc())
    assert round_.waiting == 1 and not round_.busy
    entry = entry_of(runtime, application)
    assert all(entry["completeness"].values())
    assert entry["translation"]["status"] == "pending"
    assert entry["translation"]["pending"] == len(rows_of(runtime, application)) > 0
    assert {row.target_language for row in rows_of(runtime, application)} == {"zh"}


def test_installing_a_package_later_backfills_the_pending_translations(
        runtime: Runtime, packages: dict[str, Path], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    application = file(runtime, ENGLISH_FILING)
    worker = TranslationWorker(runtime)
    assert not worker.run_round(now_utc()).busy

    install(runtime, packages, "en-zh")
    done = work_off(worker)
    rows = rows_of(runtime, application)
    assert done.translated == len(rows) and done.failed == 0
    assert all(row.state == "done" and row.text and row.machine_translation for row in rows)
    assert {(row.engine, row.package_version) for row in rows} == \
        {("argostranslate", "en-zh 1.0")}
    assert entry_of(runtime, application)["translation"]["status"] == "done"
    assert f'gateway_translations{{language="zh",state="done"}} {len(rows)}' in \
        prometheus_text(runtime)

    detail = detail_of(runtime, application)
    facts = next(t for t in detail["translations"] if t["field"] == "dispute.facts")
    assert facts["original"] == detail["fields"]["dispute.facts"]
    assert facts["original"].startswith("Since March 2026")  # the original is never changed
    assert facts["zh"]["label"] == "machine translation" and facts["zh"]["text"]
    assert "en" not in facts  # already English
    evidence = [t for t in detail["translations"] if t["field"] == "evidence"]
    assert [t["original"] for t in evidence] == \
        ["Photos of the river; twelve neighbours saw the pipe."]

    monkeypatch.setenv("GATEWAY_DATA_DIR", str(runtime.settings.data_dir))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", runtime.settings.database_url)
    from gateway.cli import main

    assert main(["queue", "show", application.reference]) == 0
    shown = capsys.readouterr().out
    assert "translations (machine translation" in shown
    assert "[machine translation: argostranslate en-zh 1.0]" in shown


def test_french_answers_get_english_directly_and_chinese_through_english(
        runtime: Runtime, packages: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    install(runtime, packages, "fr-en", "en-zh")
    model_calls: list[tuple[str, str]] = []
    run_model = ArgosTranslator._run_model

    def counted(self: ArgosTranslator, step: Any, sentences: list[str]) -> list[list[str]]:
        model_calls.extend((step.label, sentence) for sentence in sentences)
        return run_model(self, step, sentences)
    monkeypatch.setattr(ArgosTranslator, "_run_model", counted)

    application = file(runtime, FRENCH_FILING)
    assert application.language == "fr"
    work_off(TranslationWorker(runtime))
    rows = rows_of(runtime, application)
    assert rows and all(row.state == "done" and row.text for row in rows)
    chinese = [row for row in rows if row.target_language == "zh"]
    english = [row for row in rows if row.target_language == "en"]
    assert len(chinese) == len(english)
    assert {(row.pivot, row.package_version) for row in chinese} == \
        {("en", "fr-en 1.0 + en-zh 1.0")}
    assert {(row.pivot, row.package_version) for row in english} == {(None, "fr-en 1.0")}
    # the French→English step the Chinese goes through is not done a second time
    assert len(model_calls) == len(set(model_calls))


def test_identical_texts_are_translated_once(runtime: Runtime) -> None:
    fake = FakeTranslator()
    worker = TranslationWorker(runtime, fake)
    first = file(runtime, ENGLISH_FILING)
    work_off(worker)
    texts_sent = [text for call in fake.calls for text in call]
    assert len(texts_sent) == len(set(texts_sent))

    second = file(runtime, ENGLISH_FILING)
    calls_before = len(fake.calls)
    again = work_off(worker)
    assert len(fake.calls) == calls_before
    assert again.reused == len(rows_of(runtime, second)) and again.translated == 0
    assert sorted(r.text or "" for r in rows_of(runtime, second)) == \
        sorted(r.text or "" for r in rows_of(runtime, first))


def test_a_changed_answer_gets_a_fresh_job_and_the_stale_result_is_dropped(
        runtime: Runtime) -> None:
    sender = uuid.uuid4().hex
    at_facts = ENGLISH_FILING.index("done")
    for line in ENGLISH_FILING[:at_facts + 1]:
        runtime.intake.handle(InboundMessage("terminal", sender, uuid.uuid4().hex, line))
    now = now_utc()
    with transaction(runtime.sessions) as session:
        jobs = translations.claim(session, "en", "zh", now, 100, now + timedelta(minutes=5))
    facts_job = next(job for job in jobs if job.source_text.startswith("Since March"))
    for line in ("edit dispute.facts", "The river turned red in April.", "done"):
        runtime.intake.handle(InboundMessage("terminal", sender, uuid.uuid4().hex, line))
    with transaction(runtime.sessions) as session:
        stale = translations.record_translation(session, facts_job, Translation(
            "旧的", "fake", "0.1", "en", "zh"), now)
    assert stale is False
    facts = [row for row in rows_of(runtime) if row.field_key == "dispute.facts"]
    assert [(row.source_text, row.state, row.text) for row in facts] == \
        [("The river turned red in April.", "pending", None)]


def test_a_failing_text_is_retried_then_failed_where_the_secretariat_sees_it(
        runtime: Runtime) -> None:
    runtime.settings.translation_max_attempts = 3
    bad = "Kolwezi Mining SARL"
    fake = FakeTranslator(failing=[bad])
    worker = TranslationWorker(runtime, fake)
    application = file(runtime, ENGLISH_FILING)

    first = work_off(worker)
    assert first.retried == 1 and first.translated == len(rows_of(runtime, application)) - 1
    work_off(worker, later=timedelta(hours=2))
    last = work_off(worker, later=timedelta(hours=4))
    assert last.failed == 1
    assert work_off(worker, later=timedelta(hours=8)) == TranslationRound()

    failed = [row for row in rows_of(runtime, application) if row.state == "failed"]
    assert [(row.source_text, row.attempts) for row in failed] == [(bad, 3)]
    assert "choked" in (failed[0].last_error or "")
    entry = entry_of(runtime, application)["translation"]
    assert (entry["status"], entry["failed"], entry["pending"]) == ("failed", 1, 0)
    shown = next(t for t in detail_of(runtime, application)["translations"]
                 if t["original"] == bad)
    assert shown["zh"]["status"] == "failed" and "choked" in shown["zh"]["error"]


def test_a_text_that_hangs_times_out_and_the_others_are_translated(runtime: Runtime) -> None:
    runtime.settings.translation_timeout_seconds = 0.5
    stuck = "The discharge pipe of the mine ends in the river."
    fake = FakeTranslator(hanging=[stuck])
    try:
        application = file(runtime, ENGLISH_FILING)
        done = TranslationWorker(runtime, fake).run_round(now_utc())
    finally:
        fake.release.set()
    rows = rows_of(runtime, application)
    assert done.retried == 1 and done.translated == len(rows) - 1
    waiting = [row for row in rows if row.state != "done"]
    assert [row.source_text for row in waiting] == [stuck]
    assert "TimeoutError" in (waiting[0].last_error or "")


def test_an_unavailable_backend_uses_no_attempts(runtime: Runtime) -> None:
    application = file(runtime, ENGLISH_FILING)
    fake = FakeTranslator(unavailable=True)
    for minutes in (0, 1, 2, 3, 4, 5, 6):
        TranslationWorker(runtime, fake).run_round(now_utc() + timedelta(minutes=minutes))
    rows = rows_of(runtime, application)
    assert fake.calls and all(row.state == "pending" and row.attempts == 0 for row in rows)


def test_text_sent_after_submission_and_chinese_answers_get_their_jobs(
        runtime: Runtime) -> None:
    chinese = file(runtime, CHINESE_FILING, sender="wang")
    runtime.intake.handle(InboundMessage("terminal", "wang", uuid.uuid4().hex,
                                         "昨天晚上排污管被移走了。"))
    rows = rows_of(runtime, chinese)
    assert {row.target_language for row in rows} == {"en"}
    assert [(row.field_key, row.item, row.source_text) for row in rows
            if row.field_key == "supplement"] == [("supplement", 0, "昨天晚上排污管被移走了。")]
    work_off(TranslationWorker(runtime, FakeTranslator()))
    assert all(row.state == "done" for row in rows_of(runtime, chinese))


def test_two_workers_never_claim_the_same_job(runtime: Runtime) -> None:
    file(runtime, ENGLISH_FILING)
    now = now_utc()
    lease = now + timedelta(minutes=5)
    with transaction(runtime.sessions) as session:
        first = translations.claim(session, "en", "zh", now, 3, lease)
    with transaction(runtime.sessions) as session:
        second = translations.claim(session, "en", "zh", now, 3, lease)
    assert len(first) == len(second) == 3
    assert not {job.id for job in first} & {job.id for job in second}
    if runtime.database.dialect.name != "postgresql":
        return  # SQLite lets one writer in at a time; the rest is PostgreSQL's SKIP LOCKED
    with runtime.sessions() as holding:
        held = translations.claim(holding, "en", "zh", now, 2, lease)  # locked, not committed
        with transaction(runtime.sessions) as session:
            meanwhile = translations.claim(session, "en", "zh", now, 100, lease)
        holding.rollback()
    assert held and meanwhile
    assert not {job.id for job in held} & {job.id for job in meanwhile}


class Crash(BaseException):
    """The process dies in the middle of a batch (CTranslate2 aborting, the OOM killer)."""


class CrashingTranslator(FakeTranslator):
    """Kills the worker whenever a batch holds one of `crashing`."""

    def __init__(self, crashing: Sequence[str]) -> None:
        super().__init__()
        self.crashing = set(crashing)

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[Translation]:
        if self.crashing & set(texts):
            self.calls.append(tuple(texts))
            raise Crash
        return super().translate(texts, source, target)


def test_a_text_that_kills_the_worker_fails_alone_and_the_others_are_translated(
        runtime: Runtime) -> None:
    runtime.settings.translation_max_attempts = 3
    bad = "Kolwezi Mining SARL"
    application = file(runtime, ENGLISH_FILING)
    fake = CrashingTranslator([bad])
    crashes, later = 0, timedelta()
    for _ in range(20):
        try:  # a fresh process after each crash, once the dead one's claims ran out
            work_off(TranslationWorker(runtime, fake), later)
            break
        except Crash:
            crashes += 1
            later += timedelta(minutes=10)
    rows = rows_of(runtime, application)
    assert [(row.source_text, row.state) for row in rows if row.state != "done"] == \
        [(bad, "failed")]
    failed = next(row for row in rows if row.state == "failed")
    assert failed.attempts == 3 and "stopped" in (failed.last_error or "")
    assert crashes == 3
    shown = next(t for t in detail_of(runtime, application)["translations"]
                 if t["original"] == bad)
    assert shown["zh"]["status"] == "failed"


def test_a_second_worker_takes_nothing_a_slow_first_worker_is_translating(
        runtime: Runtime) -> None:
    file(runtime, ENGLISH_FILING)
    file(runtime, FRENCH_FILING)
    start = now_utc()
    elapsed = [0.0]  # seconds since the round began, as the first worker's clock reads them
    taken_again: list[str] = []

    class Slow(FakeTranslator):
        """Each batch takes 8 minutes (many long texts on a small CPU)."""

        def translate(self, texts: Sequence[str], source: str, target: str
                      ) -> list[Translation]:
            meanwhile = start + timedelta(seconds=elapsed[0])
            with transaction(runtime.sessions) as session:  # a second worker, meanwhile
                again = translations.claim(session, source, target, meanwhile, 100,
                                           meanwhile + timedelta(minutes=7))
            taken_again.extend(job.source_text for job in again)
            elapsed[0] += 8 * 60
            return super().translate(texts, source, target)

    worker = TranslationWorker(runtime, Slow())
    worker.clock = lambda: elapsed[0]
    done = worker.run_round(start)
    assert len(worker.translator.calls) == 3  # type: ignore[attr-defined]  # en→zh, fr→en, fr→zh
    assert taken_again == []
    assert done.translated == len(rows_of(runtime)) and done.retried == 0
    last = [row for row in rows_of(runtime) if row.source_language == "fr"
            and row.target_language == "zh"]
    assert last and all(row.translated_at is not None and
                        row.translated_at >= start + timedelta(minutes=24) for row in last)


def test_a_backend_that_cannot_load_leaves_the_jobs_pending_and_says_why(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(settings: Settings) -> Any:
        raise OSError("libctranslate2.so.4: cannot open shared object file")
    monkeypatch.setattr("gateway.translation.worker.build_translator", broken)
    runtime.settings.worker_interval_seconds = 0.05
    application = file(runtime, ENGLISH_FILING)
    caplog.set_level(logging.INFO)
    stop = start_translation_worker(runtime)
    try:
        for _ in range(100):
            if "translations stay pending" in caplog.text:
                break
            time.sleep(0.05)
        running = [thread for thread in threading.enumerate()
                   if thread.name == "translation-worker"]
        assert running and running[0].is_alive()
    finally:
        stop(5)
    assert "the argos backend could not be loaded" in caplog.text
    assert "libctranslate2.so.4" in caplog.text and "translations stay pending" in caplog.text
    assert all(row.state == "pending" and row.attempts == 0
               for row in rows_of(runtime, application))


async def test_serve_translates_in_the_background_while_conversations_go_on(
        runtime: Runtime, packages: dict[str, Path]) -> None:
    runtime.settings.worker_interval_seconds = 0.1
    install(runtime, packages, "en-zh")
    task = asyncio.create_task(run_workers(runtime))
    try:
        application = await asyncio.to_thread(file, runtime, ENGLISH_FILING)
        for _ in range(300):
            if entry_of(runtime, application)["translation"]["status"] == "done":
                break
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert entry_of(runtime, application)["translation"]["status"] == "done"


async def test_queue_page_marks_translation_pending(aiohttp_client: Any,
                                                    settings: Settings) -> None:
    client = await aiohttp_client(create_app(settings, workers=False))
    runtime: Runtime = client.app[RUNTIME]
    add_user(runtime.sessions, "olivia", "officer", "correct horse battery")
    await asyncio.to_thread(file, runtime, ENGLISH_FILING)
    login = await (await client.get("/secretariat/login")).text()
    csrf = login.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    await client.post("/secretariat/login", data={
        "csrf": csrf, "username": "olivia", "password": "correct horse battery",
        "next": "/secretariat"})
    page = await (await client.get("/secretariat")).text()
    assert "translation pending" in page


# -- LibreTranslate over HTTP ------------------------------------------------------------------


def fake_libretranslate(api_key: str = "key-1") -> web.Application:
    """A LibreTranslate server as its API documentation describes it."""
    app = web.Application()
    app[REQUESTS] = []

    async def languages(request: web.Request) -> web.Response:
        return web.json_response([
            {"code": "en", "name": "English", "targets": ["fr", "zh-Hans"]},
            {"code": "fr", "name": "French", "targets": ["en", "zh-Hans"]},
            {"code": "zh-Hans", "name": "Chinese", "targets": ["en", "fr"]},
        ])

    async def translate(request: web.Request) -> web.Response:
        body = await request.json()
        app[REQUESTS].append(body)
        if body.get("api_key") != api_key:
            return web.json_response({"error": "Invalid API key"}, status=403)
        if any("boom" in text for text in body["q"]):
            return web.json_response({"error": "Cannot translate text: boom"}, status=500)
        return web.json_response(
            {"translatedText": [f"[{body['target']}] {text}" for text in body["q"]]})

    async def spec(request: web.Request) -> web.Response:
        return web.json_response({"info": {"title": "LibreTranslate", "version": "1.6.4"}})

    app.router.add_get("/languages", languages)
    app.router.add_post("/translate", translate)
    app.router.add_get("/spec", spec)
    return app


async def test_libretranslate_backend_sends_one_request_per_batch(aiohttp_server: Any) -> None:
    server = await aiohttp_server(fake_libretranslate())
    backend = LibreTranslateTranslator(str(server.make_url("/")), "key-1", timeout=5)
    assert await asyncio.to_thread(backend.supports, "fr", "zh")
    assert not await asyncio.to_thread(backend.supports, "sw", "en")
    results = await asyncio.to_thread(backend.translate, ["Bonjour.", "La rivière."], "fr", "zh")
    assert [r.text for r in results] == ["[zh-Hans] Bonjour.", "[zh-Hans] La rivière."]
    assert {(r.engine, r.package_version, r.target_language) for r in results} == \
        {("libretranslate", "LibreTranslate 1.6.4", "zh")}
    assert server.app[REQUESTS] == [{"q": ["Bonjour.", "La rivière."], "source": "fr",
                                       "target": "zh-Hans", "format": "text",
                                       "api_key": "key-1"}]


async def test_libretranslate_errors_say_whose_fault_they_are(aiohttp_server: Any) -> None:
    server = await aiohttp_server(fake_libretranslate())
    url = str(server.make_url("/"))
    with pytest.raises(RuntimeError, match="500: Cannot translate text: boom"):
        await asyncio.to_thread(LibreTranslateTranslator(url, "key-1").translate,
                                ["boom"], "en", "zh")
    with pytest.raises(TranslationUnavailable, match="403: Invalid API key"):
        await asyncio.to_thread(LibreTranslateTranslator(url, "wrong").translate,
                                ["Hello"], "en", "zh")
    await server.close()
    gone = LibreTranslateTranslator(url, "key-1", timeout=2)
    assert not await asyncio.to_thread(gone.supports, "en", "zh")


async def test_worker_with_libretranslate_fills_in_the_translations(
        runtime: Runtime, aiohttp_server: Any) -> None:
    server = await aiohttp_server(fake_libretranslate())
    runtime.settings.translation_backend = "libretranslate"
    runtime.settings.libretranslate_url = str(server.make_url("/"))
    runtime.settings.libretranslate_api_key = SecretStr("key-1")
    application = await asyncio.to_thread(file, runtime, FRENCH_FILING)
    worker = TranslationWorker(runtime)
    done = await asyncio.to_thread(work_off, worker)
    rows = rows_of(runtime, application)
    assert done.translated == len(rows) and all(row.state == "done" for row in rows)
    assert {row.engine for row in rows} == {"libretranslate"}
    assert len(server.app[REQUESTS]) == 2  # one batch per language pair


# -- the command ------------------------------------------------------------------------------


def gateway_command(data_dir: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`gateway …` with a home folder of its own, so anything written there is seen."""
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("GATEWAY_", "XDG_", "ARGOS_"))}
    environment |= {"GATEWAY_DATA_DIR": str(data_dir), "HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True,
                          text=True, env=environment, cwd=data_dir, timeout=180)


@contextlib.contextmanager
def package_index(folder: Path, packages: dict[str, Path]) -> Iterator[str]:
    """An Argos package index (index.json and the files) served on 127.0.0.1."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    folder.mkdir(parents=True, exist_ok=True)
    index = []
    for pair, path in packages.items():
        source, target = pair.split("-")
        (folder / path.name).write_bytes(path.read_bytes())
        index.append({"package_version": "1.0", "argos_version": "1.9.0", "type": "translate",
                      "from_code": source, "from_name": source, "to_code": target,
                      "to_name": target, "links": [base + path.name]})
    (folder / "index.json").write_text(json.dumps(index))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()


def test_translate_install_and_list_keep_to_the_data_folder(tmp_path: Path,
                                                            packages: dict[str, Path]) -> None:
    data, home = tmp_path / "data", tmp_path / "home"
    data.mkdir()
    home.mkdir()
    installed = gateway_command(data, home, "translate", "install", str(packages["fr-en"]))
    assert installed.returncode == 0, installed.stderr
    assert "installed fr→en 1.0" in installed.stdout

    with package_index(tmp_path / "index", {"en-zh": packages["en-zh"]}) as index:
        from_index = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "translate", "install", "--from-index",
             "fr", "zh"], capture_output=True, text=True, cwd=data, timeout=180,
            env={k: v for k, v in os.environ.items()
                 if not k.startswith(("GATEWAY_", "XDG_", "ARGOS_"))}
            | {"GATEWAY_DATA_DIR": str(data), "HOME": str(home),
               "GATEWAY_ARGOS_PACKAGE_INDEX": index})
    assert from_index.returncode == 0, from_index.stderr
    assert "installed en→zh 1.0" in from_index.stdout

    listed = gateway_command(data, home, "translate", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert [(p["from"], p["to"]) for p in found["packages"]] == [("en", "zh"), ("fr", "en")]
    assert {"from": "fr", "to": "zh", "via": "en"} in found["pairs"]
    assert list(home.iterdir()) == []  # nothing in the home folder
    assert (data / "argos" / "packages").is_dir()

    broken = tmp_path / "broken.argosmodel"
    broken.write_text("not a package")
    refused = gateway_command(data, home, "translate", "install", str(broken))
    assert refused.returncode == 1 and "not a zip archive" in refused.stderr
