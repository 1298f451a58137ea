"""A stored e-mail, applied to its application, in the pipeline's transaction.

`IntakeService.process` hands e-mail rows here (`IntakeService.filings`), in place of a
conversation turn:
1. the thread: the token of the reply address (intake+<token>@…), then In-Reply-To and
   References (our replies, the person's earlier mails), then the reference number in the
   subject, each only for the same sender; else a new filing with a new token;
2. before submission, `intake.mail.MailDesk` reads the letter into the draft: a complete one is
   submitted through the pipeline's own submission path (reference, deadlines, evidence rows,
   translation jobs, exactly as from a chat) and answered with the receipt; an incomplete one
   with the missing items and the form, in the writer's language;
3. after submission, the mail is what a chat message would be: "status", or material that
   joins the application (and answers a request for more);
4. one reply per mail at most, and none past GATEWAY_EMAIL_MAX_REPLIES_PER_HOUR to one
   address: a loop the headers did not give away cannot become a storm (the mail is kept for a
   person instead).
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from gateway.service import Delivered, IntakeService
from intake.engine import Context, State, Turn
from intake.mail import ForwardedMail, Letter, MailDesk
from intake.messages import Attachment, InboundMessage, OutboundMessage
from intake.reference import normalise_reference
from storage import mail as mail_store
from storage import repository
from storage.models import Application, Conversation
from storage.models import InboundMessage as InboundRow

CHANNEL = mail_store.CHANNEL
TOKEN = re.compile(r"^[^@+\s]+\+([0-9a-f]{16})@", re.IGNORECASE)
REFERENCE = re.compile(r"\bMCM[- ]?\d{4}[- ]?[0-9A-Z]{6}\b", re.IGNORECASE)
MAX_REFERENCES = 20
FILE_NOTES = {"too_large": "media.failed.too_large", "type": "media.failed.type",
              "empty": "mail.file_empty"}


class MailFiling:
    """Applies stored e-mails with the pipeline's engine and submission path."""

    channel = CHANNEL

    def __init__(self, service: IntakeService, max_replies_per_hour: int) -> None:
        self.service = service
        self.desk = MailDesk(service.engine)
        self.max_replies_per_hour = max_replies_per_hour

    def apply(self, session: Session, row: InboundRow, now: datetime) -> list[Delivered]:
        """Apply one stored mail; the replies queued (at most one)."""
        details = mail_store.details_of(session, row.id)
        conversation, joins = self._conversation(session, row, details, now)
        self.service._heard_from(session, conversation, now)
        state = State.from_dict(conversation.state)
        letter = self._letter(row, details)
        if state.status == "submitted":
            messages, turn = self._after_submission(session, conversation, state, row, letter,
                                                    now)
        else:
            messages, turn = self._file(session, conversation, state, letter, joins, now)
        notes = self._file_notes(state, details)
        if messages and notes:
            last = messages[-1]
            messages[-1] = OutboundMessage("\n\n".join([last.text, *notes]), ends_turn=True,
                                           reference=last.reference, direction=last.direction)
        self.service._queue_translations(session, conversation, state, turn, now)
        self.service._save_state(conversation, state, now)
        self._remember(session, conversation, row, details, now)
        if messages and self._too_many_replies(session, row.sender, now):
            stopped = (f"more than {self.max_replies_per_hour} replies to this address within "
                       f"an hour: not answered (a mail loop?)")
            row.needs_person = "; ".join(p for p in (row.needs_person, stopped) if p)
            messages = []
        row.conversation_id = conversation.id
        row.application_id = conversation.application_id
        row.processed_at = now
        row.error = None
        rows = repository.add_outbox(session, conversation, messages, now)
        return [Delivered(r.id, m) for r, m in zip(rows, messages, strict=True)]

    # -- the thread ------------------------------------------------------------------------

    def _conversation(self, session: Session, row: InboundRow, details: dict[str, Any],
                      now: datetime) -> tuple[Conversation, bool]:
        """The conversation this mail continues (and True), or a new one (and False)."""
        sender = row.sender
        for conversation_id in self._candidates(session, details):
            conversation = session.get(Conversation, conversation_id, with_for_update=True)
            if conversation is not None and conversation.channel == CHANNEL and \
                    conversation.sender == sender:
                return conversation, True
        conversation = repository.new_conversation(session, CHANNEL, sender, now,
                                                   dict(row.hints or {}))
        mail_store.new_thread(session, conversation, secrets.token_hex(8), {
            "subject": details.get("subject", ""), "message_id": None, "references": []}, now)
        return conversation, False

    def _candidates(self, session: Session, details: dict[str, Any]) -> list[int]:
        """Conversations the mail may continue, the most certain first."""
        found: list[int] = []
        for address in details.get("recipients") or []:
            match = TOKEN.match(address)
            thread = mail_store.thread_by_token(session, match.group(1).lower()) \
                if match else None
            if thread is not None:
                found.append(thread.conversation_id)
        answered = [*reversed(details.get("in_reply_to") or []),
                    *reversed(details.get("references") or [])]
        conversation_id = mail_store.conversation_answered(session, answered)
        if conversation_id is not None:
            found.append(conversation_id)
        reference = REFERENCE.search(details.get("subject") or "")
        if reference:
            application = repository.application_by_reference(
                session, normalise_reference(reference.group(0)))
            if application is not None:
                found += repository.conversations_of(session, application.id)
        return found

    def _remember(self, session: Session, conversation: Conversation, row: InboundRow,
                  details: dict[str, Any], now: datetime) -> None:
        """The thread's newest Message-ID and chain, which the next reply answers."""
        thread = mail_store.thread_of(session, conversation.id)
        if thread is None:
            return
        known = dict(thread.details)
        message_id = details.get("message_id") or ""
        chain = [*known.get("references", []), *(details.get("references") or [])]
        if message_id and not message_id.startswith("sha256:"):
            known["message_id"] = message_id
            chain.append(message_id)
        known["references"] = list(dict.fromkeys(chain))[-MAX_REFERENCES:]
        known["subject"] = known.get("subject") or details.get("subject", "")
        thread.details = known
        thread.updated_at = now

    # -- filing ----------------------------------------------------------------------------

    def _letter(self, row: InboundRow, details: dict[str, Any]) -> Letter:
        hints = dict(row.hints or {})
        return Letter(
            sender=row.sender, sender_name=hints.get("name", ""),
            subject=details.get("subject", ""), text=details.get("text", ""),
            quoted=details.get("quoted", ""),
            forwards=[ForwardedMail(f.get("name", ""), f.get("address", ""), f.get("text", ""))
                      for f in details.get("forwards") or []],
            attachments=[Attachment(a["filename"], a["media_type"], a["size"], a["sha256"])
                         for a in row.attachments or []],
            hints={key: value for key, value in hints.items() if key == "language"})

    def _file(self, session: Session, conversation: Conversation, state: State,
              letter: Letter, joins: bool, now: datetime
              ) -> tuple[list[OutboundMessage], Turn]:
        """A letter for a draft: the missing items, or the submission and its receipt."""
        filed = self.desk.file(state, letter, joins_draft=joins)
        turn = Turn(changed_fields=filed.changed_fields, submit=filed.submit)
        if not filed.submit:
            return ([filed.message] if filed.message else []), turn
        receipt = self.service._submit(session, conversation, state, now)
        return [self._receipt(state, receipt[-1], filed.notes)], turn

    def _receipt(self, state: State, receipt: OutboundMessage, notes: list[str]
                 ) -> OutboundMessage:
        """The pipeline's receipt, with the e-mail's own next steps instead of the chat's."""
        catalogs = self.service.engine.catalogs
        language = state.language or catalogs.default_language
        chat = catalogs.text(language, "receipt.next_steps", reference=state.reference)
        mail = "\n\n".join([*notes, catalogs.text(language, "mail.receipt.next_steps",
                                                  reference=state.reference)])
        text = receipt.text.replace(chat, mail) if chat in receipt.text \
            else f"{receipt.text}\n\n{mail}"
        return OutboundMessage(text, ends_turn=True, reference=receipt.reference,
                               direction=receipt.direction)

    def _after_submission(self, session: Session, conversation: Conversation, state: State,
                          row: InboundRow, letter: Letter, now: datetime
                          ) -> tuple[list[OutboundMessage], Turn]:
        """After submission a mail is a status request or material for the application."""
        engine = self.service.engine
        message = InboundMessage(channel=CHANNEL, sender=row.sender,
                                 provider_message_id=row.provider_message_id, text=letter.text,
                                 attachments=tuple(letter.attachments))
        status = None
        if conversation.application_id is not None:
            status = session.get_one(Application, conversation.application_id,
                                     with_for_update=True).status
        turn = engine.handle(state, message, Context(hints=dict(conversation.hints or {}),
                                                     application_status=status))
        if turn.start_new:
            # A new application by e-mail is a new mail, not a reply: send the form for it.
            language = state.language or engine.catalogs.default_language
            text = "\n\n".join([engine.catalogs.text(language, "mail.template.intro"),
                                self.desk.template(language, self.desk.template_keys())])
            return [OutboundMessage(text, ends_turn=True)], Turn()
        if turn.supplement_attachments or turn.supplement_text:
            self.service._supplement(session, conversation, turn, now)
        if turn.confidentiality_request:
            self.service._request_confidentiality(session, conversation,
                                                  row.received_at or now, now)
        text = "\n\n".join(m.text for m in turn.messages if m.text)
        direction = turn.messages[-1].direction if turn.messages else "ltr"
        return [OutboundMessage(text, ends_turn=True, reference=state.reference,
                                direction=direction)], turn

    def _file_notes(self, state: State, details: dict[str, Any]) -> list[str]:
        """What the person is told about files that were not kept."""
        catalogs = self.service.engine.catalogs
        language = state.language or catalogs.default_language
        return [catalogs.text(language, FILE_NOTES.get(item.get("reason", ""),
                                                       "media.failed.download"),
                              filename=item.get("filename") or "file")
                for item in details.get("files_refused") or []]

    def _too_many_replies(self, session: Session, sender: str, now: datetime) -> bool:
        since = now - timedelta(hours=1)
        return mail_store.replies_since(session, sender, since) >= self.max_replies_per_hour

