"""The inbound pipeline: store, then process in one transaction per message, then reply.

Steps for one message (DESIGN.md, "One inbound message, end to end"):
1. `receive`: the raw message is committed under its provider id (a retry is recognised);
2. `process`: the conversation is loaded and locked, the engine applies the message, and the
   new state, answers, evidence, outbox rows and (on submission) the application are committed
   together; a failure is recorded on the stored message, which stays visible and is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from gateway.grouping import each_alone
from gateway.language_detection import build_detector
from gateway.settings import Settings
from intake.catalog import DEFAULT_LOCALE_DIR, load_catalogs
from intake.deadlines import (
    confidentiality_decision_deadline,
    formal_review_deadline,
    receipt_date,
)
from intake.engine import Context, Engine, Receipt, State, Turn
from intake.form import DEFAULT_FORM_PATH, load_form
from intake.messages import Attachment, InboundMessage, OutboundMessage
from intake.reference import new_reference
from intake.translation import free_texts, translatable_keys
from intake.workflow import status_after_answer
from storage import delivery, repository, translations
from storage.db import DatabaseUnavailable, transaction, urgent_writer_waiting, with_retry
from storage.delivery import MediaToFetch
from storage.models import (
    Application,
    ApplicationAction,
    Conversation,
    MediaDownload,
)
from storage.models import InboundMessage as InboundRow

log = logging.getLogger(__name__)
MAX_PROCESSING_ATTEMPTS = 5


def build_engine(settings: Settings) -> Engine:
    """The engine for the configured form, catalogs and language detector."""
    form = load_form(settings.form_path or DEFAULT_FORM_PATH)
    overrides = [settings.catalog_dir] if settings.catalog_dir else []
    catalogs = load_catalogs([DEFAULT_LOCALE_DIR, *overrides], settings.default_language)
    return Engine(form, catalogs, build_detector(settings.language_detector, form.languages))


class Filing(Protocol):
    """Applies a stored message of one channel in the pipeline's transaction."""

    def apply(self, session: Session, row: Any, now: datetime) -> list[Delivered]:
        """Process the row (marking it processed) and return the replies queued."""
        ...


@dataclass(frozen=True)
class Delivered:
    """A reply with the id of its outbox row."""

    outbox_id: int
    message: OutboundMessage


class Numbered(Protocol):
    """An outbox row, or what stands for one: its id is there once it is flushed."""

    @property
    def id(self) -> int: ...


# Replies added to the session, not flushed yet, with what they say.
Queued = list[tuple[Numbered, OutboundMessage]]


# session.info key: the conversations whose person wrote in this transaction.
_HEARD_FROM = "gateway_heard_from"


@dataclass(frozen=True)
class _Flushed:
    id: int


def _delivered(queued: Queued) -> list[Delivered]:
    """The replies with their ids, once flushed."""
    return [Delivered(row.id, message) for row, message in queued]


def now_utc() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class IntakeService:
    """Everything a channel needs: hand in a message, get the replies."""

    def __init__(self, sessions: sessionmaker[Session], engine: Engine) -> None:
        self.sessions = sessions
        self.engine = engine
        # Channels whose messages are applied otherwise than by a conversation turn (e-mail:
        # gateway.mail_filing), by channel name.
        self.filings: dict[str, Filing] = {}

    def handle(self, message: InboundMessage) -> list[Delivered] | None:
        """Store and process one message; None when it is a retry of one already stored."""
        inbound_id = self.receive(message)
        if inbound_id is None:
            return None
        return self.process(inbound_id)

    def receive(self, message: InboundMessage, media: Sequence[MediaToFetch] = ()
                ) -> int | None:
        """Commit the raw message (and the files still to fetch from the provider); None when
        the provider id was seen before."""
        def work() -> int | None:
            with transaction(self.sessions) as session:
                return self.store(session, message, media, now_utc())
        return with_retry(work)

    def store(self, session: Session, message: InboundMessage, media: Sequence[MediaToFetch],
              now: datetime) -> int | None:
        """`receive` in the caller's transaction (the webhooks commit the deliveries that
        arrive together in one)."""
        inbound_id = repository.store_inbound(session, message, now)
        if inbound_id is not None and media:
            delivery.add_media_downloads(session, inbound_id, message.channel, media, now)
        return inbound_id

    def process(self, inbound_id: int) -> list[Delivered]:
        """Apply a stored message to its conversation; on failure, record it and apologise.
        The database being unavailable is not the message's failure: DatabaseUnavailable is
        raised, nothing is counted, and the message stays stored to be processed later."""
        try:
            return with_retry(lambda: self._process(inbound_id))
        except DatabaseUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - a crash must leave a visible trace
            log.exception("processing inbound message %s failed", inbound_id)
            return with_retry(partial(self._record_failure, inbound_id, error))

    def process_many(self, inbound_ids: Sequence[int]
                     ) -> list[list[Delivered] | BaseException]:
        """`process` of several messages (of different people) in one transaction: under load
        one commit for a group instead of one a message. If the group fails, each message is
        processed on its own, so one that fails does so alone, recorded as `process` records
        it; the database being unavailable fails them all (they stay stored, unprocessed)."""
        return each_alone(self._process_group, list(inbound_ids),
                          together=(DatabaseUnavailable,))

    def _process_group(self, inbound_ids: list[int]) -> list[list[Delivered]]:
        if len(inbound_ids) == 1:  # alone: as `process`, which records a failure
            return [self.process(inbound_ids[0])]
        return self._process_together(inbound_ids)

    def start(self, channel: str, sender: str, hints: dict[str, str] | None = None
              ) -> list[Delivered]:
        """Open or resume the conversation when a person opens the chat (web, terminal)."""
        def work() -> list[Delivered]:
            with transaction(self.sessions) as session:
                now = now_utc()
                conversation = repository.current_conversation(session, channel, sender)
                if conversation is None:
                    conversation = repository.new_conversation(session, channel, sender, now,
                                                               hints)
                state = State.from_dict(conversation.state)
                context = Context(hints=dict(hints or {}),
                                  application_status=_status(session, conversation))
                turn = self.engine.resume(state, context)
                self._save_state(conversation, state, now)
                rows = repository.add_outbox(session, conversation, turn.messages, now)
                return [Delivered(r.id, m) for r, m in zip(rows, turn.messages, strict=True)]
        return with_retry(work)

    def mark_delivered(self, delivered: list[Delivered]) -> None:
        """Record that replies reached the person."""
        def work() -> None:
            with transaction(self.sessions) as session:
                repository.mark_sent(session, [d.outbox_id for d in delivered], now_utc())
        with_retry(work)

    # -- inside the transaction ----------------------------------------------------------

    def _process(self, inbound_id: int) -> list[Delivered]:
        with transaction(self.sessions) as session:
            queued = self._process_in(session, inbound_id)
            self._release_held(session)
            session.flush()
            return _delivered(queued)

    def _process_together(self, inbound_ids: Sequence[int]) -> list[list[Delivered]]:
        """In one transaction, or several when a delivery to acknowledge is waiting for
        SQLite's write lock: what is done is committed then, and the delivery goes first."""
        done: list[list[Delivered]] = []
        while len(done) < len(inbound_ids):
            done += with_retry(partial(self._process_until_urgent, inbound_ids[len(done):]))
        return done

    def _process_until_urgent(self, inbound_ids: Sequence[int]) -> list[list[Delivered]]:
        done: list[Queued] = []
        with transaction(self.sessions) as session:
            rows = repository.inbound_rows(session, inbound_ids)
            failed = delivery.failed_media(session, inbound_ids)
            conversations = self._conversations(session, list(rows.values()))
            for inbound_id in inbound_ids:
                done.append(self._process_in(session, inbound_id, rows.get(inbound_id),
                                             failed.get(inbound_id, []), conversations))
                if urgent_writer_waiting(self.sessions):
                    break
            # What the messages changed goes out in one flush: the rows of each table in one
            # statement for the group.
            self._release_held(session)
            session.flush()
        return [_delivered(queued) for queued in done]

    def _conversations(self, session: Session, rows: Sequence[InboundRow]
                       ) -> dict[tuple[str, str], Conversation] | None:
        """The current conversations of a group's senders, in one query; None (each message
        then looks up its own) if one sender has two messages in the group, as the second
        may need the conversation the first opens."""
        senders = [(row.channel, row.sender) for row in rows
                   if row.processed_at is None and row.channel not in self.filings]
        if len(set(senders)) < len(senders):
            return None
        return repository.current_conversations(session, senders)

    def _process_in(self, session: Session, inbound_id: int, row: InboundRow | None = None,
                    failed: Sequence[MediaDownload] | None = None,
                    conversations: dict[tuple[str, str], Conversation] | None = None
                    ) -> Queued:
        """Apply one message in the caller's transaction (`row`: loaded and locked already;
        `failed`: its downloads that failed, and `conversations`: the current conversations
        of the group's senders, locked, both looked up already); the changes are flushed by
        the caller, with those of the other messages of its group."""
        if row is None:
            row = repository.inbound(session, inbound_id)
        if row.processed_at is not None:
            return []
        now = now_utc()
        filing = self.filings.get(row.channel)
        if filing is not None:
            row.attempts += 1
            return [(_Flushed(d.outbox_id), d.message) for d in filing.apply(session, row, now)]
        message = _message_of(row)
        # Without flushing what the group's earlier messages changed: they are other people's
        # (one person's messages are processed one after the other, never in one group), and
        # their changes go out together at the end. Queries that need this message's own
        # changes (a new conversation, a submission) flush first.
        if conversations is not None:
            conversation = conversations.get((row.channel, row.sender))
        else:
            with session.no_autoflush:
                conversation = repository.current_conversation(session, row.channel,
                                                               row.sender)
        if conversation is None:
            conversation = repository.new_conversation(session, row.channel, row.sender, now,
                                                       row.hints)
        else:
            conversation = self._answering_the_secretariat(session, conversation)
        if failed is None:
            failed = delivery.failed_media(session, [row.id]).get(row.id, [])
        notices = self._media_notices(conversation, failed)
        if notices and not message.text and not message.attachments and \
                conversation.state.get("status", "new") != "new":
            queued = self._notify(session, conversation, notices, now)
        else:
            queued = self._apply(session, conversation, message, now, notices)
        # Counted with the outcome; set after the queries (which would flush it on their own),
        # so the row's UPDATE goes in the one flush with the replies and the conversation. A
        # failure rolls it back and counts it again.
        row.attempts += 1
        row.conversation_id = conversation.id
        row.application_id = conversation.application_id
        row.processed_at = now
        row.error = None
        return queued

    def _answering_the_secretariat(self, session: Session, conversation: Conversation
                                   ) -> Conversation:
        """The conversation a message belongs to: after 'new', a person whose last message
        from us is the secretariat's request for more information on an earlier application,
        and who has not begun the new draft, is answering that request."""
        if conversation.application_id is not None or (conversation.state or {}).get("answers"):
            return conversation
        return repository.awaiting_answer(session, conversation) or conversation

    def _media_notices(self, conversation: Conversation, failed: Sequence[MediaDownload]
                       ) -> list[OutboundMessage]:
        """What to tell the person about files of this message that could not be fetched."""
        language = conversation.language or self.engine.catalogs.default_language
        return [OutboundMessage(self.engine.catalogs.text(
            language, f"media.failed.{job.failure or 'download'}",
            filename=job.filename or "file")) for job in failed]

    def _notify(self, session: Session, conversation: Conversation,
                notices: list[OutboundMessage], now: datetime) -> Queued:
        """Only the notices (a message that held nothing but failed files); the question
        stays open, and the draft is active again, as after any message of the person's (an
        expired draft would otherwise stay expired, to be purged while they are writing)."""
        self._heard_from(session, conversation, now)
        _active(conversation, now)
        last = notices[-1]
        awaiting = State.from_dict(conversation.state).current
        notices[-1] = OutboundMessage(last.text, awaiting=awaiting, ends_turn=True,
                                      direction=last.direction)
        rows = repository.add_outbox(session, conversation, notices, now, flush=False)
        return list(zip(rows, notices, strict=True))

    def _heard_from(self, session: Session, conversation: Conversation, now: datetime) -> None:
        """The person wrote: they have not blocked us, and held messages may go out (released
        by `_release_held` before the transaction ends, for all its messages at once)."""
        conversation.last_inbound_at = now
        conversation.blocked_at = None
        session.info.setdefault(_HEARD_FROM, set()).add(conversation.id)

    def _release_held(self, session: Session) -> None:
        """Held messages of the conversations heard from in this transaction go out now."""
        heard = session.info.pop(_HEARD_FROM, None)
        if heard:
            delivery.release_held(session, sorted(heard), now_utc())

    def _apply(self, session: Session, conversation: Conversation, message: InboundMessage,
               now: datetime, notices: Sequence[OutboundMessage] = ()) -> Queued:
        """One engine turn and everything it implies, in the caller's transaction; the replies
        are added to the session, flushed by the caller."""
        conversation.hints = {**conversation.hints, **message.hints}
        self._heard_from(session, conversation, now)
        state = State.from_dict(conversation.state)
        turn = self.engine.handle(state, message, Context(
            hints=dict(conversation.hints), application_status=_status(session, conversation)))
        messages = [*notices, *turn.messages]
        if turn.start_new:
            conversation = repository.new_conversation(session, conversation.channel,
                                                       conversation.sender, now,
                                                       conversation.hints)
            previous_language = state.language
            state = State()
            hints = {**conversation.hints, "language": previous_language or ""}
            messages = self.engine.resume(state, Context(hints=hints)).messages
        if turn.supplement_attachments or turn.supplement_text:
            self._supplement(session, conversation, turn, now)
        received = message.received_at or now  # the deadlines count from receipt
        if turn.confidentiality_request:
            self._request_confidentiality(session, conversation, received, now)
        if turn.submit:
            messages += self._submit(session, conversation, state, received)
        self._queue_translations(session, conversation, state, turn, now)
        self._save_state(conversation, state, now)
        rows = repository.add_outbox(session, conversation, messages, now, flush=False)
        return list(zip(rows, messages, strict=True))

    def _submit(self, session: Session, conversation: Conversation, state: State,
                now: datetime) -> list[OutboundMessage]:
        """Create the application with its reference and deadlines; return the receipt. `now`
        is when the message that submitted it was received: the deadlines count from the day
        the secretariat received the application, however late it was processed."""
        review = formal_review_deadline(now)
        confidentiality = (confidentiality_decision_deadline(now)
                           if state.answers.get("confidentiality.requested") else None)
        year = receipt_date(now).year
        reference = new_reference(year)
        while repository.reference_exists(session, reference):
            reference = new_reference(year)
        application = Application(
            reference=reference, status="submitted", channel=conversation.channel,
            sender=conversation.sender, language=state.language or "en",
            fields=dict(state.answers), submitted_at=now,
            formal_review_deadline=review.due,
            formal_review_deadline_provisional=review.provisional,
            confidentiality_requested=confidentiality is not None,
            confidentiality_decision_deadline=confidentiality.due if confidentiality else None,
            confidentiality_decision_deadline_provisional=bool(
                confidentiality and confidentiality.provisional))
        session.add(application)
        session.flush()
        conversation.application_id = application.id
        conversation.status = "submitted"
        repository.add_evidence(session, conversation, state.answers.get("evidence") or [], now,
                                application.id)
        authorisation = state.answers.get("agent.authorisation")
        if isinstance(authorisation, dict):
            repository.add_evidence(session, conversation, [authorisation], now, application.id)
        return self.engine.receipt(state, Receipt(reference, review, confidentiality))

    def _supplement(self, session: Session, conversation: Conversation, turn: Turn,
                    now: datetime) -> None:
        """Material sent after submission joins the application; an answer to the secretariat's
        request for more puts it back under formal review."""
        repository.add_evidence(session, conversation,
                                [a.as_dict() for a in turn.supplement_attachments], now,
                                conversation.application_id, after_submission=True)
        if conversation.application_id is None:
            return
        application = session.get_one(Application, conversation.application_id)
        back_to = status_after_answer(application.status)
        if back_to is None:
            return
        files = ", ".join(a.filename for a in turn.supplement_attachments)
        repository.add_action(session, ApplicationAction(
            application_id=application.id, at=now, actor="applicant",
            action="supplement_answered", from_status=application.status,
            to_status=back_to, message="\n".join(
                part for part in (turn.supplement_text, files and f"[{files}]") if part),
            message_language=conversation.language))
        application.status = back_to
        application.status_changed_at = now

    def _request_confidentiality(self, session: Session, conversation: Conversation,
                                 received_at: datetime, now: datetime) -> None:
        """A confidentiality request made after submission (Ch.6 §2: at any time) is stored
        with the application and waits for the secretariat's decision, as one made in the form
        does; asking again while one is pending or granted only adds to the history."""
        if conversation.application_id is None:
            return
        application = session.get_one(Application, conversation.application_id)
        if not (application.confidentiality_requested
                and application.confidentiality_decision != "refused"):
            decision = confidentiality_decision_deadline(received_at)
            application.confidentiality_requested = True
            application.confidentiality_decision = None
            application.confidentiality_decided_at = None
            application.confidentiality_decision_deadline = decision.due
            application.confidentiality_decision_deadline_provisional = decision.provisional
            application.fields = {**application.fields, "confidentiality.requested": True}
        repository.add_action(session, ApplicationAction(
            application_id=application.id, at=now, actor="applicant",
            action="confidentiality_requested", from_status=application.status,
            to_status=application.status))

    def _queue_translations(self, session: Session, conversation: Conversation, state: State,
                            turn: Turn, now: datetime) -> None:
        """Translation jobs for the free text this turn added or changed (all of it on
        submission, so answers dropped at the end lose theirs), in the turn's transaction."""
        language = state.language or self.engine.catalogs.default_language
        form = self.engine.form
        if turn.submit or "*" in turn.changed_fields:
            keys: Collection[str] = translatable_keys(form)
        else:
            keys = translatable_keys(form) & set(turn.changed_fields)
        translations.queue_answers(session, conversation.id,
                                   free_texts(form, state.answers, keys), keys, language, now,
                                   conversation.application_id)
        if turn.submit and conversation.application_id is not None:
            translations.attach_to_application(session, conversation.id,
                                               conversation.application_id)
        if turn.supplement_text:
            translations.queue_supplement(session, conversation.id,
                                          conversation.application_id, turn.supplement_text,
                                          language, now)

    def _save_state(self, conversation: Conversation, state: State, now: datetime) -> None:
        conversation.state = state.to_dict()
        conversation.language = state.language or state.guessed_language
        _active(conversation, now)

    def _record_failure(self, inbound_id: int, error: Exception) -> list[Delivered]:
        """Keep the failed message visible and tell the person it is safe."""
        with transaction(self.sessions) as session:
            row = repository.inbound(session, inbound_id)
            row.error = f"{type(error).__name__}: {error}"[:2000]
            # Counted here: the failed transaction's count was rolled back with it. The person
            # hears it once, not at every retry.
            row.attempts += 1
            conversation = repository.current_conversation(session, row.channel, row.sender)
            if conversation is None or row.attempts > 1:
                return []
            sorry = OutboundMessage(self.engine.catalogs.text(
                conversation.language or self.engine.catalogs.default_language,
                "error.internal"), ends_turn=True, awaiting=State.from_dict(
                    conversation.state).current)
            rows = repository.add_outbox(session, conversation, [sorry], now_utc())
            return [Delivered(rows[0].id, sorry)]


def _status(session: Session, conversation: Conversation) -> str | None:
    """The status of the conversation's application, if it was submitted."""
    if conversation.application_id is None:
        return None
    # Locked: a secretariat decision and the applicant's answer never interleave.
    return session.get_one(Application, conversation.application_id,
                           with_for_update=True).status


def _message_of(row: Any) -> InboundMessage:
    """The neutral message back from its stored row."""
    return InboundMessage(
        channel=row.channel, sender=row.sender, provider_message_id=row.provider_message_id,
        text=row.text or "",
        attachments=tuple(Attachment(a["filename"], a["media_type"], a["size"], a["sha256"])
                          for a in row.attachments or []),
        received_at=row.received_at, hints=dict(row.hints or {}))


def _active(conversation: Conversation, now: datetime) -> None:
    """The person wrote: the draft counts as touched now, and an expired one is a draft again."""
    conversation.updated_at = now
    if conversation.status == "expired":
        conversation.status, conversation.expired_at = "draft", None
