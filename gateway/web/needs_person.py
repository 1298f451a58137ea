"""Received messages that need a person, under /secretariat/messages: mails the gateway did not
answer (a loop, a bounce, a message it could not read), mails it read with a problem (an
unknown charset, a file not kept) and messages whose processing failed, on any channel. Each
can be downloaded as received (an e-mail's .eml) and marked handled; both are logged. A
message that may come from an applicant whose confidentiality request protects their identity
(its application's, or any of the sender's conversations', since a message whose processing
failed was never linked to one) is masked, and only a supervisor or an admin may download it.
A web chat's address is never shown: it is the applicant's cookie."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from sqlalchemy import or_, select

from gateway.decisions import confidentiality_of
from gateway.review import sender_shown
from gateway.service import now_utc
from gateway.staff import Staff, audit_event
from gateway.web import RUNTIME
from gateway.web.secretariat import error_page, render, staff_page
from intake import workflow
from intake.engine import State
from storage import mail as mail_store
from storage import repository
from storage.db import transaction
from storage.models import MAX_ROW_ID, Application, Conversation
from storage.models import InboundMessage as InboundRow

PATH = "/secretariat/messages"


def setup_needs_person(app: web.Application) -> None:
    """Register the page, the download and the "handled" form."""
    app.router.add_get(PATH, messages_page)
    app.router.add_get(PATH + "/{inbound_id:\\d+}/raw", raw_download)
    app.router.add_post(PATH + "/{inbound_id:\\d+}/handled", handled_form)


def _inbound_id(request: web.Request) -> int | None:
    """The message id in the path; None when no message can have it."""
    inbound_id = int(request.match_info["inbound_id"])
    return inbound_id if inbound_id <= MAX_ROW_ID else None


@staff_page
async def messages_page(request: web.Request, staff: Staff) -> web.StreamResponse:
    """The messages waiting for a person, newest first (viewing them is logged)."""
    runtime = request.app[RUNTIME]

    def load() -> list[dict[str, Any]]:
        with transaction(runtime.sessions) as session:
            rows = mail_store.needing_person(session)
            shown = [_row(session, row) for row in rows]
            if shown:
                repository.add_audit(session, audit_event(
                    staff, "inbound.view", messages=[row["id"] for row in shown]))
            return shown
    return render(request, "secretariat_needs_person.html", {
        "staff": staff, "nav": "messages", "messages": await asyncio.to_thread(load),
        "done": request.query.get("done")})


def _row(session: Any, row: InboundRow) -> dict[str, Any]:
    details = mail_store.details_of(session, row.id)
    masked = _protected(session, row)
    return {"id": row.id, "channel": row.channel,
            "sender": workflow.MASK if masked else sender_shown(row.channel, row.sender),
            "received_at": row.received_at.isoformat(timespec="seconds"),
            "subject": workflow.MASK if masked else details.get("subject", ""),
            "reason": row.needs_person or "processing failed: "
                      + (workflow.MASK if masked else str(row.error)),
            "text": workflow.MASK if masked else (row.text or "")[:300],
            "raw": bool(row.raw_sha256), "processed": row.processed_at is not None}


def _protected(session: Any, row: InboundRow) -> bool:
    """Whether the message may come from an applicant whose identity data is protected: its
    application, its conversation or any conversation of its sender on its channel (or that
    conversation's application) asked for confidentiality, unless the request was refused."""
    conversations = list(session.scalars(select(Conversation).where(or_(
        Conversation.id == row.conversation_id,
        repository.by_sender(session, Conversation, row.channel, row.sender)))))
    application_ids = {row.application_id} | {c.application_id for c in conversations}
    applications = [session.get(Application, i) for i in application_ids if i is not None]
    if any(confidentiality_of(a).protects_identity for a in applications if a):
        return True
    return any(c.application_id is None
               and State.from_dict(c.state).answers.get("confidentiality.requested")
               for c in conversations)


@staff_page
async def raw_download(request: web.Request, staff: Staff) -> web.StreamResponse:
    """The message exactly as received, always as a download (logged)."""
    runtime = request.app[RUNTIME]
    inbound_id = _inbound_id(request)

    def load() -> bytes | None:
        if inbound_id is None:
            return None
        with transaction(runtime.sessions) as session:
            row = session.get(InboundRow, inbound_id)
            if row is None or not row.raw_sha256:
                return None
            if _protected(session, row) and not workflow.may_reveal(staff.role):
                raise workflow.NotAllowed("forbidden", "This message belongs to an application "
                                          "under a confidentiality request: only a supervisor "
                                          "or an admin may download it.")
            repository.add_audit(session, audit_event(staff, "inbound.download",
                                                      message=inbound_id))
            return runtime.evidence.read(row.raw_sha256)
    raw = await asyncio.to_thread(load)
    if raw is None:
        return error_page(request, staff, 404, "There is no such message, or it was not kept "
                                               "as received.")
    return web.Response(body=raw, headers={
        "Content-Type": "application/octet-stream",
        "Content-Disposition": f'attachment; filename="message-{inbound_id}.eml"',
        "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; sandbox"})


@staff_page
async def handled_form(request: web.Request, staff: Staff) -> web.StreamResponse:
    """A person dealt with the message: it leaves the list (logged)."""
    runtime = request.app[RUNTIME]
    inbound_id = _inbound_id(request)

    def mark() -> bool:
        if inbound_id is None:
            return False
        with transaction(runtime.sessions) as session:
            if not mail_store.mark_handled(session, inbound_id, staff.username, now_utc()):
                return False
            repository.add_audit(session, audit_event(staff, "inbound.handled",
                                                      message=inbound_id))
            return True
    if not await asyncio.to_thread(mark):
        return error_page(request, staff, 404, "There is no such message.")
    raise web.HTTPSeeOther(f"{PATH}?done={inbound_id}")
