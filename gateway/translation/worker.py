"""The translation worker: fills in the Chinese and English of free-text answers, off the
conversation path.

It runs in a thread of its own beside the other workers (`gateway serve`, `gateway worker`);
CTranslate2 releases the GIL while it translates, so conversations are answered meanwhile.
One round takes the due jobs of each language pair the backend covers, a batch at a time,
reuses earlier translations of identical texts, translates each remaining text once, and
records every result in one transaction. A batch that fails or hangs is retried text by text,
so one bad text fails alone; a job is retried with backoff and marked `failed`, with the
error, after GATEWAY_TRANSLATION_MAX_ATTEMPTS tries. A job tried before is claimed alone, so a
text that kills the process (and with it the batch's record) costs no other text more than one
attempt, and once its last claim runs out without a result it is marked `failed` too. Each
claim's lease counts from when it is taken, however long the round's earlier batches took.

The secretariat's notices are jobs too (into the applicant's language, from Chinese or
English): when one is done, its follow-up message to the applicant is queued in the same
transaction that records it (gateway.decisions.deliver_translation).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from gateway.decisions import deliver_translation, translation_failed
from gateway.runtime import Runtime
from gateway.service import now_utc
from gateway.translation import NoTranslator, build_translator
from intake.translation import Translation, TranslationUnavailable, Translator
from storage import translations
from storage.db import transaction
from storage.models import FieldTranslation, NoticeTranslation, TranslationJob
from storage.translations import Job, Model

# What the worker translates: free-text answers (into Chinese and English), then notices.
JOB_MODELS: tuple[Model, ...] = (FieldTranslation, NoticeTranslation)

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_BACKOFF = timedelta(hours=1)
Outcome = Translation | Exception


@dataclass(frozen=True)
class TranslationRound:
    """What one round did."""

    translated: int = 0  # jobs the backend translated
    reused: int = 0  # jobs filled from an earlier translation of the identical text
    retried: int = 0  # jobs whose attempt failed and that will be tried again
    failed: int = 0  # jobs that used up their attempts
    waiting: int = 0  # language pairs with due jobs that the backend does not cover

    def __add__(self, other: TranslationRound) -> TranslationRound:
        return TranslationRound(*(a + b for a, b in zip(self.__dict__.values(),
                                                         other.__dict__.values(), strict=True)))

    @property
    def busy(self) -> bool:
        """Whether the round touched any job (so another may find more at once)."""
        return bool(self.translated or self.reused or self.retried or self.failed)


class TranslationWorker:
    """Translation jobs, claimed from the database and translated by one backend."""

    def __init__(self, runtime: Runtime, translator: Translator | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.translator = translator or build_translator(runtime.settings)
        self._waiting_told: set[tuple[str, str]] = set()
        self.clock: Callable[[], float] = time.monotonic
        self._round_start = (now_utc(), self.clock())

    def run(self, stop: threading.Event) -> None:
        """Rounds until `stop` is set; idle rounds sleep the worker interval."""
        reason = getattr(self.translator, "reason", None)
        if reason:
            log.warning("translation: %s; translations stay pending", reason)
        while not stop.is_set():
            try:
                busy = self.run_round(now_utc()).busy
            except Exception:  # noqa: BLE001 - log, and try again after a pause
                log.exception("translation round failed")
                busy = False
            if not busy:
                stop.wait(self.settings.worker_interval_seconds)

    def run_round(self, now: datetime) -> TranslationRound:
        """One batch for each covered language pair with due jobs; English targets first, so
        a pivot through English reuses what was just translated."""
        report = TranslationRound()
        self._round_start = (now, self.clock())
        for model in JOB_MODELS:
            with transaction(self.runtime.sessions) as session:
                pairs = translations.due_pairs(session, now, model)
            covered = [pair for pair in pairs if self.translator.supports(*pair)]
            self._tell_waiting([pair for pair in pairs if pair not in covered])
            report += TranslationRound(waiting=len(pairs) - len(covered))
            for source, target in sorted(covered, key=lambda pair: (pair[0], pair[1] != "en")):
                report += self._batch(source, target, model)
        return report

    def _now(self) -> datetime:
        """The round's time plus what has passed since it began: a lease taken after a slow
        batch of another pair must still last its full length."""
        start, started = self._round_start
        return start + timedelta(seconds=self.clock() - started)

    def _batch(self, source: str, target: str, model: Model = FieldTranslation
               ) -> TranslationRound:
        """Claim, translate and record one batch of one language pair."""
        now = self._now()
        lease_until = now + timedelta(seconds=3 * self.settings.translation_timeout_seconds + 60)
        with transaction(self.runtime.sessions) as session:
            given_up = translations.give_up_unfinished(
                session, source, target, now, self.settings.translation_max_attempts, model)
            for job_id in given_up:
                log.warning("translation job %d: given up, its translation never finished",
                            job_id)
                if model is NoticeTranslation:
                    translation_failed(session, session.get_one(NoticeTranslation, job_id))
            jobs = translations.claim(session, source, target, now,
                                      self.settings.translation_batch_size, lease_until, model)
            hashes = {job.source_sha256 for job in jobs}
            earlier = {sha: _translation_of(row) for sha, row in
                       translations.earlier_translations(session, source, target, hashes,
                                                         model).items()}
        if not jobs:
            return TranslationRound(failed=len(given_up))
        texts = list(dict.fromkeys(job.source_text for job in jobs
                                   if job.source_sha256 not in earlier))
        outcomes = self._translate(texts, source, target) if texts else {}
        return self._record(jobs, earlier, outcomes, self._now()) + \
            TranslationRound(failed=len(given_up))

    def _translate(self, texts: list[str], source: str, target: str) -> dict[str, Outcome]:
        """Each text's translation or error; a failed batch is retried text by text."""
        timeout = self.settings.translation_timeout_seconds
        try:
            results = _with_timeout(lambda: self.translator.translate(texts, source, target),
                                    timeout)
            return dict(zip(texts, _checked(texts, results), strict=True))
        except TranslationUnavailable as error:
            return dict.fromkeys(texts, error)
        except Exception as error:  # noqa: BLE001 - whatever the backend raised, per text
            if len(texts) == 1:
                return {texts[0]: error}
            log.warning("translation of %d texts %s→%s failed (%s); trying them one by one",
                        len(texts), source, target, _describe(error))
            return {text: self._translate([text], source, target)[text] for text in texts}

    def _record(self, jobs: Sequence[Job], earlier: dict[str, Translation],
                outcomes: dict[str, Outcome], now: datetime) -> TranslationRound:
        """Store every job's result, retry or failure in one transaction."""
        counts = dict.fromkeys(("translated", "reused", "retried", "failed"), 0)
        with transaction(self.runtime.sessions) as session:
            for job in jobs:
                outcome = earlier.get(job.source_sha256) or outcomes[job.source_text]
                if isinstance(outcome, Translation):
                    if translations.record_translation(session, job, outcome, now):
                        counts["reused" if job.source_sha256 in earlier else "translated"] += 1
                        self._done(session, job, now)
                elif isinstance(outcome, TranslationUnavailable):
                    translations.release(session, job, now + timedelta(
                        seconds=self.settings.worker_interval_seconds))
                else:
                    state = translations.record_failure(
                        session, job, _describe(outcome), now + _backoff(job.attempts),
                        self.settings.translation_max_attempts)
                    if state == "failed" and job.model is NoticeTranslation:
                        translation_failed(session, session.get_one(NoticeTranslation, job.id))
                    if state:
                        counts["failed" if state == "failed" else "retried"] += 1
                        log.warning("translation job %d (attempt %d): %s", job.id,
                                    job.attempts, _describe(outcome))
        return TranslationRound(**counts)

    def _done(self, session: Any, job: Job, now: datetime) -> None:
        """What follows a finished job: for a notice, the follow-up message to the applicant."""
        if job.model is NoticeTranslation:
            deliver_translation(self.runtime.engine.catalogs, session,
                                session.get_one(NoticeTranslation, job.id), now)

    def _tell_waiting(self, pairs: list[tuple[str, str]]) -> None:
        """Say once per language pair that its jobs wait for a package."""
        for source, target in pairs:
            if (source, target) not in self._waiting_told:
                self._waiting_told.add((source, target))
                log.info("translation %s→%s pending: the %s backend does not cover it "
                         "(`gateway translate install` adds a package)", source, target,
                         self.translator.engine)


def start_translation_worker(runtime: Runtime) -> Callable[[float], None]:
    """Run the worker in a daemon thread; returns `stop(timeout)`, which ends it."""
    stop = threading.Event()

    def work() -> None:
        # Built in the thread: loading a backend (CTranslate2) must not hold up the caller.
        try:
            translator = build_translator(runtime.settings)
        except Exception as error:  # noqa: BLE001 - without a backend, jobs wait (and say so)
            log.exception("translation: the %s backend could not be loaded",
                          runtime.settings.translation_backend)
            translator = NoTranslator(f"the {runtime.settings.translation_backend} backend "
                                      f"could not be loaded ({_describe(error)})")
        TranslationWorker(runtime, translator).run(stop)
    thread = threading.Thread(target=work, name="translation-worker", daemon=True)
    thread.start()

    def stop_worker(timeout: float) -> None:
        stop.set()
        thread.join(timeout)
    return stop_worker


def _translation_of(row: TranslationJob) -> Translation:
    """A stored translation, to copy to a job with the identical text."""
    return Translation(row.text or "", row.engine or "", row.package_version or "",
                       row.source_language, row.target_language, row.machine_translation,
                       row.pivot)


def _checked(texts: Sequence[str], results: Sequence[Translation]) -> list[Translation]:
    """The backend's results, if there is one non-empty text for every text."""
    if len(results) != len(texts):
        raise ValueError(f"{len(results)} translations for {len(texts)} texts")
    if any(not result.text.strip() for result in results):
        raise ValueError("empty translation")
    return list(results)


def _with_timeout(work: Callable[[], T], timeout: float) -> T:
    """Run `work` in a thread of its own; TimeoutError if it has not ended after `timeout`
    (the thread is left to finish: a stuck call cannot be killed, only no longer waited for)."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            outcome["error"] = error
    thread = threading.Thread(target=run, name="translation-call", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no translation after {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def _backoff(attempts: int) -> timedelta:
    """30 s after the first failure, doubling, at most an hour."""
    return min(timedelta(seconds=30 * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
