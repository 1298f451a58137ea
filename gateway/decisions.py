"""The secretariat's actions on an application, each applied whole or not at all.

One transaction per action: the application row is locked (and its version checked), the
workflow rules are asked, the status changes, the history and the audit log get their rows,
and the notice to the applicant is queued in the outbox of the conversation they filed in.
Two officers deciding at once: the second waits for the lock, then finds a new version or a
new status and is refused with 409; nothing of theirs is written.

A notice carries the officer's original text and, for the applicant's language, a translation
slot. Until a machine translation is available the slot is marked `pending` and the applicant
reads the original with a line saying a translation will follow. A translation job is queued
with the notice; when the translation worker has done it (`deliver_translation`), a follow-up
message brings the applicant the translation, marked as machine translation, with the original
quoted, and the slot is filled. If no translation can be made, the original stays what they have.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm.exc import StaleDataError

from gateway.runtime import Runtime
from gateway.service import now_utc
from gateway.staff import Staff, audit_event
from intake import workflow
from intake.catalog import RIGHT_TO_LEFT, Catalogs
from intake.messages import OutboundMessage
from storage import repository, translations
from storage.db import transaction, with_retry
from storage.models import (
    Application,
    ApplicationAction,
    Conversation,
    NoticeTranslation,
    OutboxMessage,
)

# The parts of each notice after the head (`notice.<action>` is the head).
NOTICE_TAILS = {
    "request_supplement": "notice.supplement_reply",
    "reject": "notice.apply_again",
    "refuse_confidentiality": "notice.confidentiality_refused_next",
}


class NotFound(Exception):
    """No application has this reference."""


@dataclass(frozen=True)
class Outcome:
    """What an action did."""

    reference: str
    action: str
    status: str
    version: int
    outbox_id: int | None


def confidentiality_of(application: Application) -> workflow.ConfidentialityState:
    """The application's confidentiality request as the workflow rules see it."""
    audiences = application.fields.get("confidentiality.audiences") or []
    return workflow.ConfidentialityState(
        requested=application.confidentiality_requested,
        decision=application.confidentiality_decision,
        audiences=tuple(a for a in audiences if isinstance(a, str)))


def decide(runtime: Runtime, staff: Staff, reference: str, request: workflow.Request,
           expected_version: int | None = None) -> Outcome:
    """Apply one action; NotFound, or workflow.NotAllowed with the reason, change nothing."""
    try:
        return with_retry(lambda: _decide(runtime, staff, reference, request,
                                          expected_version))
    except StaleDataError as error:
        raise workflow.NotAllowed("conflict", _CHANGED) from error


_CHANGED = ("Someone else changed this application a moment ago. Reload it to see what was "
            "done, then decide again.")


def _decide(runtime: Runtime, staff: Staff, reference: str, request: workflow.Request,
            expected_version: int | None) -> Outcome:
    with transaction(runtime.sessions) as session:
        application = repository.application_for_update(session, reference)
        if application is None:
            raise NotFound(reference)
        if expected_version is not None and application.version != expected_version:
            raise workflow.NotAllowed("conflict", _CHANGED)
        action = workflow.check(request, staff.role, application.status,
                                confidentiality_of(application))
        now = now_utc()
        from_status = application.status
        _apply(application, action, now)
        outbox_id = None
        if action.notice:
            outbox_id = _queue_notice(runtime, session, application, action, request, now)
        repository.add_action(session, ApplicationAction(
            application_id=application.id, at=now, user_id=staff.user_id, actor=staff.username,
            action=action.name, from_status=from_status, to_status=application.status,
            message=request.message.strip() or None,
            message_language=request.message_language if request.message.strip() else None,
            note=request.note.strip() or None, outbox_id=outbox_id))
        repository.add_audit(session, audit_event(
            staff, f"decision.{action.name}", application, from_status=from_status,
            to_status=application.status, outbox_id=outbox_id))
        session.flush()
        return Outcome(application.reference, action.name, application.status,
                       application.version, outbox_id)


def _apply(application: Application, action: workflow.Action, now: datetime) -> None:
    """The change the action makes to the application itself."""
    if action.to_status and action.to_status != application.status:
        application.status = action.to_status
        application.status_changed_at = now
        if action.to_status in workflow.DECIDED:
            application.decided_at = now
    if action.name in workflow.CONFIDENTIALITY_ACTIONS:
        application.confidentiality_decision = (
            "granted" if action.name == "grant_confidentiality" else "refused")
        application.confidentiality_decided_at = now


# -- the notice to the applicant -----------------------------------------------------------


def applicant_language(application: Application) -> str:
    """The language the applicant asked the secretariat to write in (else the conversation's)."""
    asked = application.fields.get("correspondence.language")
    return asked if isinstance(asked, str) and asked else application.language


def compose_notice(catalogs: Catalogs, application: Application, action: workflow.Action,
                   request: workflow.Request) -> OutboundMessage:
    """The notice in the applicant's language, with the officer's words as they wrote them."""
    language = applicant_language(application)
    message = request.message.strip()
    parts = [catalogs.text(language, action.notice or "", reference=application.reference)]
    if message:
        parts.append(message)
    tail = NOTICE_TAILS.get(action.name)
    if tail:
        parts.append(catalogs.text(language, tail, reference=application.reference))
    if message and translation_status(language, request) == "pending":
        written_in = catalogs.text(language, f"choice.language.{request.message_language}")
        # Filled here: `Catalogs.text` takes the message's language as its own `language`.
        parts.append(catalogs.text(language, "notice.translation_pending").format(
            language=written_in))
    return OutboundMessage("\n\n".join(parts), reference=application.reference,
                           direction="rtl" if language in RIGHT_TO_LEFT else "ltr")


def translation_status(applicant_language: str, request: workflow.Request) -> str:
    """`not_needed` when the officer wrote in the applicant's language, else `pending`."""
    if not request.message.strip() or applicant_language == request.message_language:
        return "not_needed"
    return "pending"


def notice_record(application: Application, action: workflow.Action,
                  request: workflow.Request) -> dict[str, Any]:
    """What the outbox row keeps besides the text: the original and the translation slot."""
    language = applicant_language(application)
    return {
        "action": action.name,
        "reference": application.reference,
        "original": {"language": request.message_language, "text": request.message.strip()},
        "translation": {"language": language, "text": None,
                        "status": translation_status(language, request)},
    }


def _queue_notice(runtime: Runtime, session: Any, application: Application,
                  action: workflow.Action, request: workflow.Request, now: datetime
                  ) -> int | None:
    """Queue the notice on the conversation the application was filed in."""
    conversation = repository.conversation_of(session, application.id)
    if conversation is None:
        return None
    notice = compose_notice(runtime.engine.catalogs, application, action, request)
    row = repository.add_outbox(session, conversation, [notice], now, application.id)[0]
    record = notice_record(application, action, request)
    row.body = {**row.body, "notice": record}
    if record["translation"]["status"] == "pending":
        translations.queue_notice(session, row.id, application.id, record["original"]["text"],
                                  record["original"]["language"],
                                  record["translation"]["language"], now)
    return row.id


def deliver_translation(catalogs: Catalogs, session: Any, job: NoticeTranslation,
                        now: datetime) -> int:
    """The notice's translation is ready: a follow-up message to the applicant on their
    channel (marked as machine translation, the original quoted), and the translation in the
    notice's slot. The follow-up's outbox id."""
    notice_row = session.get_one(OutboxMessage, job.outbox_id, with_for_update=True)
    conversation = session.get_one(Conversation, notice_row.conversation_id)
    language = job.target_language
    record = dict(notice_row.body.get("notice") or {})
    reference = record.get("reference") or notice_row.body.get("reference") or ""
    written_in = catalogs.text(language, f"choice.language.{job.source_language}")
    quoted = "\n".join(f"> {line}" for line in job.source_text.splitlines())
    text = "\n\n".join((
        catalogs.text(language, "notice.machine_translation_head", reference=reference),
        job.text or "",
        catalogs.text(language, "notice.machine_translation_original").format(
            language=written_in),
        quoted))
    follow_up = repository.add_outbox(session, conversation, [OutboundMessage(
        text, reference=reference or None,
        direction="rtl" if language in RIGHT_TO_LEFT else "ltr")], now,
        notice_row.application_id)[0]
    made_by = {"machine_translation": job.machine_translation, "engine": job.engine,
               "package_version": job.package_version}
    follow_up.body = {**follow_up.body, "notice_translation": {
        "of_outbox_id": notice_row.id, "source_language": job.source_language,
        "target_language": language, **made_by}}
    record["translation"] = {**(record.get("translation") or {}), "language": language,
                             "text": job.text, "status": "done",
                             "follow_up_outbox_id": follow_up.id, **made_by}
    notice_row.body = {**notice_row.body, "notice": record}
    job.follow_up_outbox_id = follow_up.id
    return int(follow_up.id)


def translation_failed(session: Any, job: NoticeTranslation) -> None:
    """No translation could be made: the slot says so; the applicant keeps the original."""
    notice_row = session.get_one(OutboxMessage, job.outbox_id, with_for_update=True)
    record = dict(notice_row.body.get("notice") or {})
    record["translation"] = {**(record.get("translation") or {}), "status": "failed"}
    notice_row.body = {**notice_row.body, "notice": record}
