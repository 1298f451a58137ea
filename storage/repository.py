"""Small repository functions over the models; they flush but never commit."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from intake.messages import InboundMessage, OutboundMessage
from storage.models import (
    Application,
    ApplicationAction,
    AuditEvent,
    Conversation,
    Evidence,
    InboundFile,
    LoginAttempt,
    MediaDownload,
    OutboxMessage,
    StaffSession,
    StaffUser,
)
from storage.models import InboundMessage as InboundRow
from storage.sealing import allocate_ids, column_of, keyring_of, sealed_attributes


def by_sender(session: Session, model: Any, channel: str, sender: str) -> ColumnElement[bool]:
    """Rows of one sender on one channel, found by the sender's blind index (under every
    configured key, so rows sealed before a rotation finished are found too)."""
    return and_(model.channel == channel,
                model.sender_index.in_(sender_indexes(session, channel, sender)))


def sender_indexes(session: Session, channel: str, sender: str) -> list[str]:
    """The blind indexes of one sender on one channel, under every configured key."""
    return keyring_of(session).indexes("sender", f"{channel}\x00{sender}")


def store_inbound(session: Session, message: InboundMessage, now: datetime) -> int | None:
    """Store a received message, sealed; None when this provider id was stored before (a
    retry). The row's id is taken first, so its values are sealed for it; its values and its
    indexes come from one set of keys (a rotation written into the key file meanwhile would
    otherwise leave it indexed under a key it is not sealed under)."""
    keyring = keyring_of(session).pinned()
    provider_id = f"{message.channel}\x00{message.provider_message_id}"
    known = keyring.indexes("provider_message", provider_id)
    if len(known) > 1 and session.scalar(select(InboundRow.id).where(
            InboundRow.channel == message.channel,
            InboundRow.provider_message_index.in_(known))) is not None:
        return None  # stored under an older key, before a rotation got to it
    inbound_id = allocate_ids(session, cast(Table, InboundRow.__table__), 1)[0]
    clear = {"provider_message_id": message.provider_message_id, "sender": message.sender,
             "text": message.text, "attachments": [a.as_dict() for a in message.attachments],
             "hints": dict(message.hints), "error": None}
    values: dict[str, Any] = {  # by column name: the statement is Core, not ORM
        "id": inbound_id, "channel": message.channel, "provider_message_id": known[0],
        "sender_index": keyring.index("sender", f"{message.channel}\x00{message.sender}"),
        "received_at": message.received_at or now, "attempts": 0,
    }
    for name, attribute in sealed_attributes(InboundRow).items():
        value = clear[name]
        table, column = column_of(InboundRow, attribute.column)
        values[column] = None if value is None else keyring.seal(
            attribute.encode(value), f"{table}.{column}#{inbound_id}")
    statement = _insert_inbound(session.get_bind().dialect.name)
    stored = session.execute(statement, values).scalar_one_or_none()
    if stored is not None and message.attachments:
        add_files(session, stored, [a.sha256 for a in message.attachments])
    return stored


@cache
def _insert_inbound(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id into inbound_messages, built once per
    dialect with its values as parameters (building and keying the statement anew for every
    message cost more than running it)."""
    table = cast(Table, InboundRow.__table__)
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (insert(table)
            .on_conflict_do_nothing(index_elements=["channel", "provider_message_id"])
            .returning(table.c.id))


def add_files(session: Session, inbound_id: int, hashes: Sequence[str]) -> None:
    """Record which stored evidence files a message carried (retention keeps them while it
    is kept)."""
    session.add_all(InboundFile(inbound_id=inbound_id, sha256=sha256) for sha256 in hashes)
    session.flush()


def inbound(session: Session, inbound_id: int) -> InboundRow:
    """One stored inbound message, locked: two instances never process it both."""
    return session.get_one(InboundRow, inbound_id, with_for_update=True)


def inbound_rows(session: Session, inbound_ids: Sequence[int]) -> dict[int, InboundRow]:
    """Stored inbound messages by id, locked, in one query (a group processed together)."""
    return {row.id: row for row in session.scalars(_inbound_rows(), {"ids": list(inbound_ids)})}


@cache
def _inbound_rows() -> Select[InboundRow]:
    return (select(InboundRow).where(InboundRow.id.in_(bindparam("ids", expanding=True)))
            .order_by(InboundRow.id).with_for_update())


def current_conversation(session: Session, channel: str, sender: str) -> Conversation | None:
    """The newest conversation of this sender on this channel, locked for this transaction
    (and, when there is none yet, the opening of one: see `lock_indexes`)."""
    indexes = sender_indexes(session, channel, sender)
    lock_indexes(session, indexes)
    return session.scalars(_current_conversation(), {
        "channel": channel, "indexes": indexes}).first()


def lock_indexes(session: Session, indexes: Collection[str]) -> bool:
    """On PostgreSQL, a lock for this transaction on each of these blind indexes (senders,
    providers' message ids); whether it locked. A person's first two messages processed at
    the same moment by two instances would otherwise both find no conversation and open one
    each, and a delivery report and the recording of its part could miss each other. (SQLite's
    write lock already lets one transaction at a time through.) Taken in one order
    everywhere, so two transactions never wait for each other in a circle."""
    if session.get_bind().dialect.name != "postgresql" or not indexes:
        return False
    keys = sorted({int(index[:15], 16) for index in indexes})  # 60 bits of the HMAC
    session.execute(_ADVISORY_LOCKS, {"keys": keys})
    return True


_ADVISORY_LOCKS = text(
    "SELECT pg_advisory_xact_lock(key) FROM unnest(CAST(:keys AS bigint[])) AS key")


@cache
def _current_conversation() -> Select[Conversation]:
    """`current_conversation`'s query, built once with its values as parameters (it runs for
    every message processed; building and keying it anew cost more than running it)."""
    return (select(Conversation)
            .where(Conversation.channel == bindparam("channel"),
                   Conversation.sender_index.in_(bindparam("indexes", expanding=True)))
            .order_by(Conversation.id.desc())
            .limit(1)
            .with_for_update())


def current_conversations(session: Session, senders: Collection[tuple[str, str]]
                          ) -> dict[tuple[str, str], Conversation]:
    """`current_conversation` of several (channel, sender) pairs in one query (a group processed
    together); a sender with no conversation is missing from the answer."""
    by_index: dict[tuple[str, str], tuple[str, str]] = {}
    for channel, sender in senders:
        for index in sender_indexes(session, channel, sender):
            by_index[(channel, index)] = (channel, sender)
    if not by_index:
        return {}
    lock_indexes(session, [index for _, index in by_index])
    found: dict[tuple[str, str], Conversation] = {}
    # Newest first: a sender whose rows are under two keys (a rotation under way) gets the
    # newest of the newest under each.
    for conversation in session.scalars(_current_conversations(), {
            "channels": sorted({channel for channel, _ in by_index}),
            "indexes": sorted({index for _, index in by_index})}):
        key = by_index.get((conversation.channel, conversation.sender_index))
        if key is not None:
            found.setdefault(key, conversation)
    return found


@cache
def _current_conversations() -> Select[Conversation]:
    newest = (select(func.max(Conversation.id))
              .where(Conversation.channel.in_(bindparam("channels", expanding=True)),
                     Conversation.sender_index.in_(bindparam("indexes", expanding=True)))
              .group_by(Conversation.channel, Conversation.sender_index))
    return (select(Conversation).where(Conversation.id.in_(newest))
            .order_by(Conversation.id.desc()).with_for_update())


def new_conversation(session: Session, channel: str, sender: str, now: datetime,
                     hints: dict[str, Any] | None = None) -> Conversation:
    """Open a conversation for a sender."""
    conversation = Conversation(channel=channel, sender=sender, status="draft", state={},
                                hints=dict(hints or {}), created_at=now, updated_at=now)
    session.add(conversation)
    session.flush()
    return conversation


def add_outbox(session: Session, conversation: Conversation, messages: Sequence[OutboundMessage],
               now: datetime, application_id: int | None = None, kind: str = "reply",
               flush: bool = True) -> list[OutboxMessage]:
    """Queue messages to the person on their conversation's channel (`kind`: reply, reminder);
    without `flush`, the rows get their ids at the caller's next flush."""
    rows = [
        OutboxMessage(channel=conversation.channel, recipient=conversation.sender,
                      conversation_id=conversation.id,
                      application_id=application_id or conversation.application_id,
                      body=message.as_dict() | {"direction": message.direction},
                      state="pending", attempts=0, created_at=now, next_attempt_at=now,
                      kind=kind)
        for message in messages
    ]
    session.add_all(rows)
    if flush:
        session.flush()
    return rows


def mark_sent(session: Session, outbox_ids: Sequence[int], now: datetime) -> None:
    """Record that these messages reached the person (terminal and web chat deliver at once)."""
    if outbox_ids:
        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(outbox_ids))
                        .values(state="sent", sent_at=now, attempts=OutboxMessage.attempts + 1))


def undelivered(session: Session, channel: str, sender: str) -> list[OutboxMessage]:
    """Messages still waiting for a person on a channel that delivers when they come back
    (the terminal: the secretariat's notices are shown at the next `gateway chat`)."""
    conversations = select(Conversation.id).where(by_sender(session, Conversation, channel,
                                                            sender))
    statement = (select(OutboxMessage)
                 .where(OutboxMessage.channel == channel,
                        OutboxMessage.conversation_id.in_(conversations),
                        OutboxMessage.state == "pending")
                 .order_by(OutboxMessage.id))
    return list(session.scalars(statement))


def reference_exists(session: Session, reference: str) -> bool:
    """Whether a reference number is taken."""
    count = session.scalar(select(func.count()).where(Application.reference == reference))
    return bool(count)


def add_evidence(session: Session, conversation: Conversation, items: Sequence[dict[str, Any]],
                 now: datetime, application_id: int | None = None,
                 after_submission: bool = False) -> None:
    """Store evidence items (attachments or descriptions) of a conversation."""
    for item in items:
        session.add(Evidence(
            conversation_id=conversation.id, application_id=application_id,
            kind=item.get("kind", "attachment"), filename=item.get("filename"),
            media_type=item.get("media_type"), size=item.get("size"), sha256=item.get("sha256"),
            description=item.get("text"), added_at=now, after_submission=after_submission))
    session.flush()


@dataclass(frozen=True)
class QueueFilter:
    """What the queue is narrowed to."""

    status: str | None = None
    channel: str | None = None
    language: str | None = None
    confidentiality_requested: bool | None = None


def applications(session: Session, queue_filter: QueueFilter | None = None) -> list[Application]:
    """The queue: applications by formal-review deadline, earliest first."""
    statement: Select[tuple[Application]] = select(Application)
    wanted = queue_filter or QueueFilter()
    if wanted.status:
        statement = statement.where(Application.status == wanted.status)
    if wanted.channel:
        statement = statement.where(Application.channel == wanted.channel)
    if wanted.language:
        statement = statement.where(Application.language == wanted.language)
    if wanted.confidentiality_requested is not None:
        statement = statement.where(
            Application.confidentiality_requested == wanted.confidentiality_requested)
    statement = statement.order_by(Application.formal_review_deadline, Application.id)
    return list(session.scalars(statement))


def application_by_reference(session: Session, reference: str) -> Application | None:
    """One application by its reference number."""
    return session.scalars(select(Application).where(Application.reference == reference)).first()


def evidence_of(session: Session, application_id: int) -> list[Evidence]:
    """The evidence of an application, oldest first."""
    statement = (select(Evidence).where(Evidence.application_id == application_id)
                 .order_by(Evidence.id))
    return list(session.scalars(statement))


def transcript(session: Session, conversation_ids: Sequence[int]) -> list[tuple[str, datetime,
                                                                               dict[str, Any]]]:
    """Both sides of the conversations in time order: ("in"|"out", when, content)."""
    received = session.scalars(select(InboundRow).where(
        InboundRow.conversation_id.in_(conversation_ids)))
    sent = session.scalars(select(OutboxMessage).where(
        OutboxMessage.conversation_id.in_(conversation_ids)))
    lines = [("in", row.received_at, {"text": row.text, "attachments": row.attachments})
             for row in received]
    lines += [("out", row.created_at,
               row.body | {"delivery": row.state, "delivery_error": row.last_error})
              for row in sent]
    return sorted(lines, key=lambda line: line[1])


def failed_deliveries(session: Session, application_ids: Sequence[int]) -> dict[int, int]:
    """Per application, how many messages to the applicant could not be delivered."""
    if not application_ids:
        return {}
    rows = session.execute(
        select(Conversation.application_id, func.count())
        .join(OutboxMessage, OutboxMessage.conversation_id == Conversation.id)
        .where(Conversation.application_id.in_(application_ids),
               OutboxMessage.state == "failed")
        .group_by(Conversation.application_id))
    return {int(application_id): int(count) for application_id, count in rows
            if application_id is not None}


def drafts_idle_since(session: Session, before: datetime, reminded: bool, limit: int = 500
                      ) -> list[Conversation]:
    """Open drafts whose last message came before `before` (reminded or not yet)."""
    statement = (select(Conversation)
                 .where(Conversation.status == "draft",
                        Conversation.updated_at < before,
                        Conversation.reminder_sent_at.is_not(None) if reminded
                        else Conversation.reminder_sent_at.is_(None))
                 .order_by(Conversation.id).limit(limit).with_for_update(skip_locked=True))
    return list(session.scalars(statement))


def unprocessed_inbound(session: Session, before: datetime, max_attempts: int, limit: int = 100
                        ) -> list[tuple[int, str, str]]:
    """(id, channel, sender) of stored messages not yet processed (a crash between storing and
    processing).

    A message whose file is still being fetched waits, and so do the sender's later ones
    (senders are compared in clear here: their indexes may differ while keys rotate)."""
    rows = list(session.scalars(
        select(InboundRow)
        .where(InboundRow.processed_at.is_(None), InboundRow.received_at < before,
               InboundRow.attempts < max_attempts)
        .order_by(InboundRow.id).limit(limit)))
    fetching = list(session.scalars(
        select(InboundRow).where(InboundRow.processed_at.is_(None), InboundRow.id.in_(
            select(MediaDownload.inbound_id).where(MediaDownload.state == "pending")))))
    first_waiting: dict[tuple[str, str], int] = {}
    for row in fetching:
        key = (row.channel, row.sender)
        first_waiting[key] = min(row.id, first_waiting.get(key, row.id))
    return [(row.id, row.channel, row.sender) for row in rows
            if row.id < first_waiting.get((row.channel, row.sender), row.id + 1)]


def application_for_update(session: Session, reference: str) -> Application | None:
    """One application by reference, locked until the transaction ends (one decision at once)."""
    statement = select(Application).where(Application.reference == reference).with_for_update()
    return session.scalars(statement).first()


def awaiting_answer(session: Session, draft: Conversation) -> Conversation | None:
    """The conversation of the sender's application that waits for their answer to the
    secretariat's request for more information, when that request is the last thing they
    were sent (after everything of `draft`, their newer conversation), locked; else None."""
    waiting = session.scalars(
        select(Conversation)
        .join(Application, Application.id == Conversation.application_id)
        .where(by_sender(session, Conversation, draft.channel, draft.sender),
               Conversation.id != draft.id, Application.status == "supplement_requested")
        .order_by(Conversation.id.desc()).limit(1).with_for_update(of=Conversation)).first()
    if waiting is None:
        return None
    last = {conversation_id: latest for conversation_id, latest in session.execute(
        select(OutboxMessage.conversation_id, func.max(OutboxMessage.id))
        .where(OutboxMessage.conversation_id.in_([waiting.id, draft.id]))
        .group_by(OutboxMessage.conversation_id))}
    return waiting if last.get(waiting.id, 0) > last.get(draft.id, 0) else None


def conversation_of(session: Session, application_id: int) -> Conversation | None:
    """The conversation an application was filed in (its notices go there)."""
    return session.scalars(select(Conversation).where(
        Conversation.application_id == application_id).order_by(Conversation.id)).first()


def conversations_of(session: Session, application_id: int) -> list[int]:
    """Ids of the conversations that belong to an application."""
    return list(session.scalars(select(Conversation.id).where(
        Conversation.application_id == application_id).order_by(Conversation.id)))


# -- the secretariat's users, logins and records --------------------------------------------


def add_user(session: Session, username: str, role: str, password_hash: str, now: datetime
             ) -> StaffUser:
    """A new secretariat user."""
    user = StaffUser(username=username, role=role, password_hash=password_hash, created_at=now)
    session.add(user)
    session.flush()
    return user


def user_by_name(session: Session, username: str) -> StaffUser | None:
    """A user by login name."""
    return session.scalars(select(StaffUser).where(StaffUser.username == username)).first()


def users(session: Session) -> list[StaffUser]:
    """Every user, by name."""
    return list(session.scalars(select(StaffUser).order_by(StaffUser.username)))


def add_staff_session(session: Session, staff_session: StaffSession) -> StaffSession:
    """Store a login (its token only as a hash)."""
    session.add(staff_session)
    session.flush()
    return staff_session


def staff_session_by_hash(session: Session, token_hash: str
                          ) -> tuple[StaffSession, StaffUser] | None:
    """A login and its user by the hash of its token."""
    row = session.execute(select(StaffSession, StaffUser).join(
        StaffUser, StaffUser.id == StaffSession.user_id).where(
        StaffSession.token_hash == token_hash)).first()
    return (row[0], row[1]) if row else None


def revoke_sessions_of(session: Session, user_id: int, now: datetime) -> None:
    """End every login of a user (disabled users are logged out everywhere)."""
    session.execute(update(StaffSession).where(StaffSession.user_id == user_id,
                                               StaffSession.revoked_at.is_(None))
                    .values(revoked_at=now))


def record_login_attempt(session: Session, username: str, address: str, now: datetime,
                         succeeded: bool) -> None:
    """Remember one login attempt."""
    session.add(LoginAttempt(username=username, address=address, attempted_at=now,
                             succeeded=succeeded))
    session.flush()


def failed_logins_since(session: Session, since: datetime, username: str | None = None,
                        address: str | None = None) -> int:
    """Failed attempts since a time, for a user name or for an address."""
    statement = select(func.count()).where(LoginAttempt.attempted_at >= since,
                                           LoginAttempt.succeeded.is_(False))
    if username is not None:
        statement = statement.where(LoginAttempt.username == username)
    if address is not None:
        statement = statement.where(LoginAttempt.address == address)
    return int(session.scalar(statement) or 0)


def add_audit(session: Session, event: AuditEvent) -> None:
    """Append to the audit log."""
    session.add(event)
    session.flush()


def audit_events(session: Session, limit: int = 500, application_id: int | None = None
                 ) -> list[AuditEvent]:
    """The newest audit events, newest first."""
    statement = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if application_id is not None:
        statement = statement.where(AuditEvent.application_id == application_id)
    return list(session.scalars(statement))


def add_action(session: Session, action: ApplicationAction) -> ApplicationAction:
    """Add one step to an application's history."""
    session.add(action)
    session.flush()
    return action


def actions_of(session: Session, application_id: int) -> list[ApplicationAction]:
    """An application's history, oldest first."""
    return list(session.scalars(select(ApplicationAction).where(
        ApplicationAction.application_id == application_id).order_by(ApplicationAction.id)))


def filing_started_at(session: Session) -> dict[int, datetime]:
    """For each application, when the conversation that filed it began."""
    rows = session.execute(select(Conversation.application_id, func.min(Conversation.created_at))
                           .where(Conversation.application_id.is_not(None))
                           .group_by(Conversation.application_id))
    return {application_id: started for application_id, started in rows
            if application_id is not None}
