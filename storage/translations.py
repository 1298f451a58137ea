"""Repository functions for machine translations of free-text answers; they never commit.

A `FieldTranslation` row is both the job and its result. Jobs are queued in the transaction
that stores the answer; the worker claims due jobs of one language pair (`FOR UPDATE SKIP
LOCKED` on PostgreSQL, so several workers share the queue), translates outside any
transaction, and records each result only if the answer did not change in the meantime.

The same job functions serve the secretariat's notices (`NoticeTranslation`, queued with the
notice): they take the job model as `model`, free-text answers by default.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import cast

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.orm import Session

from intake.translation import SUPPLEMENT, SourceText, Translation, targets_for
from storage.crypto import Keyring
from storage.models import FieldTranslation, NoticeTranslation, TranslationJob
from storage.sealing import keyring_of

Model = type[FieldTranslation] | type[NoticeTranslation]


def text_index(keyring: Keyring, text: str) -> str:
    """The key identical texts share: a keyed HMAC, so a guessed name cannot be tested."""
    return keyring.index("translation_text", text)


def queue_answers(session: Session, conversation_id: int, texts: Sequence[SourceText],
                  keys: Collection[str], source_language: str, now: datetime,
                  application_id: int | None = None) -> None:
    """Make the jobs of these field keys match the answers' texts.

    A new or changed text gets fresh jobs (in the conversation's language now); an unchanged
    one keeps its jobs and their results; a text no longer answered loses them.
    """
    if not keys:
        return
    existing: dict[tuple[str, int], list[FieldTranslation]] = {}
    # Read without flushing first: what the caller changed in this session is elsewhere (the
    # conversation), and goes out in one flush with these jobs.
    with session.no_autoflush:
        for row in session.scalars(_jobs_of_fields(), {"conversation_id": conversation_id,
                                                       "keys": list(keys)}):
            existing.setdefault((row.field_key, row.item), []).append(row)
    for source in texts:
        rows = existing.pop((source.field_key, source.item), [])
        if rows and all(row.source_text == source.text for row in rows):
            continue
        for row in rows:
            session.delete(row)
        if rows:
            session.flush()  # deleted before their replacements are inserted (unique key)
        _add_jobs(session, conversation_id, application_id, source, source_language, now)
    for rows in existing.values():  # texts no longer answered; deleted at the next flush
        for row in rows:
            session.delete(row)


@cache
def _jobs_of_fields() -> Select[FieldTranslation]:
    """`queue_answers`' query, built once (it runs at most turns)."""
    return select(FieldTranslation).where(
        FieldTranslation.conversation_id == bindparam("conversation_id"),
        FieldTranslation.field_key.in_(bindparam("keys", expanding=True)))


def queue_supplement(session: Session, conversation_id: int, application_id: int | None,
                     text: str, source_language: str, now: datetime) -> None:
    """Jobs for a text sent after submission; each such text is the next item."""
    last = session.scalar(select(func.max(FieldTranslation.item)).where(
        FieldTranslation.conversation_id == conversation_id,
        FieldTranslation.field_key == SUPPLEMENT))
    item = 0 if last is None else last + 1
    _add_jobs(session, conversation_id, application_id, SourceText(SUPPLEMENT, item, text),
              source_language, now)
    session.flush()


def _add_jobs(session: Session, conversation_id: int, application_id: int | None,
              source: SourceText, source_language: str, now: datetime) -> None:
    for target in targets_for(source_language):
        session.add(FieldTranslation(
            conversation_id=conversation_id, application_id=application_id,
            field_key=source.field_key, item=source.item, source_language=source_language,
            target_language=target, source_text=source.text,
            source_sha256=text_index(keyring_of(session), source.text), state="pending",
            attempts=0, next_attempt_at=now, machine_translation=True, created_at=now))


def queue_notice(session: Session, outbox_id: int, application_id: int | None, text: str,
                 source_language: str, target_language: str, now: datetime) -> None:
    """A job for the officer's words of a notice, into the applicant's language."""
    session.add(NoticeTranslation(
        outbox_id=outbox_id, application_id=application_id, source_language=source_language,
        target_language=target_language, source_text=text,
        source_sha256=text_index(keyring_of(session), text), state="pending", attempts=0,
        next_attempt_at=now, machine_translation=True, created_at=now))
    session.flush()


def attach_to_application(session: Session, conversation_id: int, application_id: int) -> None:
    """On submission, the conversation's translations become the application's."""
    session.execute(update(FieldTranslation)
                    .where(FieldTranslation.conversation_id == conversation_id)
                    .values(application_id=application_id))


# -- the worker's side ------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """A claimed job: what to translate, and how to recognise the row when recording."""

    id: int
    source_text: str
    source_sha256: str
    attempts: int
    model: Model = field(default=FieldTranslation)


def due_pairs(session: Session, now: datetime, model: Model = FieldTranslation
              ) -> list[tuple[str, str]]:
    """The language pairs (source, target) that have jobs waiting."""
    statement = (select(model.source_language, model.target_language)
                 .where(model.state == "pending", model.next_attempt_at <= now)
                 .distinct())
    return sorted((str(s), str(t)) for s, t in session.execute(statement))


def claim(session: Session, source: str, target: str, now: datetime, limit: int,
          lease_until: datetime, model: Model = FieldTranslation) -> list[Job]:
    """Take up to `limit` due jobs of one pair: each counts an attempt and is hidden from
    other workers until `lease_until` (if this worker dies, the job comes back then).

    A job tried before (a failure, or a worker that died translating its batch) is taken
    alone, never in a batch with others, and untried jobs go first: a text that kills the
    translator then costs no other text more than the one attempt."""
    due: list[TranslationJob] = list(session.scalars(
        select(model)
        .where(model.state == "pending", model.next_attempt_at <= now,
               model.source_language == source, model.target_language == target)
        .order_by(model.id).limit(limit).with_for_update(skip_locked=True)))
    rows = [row for row in due if row.attempts == 0] or due[:1]
    for row in rows:
        row.attempts += 1
        row.next_attempt_at = lease_until
    session.flush()
    return [Job(row.id, row.source_text, row.source_sha256, row.attempts, model)
            for row in rows]


def give_up_unfinished(session: Session, source: str, target: str, now: datetime,
                       max_attempts: int, model: Model = FieldTranslation) -> list[int]:
    """Mark `failed` the due jobs of one pair that used up their attempts without a result
    (the worker died or was stopped during each: a text that crashes the translator); their
    ids. Otherwise such a job would be claimed again after every lease, for ever."""
    rows: list[TranslationJob] = list(session.scalars(
        select(model)
        .where(model.state == "pending", model.next_attempt_at <= now,
               model.source_language == source, model.target_language == target,
               model.attempts >= max_attempts)
        .order_by(model.id).with_for_update(skip_locked=True)))
    for row in rows:
        row.state = "failed"
        row.last_error = (f"no result after {row.attempts} attempts: the translation stopped "
                          f"each time (the worker crashed, was stopped or timed out)")
    session.flush()
    return [row.id for row in rows]


def earlier_translations(session: Session, source: str, target: str,
                         hashes: Collection[str], model: Model = FieldTranslation
                         ) -> dict[str, TranslationJob]:
    """Finished translations of the same texts, by their blind index (identical texts are
    translated once)."""
    if not hashes:
        return {}
    rows = cast(Sequence[TranslationJob], session.scalars(select(model).where(
        model.state == "done", model.source_language == source,
        model.target_language == target,
        model.source_sha256.in_(list(hashes))).order_by(model.id.desc())).all())
    found: dict[str, TranslationJob] = {}
    for row in rows:
        found.setdefault(row.source_sha256, row)
    return found


def _still_claimed(session: Session, job: Job) -> TranslationJob | None:
    """The job's row, unless its answer changed or it was finished since it was claimed."""
    row = cast(TranslationJob | None, session.get(job.model, job.id, with_for_update=True))
    if row is None or row.state != "pending" or row.source_sha256 != job.source_sha256:
        return None
    return row


def record_translation(session: Session, job: Job, translation: Translation,
                       now: datetime) -> bool:
    """Store a finished translation beside the original; False if the job went stale."""
    row = _still_claimed(session, job)
    if row is None:
        return False
    row.state = "done"
    row.text = translation.text
    row.engine = translation.engine
    row.package_version = translation.package_version
    row.pivot = translation.pivot
    row.machine_translation = translation.machine_translation
    row.translated_at = now
    row.last_error = None
    return True


def record_failure(session: Session, job: Job, error: str, retry_at: datetime,
                   max_attempts: int) -> str | None:
    """Count a failed attempt: retry later, or `failed` for good; the new state, or None."""
    row = _still_claimed(session, job)
    if row is None:
        return None
    row.last_error = error[:2000]
    if row.attempts >= max_attempts:
        row.state = "failed"
    else:
        row.next_attempt_at = retry_at
    return row.state


def release(session: Session, job: Job, retry_at: datetime) -> None:
    """Give a job back without counting the attempt (the translator was unavailable)."""
    row = _still_claimed(session, job)
    if row is not None:
        row.attempts = max(row.attempts - 1, 0)
        row.next_attempt_at = retry_at


# -- what the secretariat sees -----------------------------------------------------------


def states_by_application(session: Session, application_ids: Collection[int]
                          ) -> dict[int, dict[str, int]]:
    """For each application, how many of its translations are pending, done or failed."""
    if not application_ids:
        return {}
    rows = session.execute(
        select(FieldTranslation.application_id, FieldTranslation.state, func.count())
        .where(FieldTranslation.application_id.in_(list(application_ids)))
        .group_by(FieldTranslation.application_id, FieldTranslation.state))
    states: dict[int, dict[str, int]] = {}
    for application_id, state, count in rows:
        if application_id is not None:
            states.setdefault(application_id, {})[str(state)] = int(count)
    return states


def of_application(session: Session, application_id: int) -> list[FieldTranslation]:
    """Every translation of an application."""
    return list(session.scalars(
        select(FieldTranslation).where(FieldTranslation.application_id == application_id)
        .order_by(FieldTranslation.field_key, FieldTranslation.item, FieldTranslation.id)))


def pending_by_pair(session: Session) -> dict[tuple[str, str], int]:
    """How many jobs wait for each language pair (what installing a package would fill)."""
    rows = session.execute(
        select(FieldTranslation.source_language, FieldTranslation.target_language, func.count())
        .where(FieldTranslation.state == "pending")
        .group_by(FieldTranslation.source_language, FieldTranslation.target_language))
    return {(str(s), str(t)): int(n) for s, t, n in rows}

