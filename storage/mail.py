"""Repository functions of the e-mail channel: received mails, threads, the mailbox's cursor
and lease, and the messages that need a person. They flush but never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from intake.messages import InboundMessage
from storage import repository
from storage.models import (
    Conversation,
    EmailMessage,
    EmailThread,
    Mailbox,
    OutboxMessage,
    OutboxPart,
)
from storage.models import InboundMessage as InboundRow
from storage.sealing import keyring_of

CHANNEL = "email"


class LeaseLost(RuntimeError):
    """Another instance reads the mailbox now: this one must stop."""


# -- received mails ---------------------------------------------------------------------------


def store_mail(session: Session, message: InboundMessage, raw_sha256: str,
               details: dict[str, Any], needs_person: str | None, refused: bool,
               now: datetime) -> int | None:
    """Store a received mail with its raw message and details; None when its Message-ID was
    stored before. A refused mail (a loop, unreadable) is stored as processed: a person looks
    at it, the gateway does not answer it."""
    inbound_id = repository.store_inbound(session, message, now)
    if inbound_id is None:
        return None
    row = session.get_one(InboundRow, inbound_id)
    row.raw_sha256 = raw_sha256
    row.needs_person = needs_person
    if refused:
        row.processed_at = now
    repository.add_files(session, inbound_id, [raw_sha256])
    session.add(EmailMessage(inbound_id=inbound_id, details=details))
    session.flush()
    return inbound_id


def details_of(session: Session, inbound_id: int) -> dict[str, Any]:
    """What was stored of an e-mail besides its text (empty for other channels)."""
    found = session.scalars(select(EmailMessage).where(
        EmailMessage.inbound_id == inbound_id)).first()
    return dict(found.details) if found else {}


# -- threads ------------------------------------------------------------------------------------


def new_thread(session: Session, conversation: Conversation, token: str,
               details: dict[str, Any], now: datetime) -> EmailThread:
    """The thread of a new conversation, with its reply token."""
    thread = EmailThread(conversation_id=conversation.id, token=token, details=details,
                         created_at=now, updated_at=now)
    session.add(thread)
    session.flush()
    return thread


def thread_of(session: Session, conversation_id: int) -> EmailThread | None:
    """The thread of a conversation, if it came by e-mail."""
    return session.scalars(select(EmailThread).where(
        EmailThread.conversation_id == conversation_id)).first()


def thread_by_token(session: Session, token: str) -> EmailThread | None:
    """The thread a reply address (intake+<token>@…) names."""
    return session.scalars(select(EmailThread).where(EmailThread.token == token)).first()


def conversation_answered(session: Session, message_ids: Sequence[str]) -> int | None:
    """The conversation of the newest of these Message-IDs that is one of ours (a reply we
    sent: its Message-ID is the part the outbox recorded) or one of the person's earlier
    mails."""
    keyring = keyring_of(session)
    for message_id in message_ids:
        indexes = keyring.indexes("provider_message", f"{CHANNEL}\x00{message_id}")
        ours = select(OutboxMessage.conversation_id).join(
            OutboxPart, OutboxPart.outbox_id == OutboxMessage.id).where(
            OutboxPart.channel == CHANNEL, OutboxPart.provider_message_index.in_(indexes),
            OutboxMessage.conversation_id.is_not(None))
        theirs = select(InboundRow.conversation_id).where(
            InboundRow.channel == CHANNEL, InboundRow.provider_message_index.in_(indexes),
            InboundRow.conversation_id.is_not(None))
        for query in (ours, theirs):
            found = session.scalar(query.limit(1))
            if found is not None:
                return int(found)
    return None


def replies_since(session: Session, sender: str, since: datetime) -> int:
    """How many e-mails the gateway queued to this address since a time (all its threads)."""
    conversations = select(Conversation.id).where(
        repository.by_sender(session, Conversation, CHANNEL, sender))
    return int(session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.conversation_id.in_(conversations),
        OutboxMessage.created_at >= since)) or 0)


# -- the mailbox ---------------------------------------------------------------------------


def take_lease(session: Session, name: str, holder: str, now: datetime, until: datetime
               ) -> bool:
    """Hold (or keep holding) the right to read a mailbox until `until`; False while another
    instance holds it."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(Mailbox).values(name=name, last_uid=0)
                    .on_conflict_do_nothing(index_elements=["name"]))
    mailbox = _mailbox(session, name)
    held_by_other = mailbox.lease_holder not in (None, holder) and \
        mailbox.lease_expires_at is not None and mailbox.lease_expires_at > now
    if held_by_other:
        return False
    mailbox.lease_holder, mailbox.lease_expires_at = holder, until
    session.flush()
    return True


def release_lease(session: Session, name: str, holder: str) -> None:
    """Let another instance read the mailbox at once (on shutdown)."""
    mailbox = session.scalars(select(Mailbox).where(Mailbox.name == name)
                              .with_for_update()).first()
    if mailbox is not None and mailbox.lease_holder == holder:
        mailbox.lease_holder, mailbox.lease_expires_at = None, None


def cursor(session: Session, name: str) -> tuple[int | None, int]:
    """(UIDVALIDITY, last UID stored) of a mailbox."""
    mailbox = session.scalars(select(Mailbox).where(Mailbox.name == name)).first()
    return (mailbox.uidvalidity, int(mailbox.last_uid)) if mailbox else (None, 0)


def advance(session: Session, name: str, holder: str, uidvalidity: int, uid: int,
            now: datetime) -> None:
    """Record that the message `uid` is stored (in the transaction that stored it); a new
    UIDVALIDITY starts the count again. LeaseLost when this instance no longer reads it."""
    mailbox = _mailbox(session, name)
    if mailbox.lease_holder != holder:
        raise LeaseLost(f"mailbox {name} is read by {mailbox.lease_holder}")
    if mailbox.uidvalidity != uidvalidity:
        mailbox.uidvalidity, mailbox.last_uid = uidvalidity, 0
    mailbox.last_uid = max(int(mailbox.last_uid), uid)
    mailbox.polled_at = now
    session.flush()


def _mailbox(session: Session, name: str) -> Mailbox:
    return session.scalars(select(Mailbox).where(Mailbox.name == name)
                           .with_for_update()).one()


# -- what needs a person ----------------------------------------------------------------------


def _needing_person() -> Any:
    return (InboundRow.handled_at.is_(None)
            & or_(InboundRow.needs_person.is_not(None), InboundRow.error_sealed.is_not(None)))


def needing_person(session: Session, limit: int = 200) -> list[InboundRow]:
    """Received messages a person must look at (refused, doubtful or failed), newest first."""
    return list(session.scalars(select(InboundRow).where(_needing_person())
                                .order_by(InboundRow.id.desc()).limit(limit)))


def mark_handled(session: Session, inbound_id: int, username: str, now: datetime) -> bool:
    """A person dealt with a message; False when there is no such message."""
    row = session.get(InboundRow, inbound_id, with_for_update=True)
    if row is None:
        return False
    row.handled_at, row.handled_by = now, username
    return True
