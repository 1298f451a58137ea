"""The database tables, as typed SQLAlchemy models."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from storage.sealing import BlindIndex, Sealed, SealedText, channel_and, listen

# What the blind indexes of sealed values are computed over (storage.sealing).
SENDER_INDEX = BlindIndex("sender_index", "sender", channel_and)
PROVIDER_ID_INDEX = BlindIndex("provider_message_index", "provider_message", channel_and)
# The id columns are INTEGER (32 bits on PostgreSQL): a larger number names no row.
MAX_ROW_ID = 2**31 - 1


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and read back time-zone aware, also on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store aware UTC timestamps only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base of every model; JSON columns hold the engine's state and the stable field keys."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime}


# Every value that could identify an applicant is sealed (docs/security.md says which and why).
listen(Base)


class Conversation(Base):
    """One person's conversation with the gateway on one channel: a draft, then its submission."""

    __tablename__ = "conversations"
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    sender_sealed: Mapped[str] = mapped_column("sender", SealedText())
    sender_index: Mapped[str] = mapped_column(String(64))  # 0004_security: blind index
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft|submitted|expired
    language: Mapped[str | None] = mapped_column(String(16))
    state_sealed: Mapped[str] = mapped_column("state", SealedText())
    hints_sealed: Mapped[str] = mapped_column("hints", SealedText())
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    last_inbound_at: Mapped[datetime | None] = mapped_column()
    reminder_sent_at: Mapped[datetime | None] = mapped_column()
    expired_at: Mapped[datetime | None] = mapped_column()
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    # The person blocked the bot or unsubscribed (0002_channels): nothing is sent until they
    # write again.
    blocked_at: Mapped[datetime | None] = mapped_column()

    sender = Sealed[str]("sender_sealed", index=SENDER_INDEX)
    state = Sealed[dict[str, Any]]("state_sealed", json_value=True)
    hints = Sealed[dict[str, Any]]("hints_sealed", json_value=True)

    __table_args__ = (
        Index("ix_conversations_sender_index", "channel", "sender_index", "id"),
        Index("ix_conversations_status_activity", "status", "last_inbound_at"),
    )


class Application(Base):
    """A submitted application in the secretariat's queue."""

    __tablename__ = "applications"
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(32), default="submitted")
    channel: Mapped[str] = mapped_column(String(32))
    sender_sealed: Mapped[str] = mapped_column("sender", SealedText())
    language: Mapped[str] = mapped_column(String(16))
    fields_sealed: Mapped[str] = mapped_column("fields", SealedText())
    submitted_at: Mapped[datetime] = mapped_column()
    formal_review_deadline: Mapped[date] = mapped_column(Date)
    formal_review_deadline_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    confidentiality_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    confidentiality_decision_deadline: Mapped[date | None] = mapped_column(Date)
    confidentiality_decision_deadline_provisional: Mapped[bool] = mapped_column(
        Boolean, default=False
    )
    # The secretariat's work on it (0002_secretariat). `version` is the optimistic lock: an
    # UPDATE that finds another version changed nothing and the action is refused.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    status_changed_at: Mapped[datetime | None] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column()
    confidentiality_decision: Mapped[str | None] = mapped_column(String(16))  # granted|refused
    confidentiality_decided_at: Mapped[datetime | None] = mapped_column()

    sender = Sealed[str]("sender_sealed")
    fields = Sealed[dict[str, Any]]("fields_sealed", json_value=True)

    __table_args__ = (Index("ix_applications_deadline", "status", "formal_review_deadline"),)
    __mapper_args__ = {"version_id_col": version}


class Evidence(Base):
    """A file or a description of evidence, kept with the conversation and its application."""

    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # attachment | description
    filename_sealed: Mapped[str | None] = mapped_column("filename", SealedText())
    media_type: Mapped[str | None] = mapped_column(String(127))
    size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    description_sealed: Mapped[str | None] = mapped_column("description", SealedText())
    added_at: Mapped[datetime] = mapped_column()
    after_submission: Mapped[bool] = mapped_column(Boolean, default=False)

    filename = Sealed[str | None]("filename_sealed")
    description = Sealed[str | None]("description_sealed")


class InboundMessage(Base):
    """Every message received, stored before it is processed; retries are recognised."""

    __tablename__ = "inbound_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    # 0004_security: the provider's id is kept sealed; its blind index, in the column that
    # was the id, is what recognises a retried delivery (WhatsApp's ids embed the phone number).
    provider_message_index: Mapped[str] = mapped_column("provider_message_id", String(255))
    provider_message_sealed: Mapped[str | None] = mapped_column(SealedText())
    sender_sealed: Mapped[str] = mapped_column("sender", SealedText())
    sender_index: Mapped[str] = mapped_column(String(64))
    text_sealed: Mapped[str] = mapped_column("text", SealedText())
    attachments_sealed: Mapped[str] = mapped_column("attachments", SealedText())
    hints_sealed: Mapped[str] = mapped_column("hints", SealedText())
    received_at: Mapped[datetime] = mapped_column()
    processed_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_sealed: Mapped[str | None] = mapped_column("error", SealedText())
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    # 0004_email: the message exactly as received (an e-mail's .eml, in the evidence folder by
    # sha256), and why a person must look at it (a mail loop, a message that could not be
    # read); the secretariat lists those until one is marked handled.
    raw_sha256: Mapped[str | None] = mapped_column(String(64))
    needs_person: Mapped[str | None] = mapped_column(Text)
    handled_at: Mapped[datetime | None] = mapped_column()
    handled_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("channel", "provider_message_id", name="uq_inbound_provider_id"),
        Index("ix_inbound_unprocessed", "processed_at", "id"),
        Index("ix_inbound_conversation", "conversation_id", "id"),
        Index("ix_inbound_sender_index", "channel", "sender_index", "id"),
    )

    provider_message_id = Sealed[str]("provider_message_sealed", index=PROVIDER_ID_INDEX)
    sender = Sealed[str]("sender_sealed", index=SENDER_INDEX)
    text = Sealed[str]("text_sealed")
    attachments = Sealed[list[Any]]("attachments_sealed", json_value=True)
    hints = Sealed[dict[str, Any]]("hints_sealed", json_value=True)
    error = Sealed[str | None]("error_sealed")


class OutboxMessage(Base):
    """Every message to a person, stored in the same transaction as the change it reports."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    recipient_sealed: Mapped[str] = mapped_column("recipient", SealedText())
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    body_sealed: Mapped[str] = mapped_column("body", SealedText())
    # pending | sending (claimed; next_attempt_at is the claim's expiry) | sent | failed |
    # held (WhatsApp: outside the 24-hour window, sent when the person writes again)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    last_error_sealed: Mapped[str | None] = mapped_column("last_error", SealedText())
    created_at: Mapped[datetime] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    # 0002_channels: what it is (reply | reminder), how it went out, and what the provider said.
    kind: Mapped[str] = mapped_column(String(16), default="reply", server_default="reply")
    # The parts of the message the provider has taken (a template announcing a held message
    # does not count): a retry resumes after them.
    parts_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # 0004_security: the provider's id of the part sent last, sealed. Every part's id, which
    # delivery reports are matched by, is in `outbox_parts` (0006_outbox_parts); the blind
    # index this table had (column provider_message_id) is empty and unmapped, kept only for
    # instances of the version before during a rolling upgrade.
    provider_message_sealed: Mapped[str | None] = mapped_column(SealedText())
    delivery_mode: Mapped[str | None] = mapped_column(String(80))  # session | template:NAME
    # delivered | read: every part, as the provider reports; failed: one part was not delivered
    delivery_status: Mapped[str | None] = mapped_column(String(16))

    recipient = Sealed[str]("recipient_sealed")
    body = Sealed[dict[str, Any]]("body_sealed", json_value=True)
    last_error = Sealed[str | None]("last_error_sealed")
    provider_message_id = Sealed[str | None]("provider_message_sealed")

    # The columns with a server default (for rows written before 0002) get their value from
    # the Python default: nothing to read back, so the rows of a flush go in one INSERT
    # rather than one INSERT … RETURNING each.
    __mapper_args__ = {"eager_defaults": False}
    __table_args__ = (
        Index("ix_outbox_pending", "state", "next_attempt_at"),
        Index("ix_outbox_conversation", "conversation_id", "id"),
    )


class OutboxPart(Base):
    """One message a provider took for an outbox row (0006_outbox_parts): a long SMS goes as
    several, a WhatsApp question as its text and its buttons, and a message held for WhatsApp's
    window is announced by a template first (part 0). A delivery report on any of them finds
    the row by the provider's id (blind index).

    A report can come before the sender has recorded the part (on a slow channel a reply's
    next part waits its turn for minutes): it is kept here without a row (`outbox_id` NULL),
    and counts for the row once the part is recorded (storage.delivery.record_parts)."""

    __tablename__ = "outbox_parts"
    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    channel: Mapped[str] = mapped_column(String(32))
    part: Mapped[int | None] = mapped_column(Integer)  # 1, 2, …; 0: a held message's template
    provider_message_index: Mapped[str] = mapped_column("provider_message_id", String(255))
    provider_message_sealed: Mapped[str] = mapped_column(SealedText())
    delivery_status: Mapped[str | None] = mapped_column(String(16))  # delivered | read | failed
    error_sealed: Mapped[str | None] = mapped_column("error", SealedText())
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)  # the failure says so
    sent_at: Mapped[datetime | None] = mapped_column()
    reported_at: Mapped[datetime | None] = mapped_column()

    provider_message_id = Sealed[str]("provider_message_sealed", index=PROVIDER_ID_INDEX)
    error = Sealed[str | None]("error_sealed")

    __table_args__ = (
        Index("ix_outbox_parts_outbox", "outbox_id", "part"),
        Index("ix_outbox_parts_provider_message", "channel", "provider_message_id"),
    )


class MediaDownload(Base):
    """A file a person sent that is still at the provider (0002_channels): fetched into
    evidence before its message is processed, retried, and reported to the person if it fails."""

    __tablename__ = "media_downloads"
    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(Text)  # file id, media id or URL
    declared_media_type: Mapped[str | None] = mapped_column(String(127))
    filename_sealed: Mapped[str | None] = mapped_column("filename", SealedText())
    declared_size: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    last_error_sealed: Mapped[str | None] = mapped_column("last_error", SealedText())
    failure: Mapped[str | None] = mapped_column(String(16))  # too_large | type | download
    attachment_sealed: Mapped[str | None] = mapped_column("attachment", SealedText())
    created_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()

    filename = Sealed[str | None]("filename_sealed")
    last_error = Sealed[str | None]("last_error_sealed")
    attachment = Sealed[dict[str, Any] | None]("attachment_sealed", json_value=True)

    __table_args__ = (Index("ix_media_downloads_pending", "state", "next_attempt_at"),)


class StaffUser(Base):
    """A member of the secretariat who logs in: officer, supervisor or admin."""

    __tablename__ = "staff_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # officer | supervisor | admin
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column()
    disabled_at: Mapped[datetime | None] = mapped_column()
    last_login_at: Mapped[datetime | None] = mapped_column()


class StaffSession(Base):
    """A login: a browser session (cookie) or an API token; only a hash of the secret is kept."""

    __tablename__ = "staff_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # web | api
    csrf_token: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column()
    last_seen_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class LoginAttempt(Base):
    """One try to log in, kept so the rate limit holds across restarts and instances."""

    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[datetime] = mapped_column()
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_login_attempts_username", "username", "attempted_at"),
        Index("ix_login_attempts_address", "address", "attempted_at"),
    )


class AuditEvent(Base):
    """Append-only: who did or saw what, when, on which application (triggers refuse changes)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column()
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    reference: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (
        Index("ix_audit_log_application", "application_id", "id"),
        Index("ix_audit_log_at", "at"),
    )


class ApplicationAction(Base):
    """The history of an application: the secretariat's actions and the applicant's answers.

    `note` is internal and never reaches the applicant; `message` is the notice as the officer
    wrote it (or the applicant's answer), in `message_language`; `outbox_id` is the notice as
    queued for the applicant.
    """

    __tablename__ = "application_actions"
    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"))
    at: Mapped[datetime] = mapped_column()
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    actor: Mapped[str] = mapped_column(String(64))  # a username, or "applicant"
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    message_sealed: Mapped[str | None] = mapped_column("message", SealedText())
    message_language: Mapped[str | None] = mapped_column(String(16))
    note_sealed: Mapped[str | None] = mapped_column("note", SealedText())
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))

    message = Sealed[str | None]("message_sealed")
    note = Sealed[str | None]("note_sealed")

    __table_args__ = (Index("ix_application_actions_application", "application_id", "id"),)


class TranslationJob:
    """What a machine translation job and its result hold, whatever was translated: the
    exact text, the language pair, the attempts, and the translation with what made it.

    `source_sha256` is a keyed HMAC of the text (a blind index, 0004_security), so identical
    texts are still translated once while nobody can test a guessed name against it."""

    id: Mapped[int] = mapped_column(primary_key=True)
    source_language: Mapped[str] = mapped_column(String(16))
    target_language: Mapped[str] = mapped_column(String(16))
    source_text_sealed: Mapped[str] = mapped_column("source_text", SealedText())
    source_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|done|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column()
    last_error_sealed: Mapped[str | None] = mapped_column("last_error", SealedText())
    text_sealed: Mapped[str | None] = mapped_column("text", SealedText())
    engine: Mapped[str | None] = mapped_column(String(64))
    package_version: Mapped[str | None] = mapped_column(String(255))
    pivot: Mapped[str | None] = mapped_column(String(16))
    machine_translation: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column()
    translated_at: Mapped[datetime | None] = mapped_column()

    source_text = Sealed[str]("source_text_sealed")
    last_error = Sealed[str | None]("last_error_sealed")
    text = Sealed[str | None]("text_sealed")


class FieldTranslation(TranslationJob, Base):
    """A free-text answer machine-translated into a working language: the job and its result.

    Queued in the transaction that stores the answer; the translation worker fills in `text`.
    The original stays where it is (the application's fields, the evidence, the inbound
    message); `source_text` is the exact text that was translated. `item` is the index in a
    list answer (names, evidence) or of a text sent after submission, 0 for a single answer.
    """

    __tablename__ = "field_translations"
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    field_key: Mapped[str] = mapped_column(String(64))
    item: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        UniqueConstraint("conversation_id", "field_key", "item", "target_language",
                         name="uq_field_translation"),
        Index("ix_field_translations_due", "state", "next_attempt_at"),
        Index("ix_field_translations_application", "application_id"),
        Index("ix_field_translations_text", "source_language", "target_language",
              "source_sha256"),
    )


class NoticeTranslation(TranslationJob, Base):
    """The officer's words in a notice, machine-translated into the applicant's language
    (0004_security): when done, a follow-up message carries the translation with the original
    quoted, and the notice's outbox row gets the translation in its slot."""

    __tablename__ = "notice_translations"
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), unique=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("applications.id"))
    follow_up_outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))

    __table_args__ = (
        Index("ix_notice_translations_due", "state", "next_attempt_at"),
    )


class InboundFile(Base):
    """A stored evidence file an inbound message carried (0004_security), by sha256: retention
    deletes a file only when no row that is kept still refers to it."""

    __tablename__ = "inbound_files"
    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)


class EmailMessage(Base):
    """What an e-mail carries besides its text (0004_email), sealed: the threading headers, the
    subject, the writer's own words apart from the quoted reply, the forwarded mails, the files
    not kept and what the parser noticed."""

    __tablename__ = "email_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"), unique=True)
    details_sealed: Mapped[str] = mapped_column("details", SealedText())

    details = Sealed[dict[str, Any]]("details_sealed", json_value=True)


class EmailThread(Base):
    """The e-mail thread of a conversation (0004_email): replies find it by the token in the
    reply address (intake+<token>@…), by the Message-IDs they answer, or by the reference.
    `details` (sealed) is what a reply needs: the subject, the person's newest Message-ID and
    the chain before it."""

    __tablename__ = "email_threads"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), unique=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    details_sealed: Mapped[str] = mapped_column("details", SealedText())
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()

    details = Sealed[dict[str, Any]]("details_sealed", json_value=True)


class Mailbox(Base):
    """An IMAP folder the gateway reads (0004_email): where it got to, and which instance
    reads it now (a lease, renewed while it polls, so several instances never read it twice)."""

    __tablename__ = "mailboxes"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(512), unique=True)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_holder: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    polled_at: Mapped[datetime | None] = mapped_column()
