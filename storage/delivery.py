"""Repository functions of the messaging channels: files still to fetch, the outbox sender's
claims and results, delivery reports and blocked people. They flush but never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Protocol, cast

from sqlalchemy import Select, Table, Update, bindparam, exists, select, update
from sqlalchemy.orm import Session, aliased

from storage.models import Conversation, MediaDownload, OutboxMessage
from storage.models import InboundMessage as InboundRow
from storage.repository import add_files, by_sender
from storage.sealing import keyring_of

# Outbox rows in these states keep the rows after them (same conversation) waiting.
UNFINISHED = ("pending", "sending", "held")


class MediaToFetch(Protocol):
    """What a channel says about a file it has not handed over yet."""

    @property
    def reference(self) -> str: ...
    @property
    def media_type(self) -> str | None: ...
    @property
    def filename(self) -> str | None: ...
    @property
    def size(self) -> int | None: ...


# -- files to fetch -------------------------------------------------------------------------


def add_media_downloads(session: Session, inbound_id: int, channel: str,
                        media: Sequence[MediaToFetch], now: datetime) -> None:
    """One download job per file of a stored inbound message."""
    session.add_all(MediaDownload(
        inbound_id=inbound_id, channel=channel, reference=item.reference,
        declared_media_type=item.media_type, filename=item.filename, declared_size=item.size,
        state="pending", attempts=0, next_attempt_at=now, created_at=now) for item in media)
    session.flush()


def media_of(session: Session, inbound_id: int) -> list[MediaDownload]:
    """The download jobs of one inbound message, in the order the files came."""
    return list(session.scalars(select(MediaDownload).where(
        MediaDownload.inbound_id == inbound_id).order_by(MediaDownload.id)))


def media_job(session: Session, job_id: int) -> MediaDownload:
    """One download job, locked for this transaction."""
    return session.get_one(MediaDownload, job_id, with_for_update=True)


def inbound_with_due_media(session: Session, now: datetime, limit: int = 100) -> list[int]:
    """Inbound messages whose pending downloads are due for another try."""
    statement = (select(MediaDownload.inbound_id)
                 .where(MediaDownload.state == "pending", MediaDownload.next_attempt_at <= now)
                 .group_by(MediaDownload.inbound_id).order_by(MediaDownload.inbound_id)
                 .limit(limit))
    return list(session.scalars(statement))


def with_pending_media(session: Session, inbound_ids: Sequence[int]) -> set[int]:
    """Those of these inbound messages that have a download still pending."""
    if not inbound_ids:
        return set()
    return set(session.scalars(select(MediaDownload.inbound_id).where(
        MediaDownload.inbound_id.in_(list(inbound_ids)), MediaDownload.state == "pending")))


def waiting_for_media(session: Session, inbound_id: int) -> bool:
    """Whether a download of this message is still pending."""
    return session.scalar(select(exists().where(
        MediaDownload.inbound_id == inbound_id, MediaDownload.state == "pending"))) or False


def store_attachment(session: Session, job: MediaDownload, attachment: dict[str, Any],
                     now: datetime) -> None:
    """A fetched file joins its inbound message's attachments."""
    job.state, job.attachment, job.finished_at, job.last_error = "done", attachment, now, None
    row = session.get_one(InboundRow, job.inbound_id, with_for_update=True)
    row.attachments = [*(row.attachments or []), attachment]
    add_files(session, row.id, [attachment["sha256"]])


def failed_media(session: Session, inbound_ids: Sequence[int]
                 ) -> dict[int, list[MediaDownload]]:
    """Downloads of these messages that failed for good (the person is told), by message."""
    found: dict[int, list[MediaDownload]] = {}
    for job in session.scalars(_failed_media(), {"inbound_ids": list(inbound_ids)}):
        found.setdefault(job.inbound_id, []).append(job)
    return found


@cache
def _failed_media() -> Select[MediaDownload]:
    """`failed_media`'s query, built once with its values as parameters (it runs for every
    group of messages processed)."""
    return (select(MediaDownload)
            .where(MediaDownload.inbound_id.in_(bindparam("inbound_ids", expanding=True)),
                   MediaDownload.state == "failed")
            .order_by(MediaDownload.id))


# -- the order of one sender's messages ------------------------------------------------------


def backlog(session: Session, inbound_id: int, max_attempts: int,
            sender: tuple[str, str] | None = None) -> list[int]:
    """The unprocessed messages of this message's sender (it among them), oldest first;
    `sender` (channel, sender) when the caller knows it, which spares opening the row."""
    if sender is None:
        row = session.get_one(InboundRow, inbound_id)
        sender = (row.channel, row.sender)
    statement = (select(InboundRow.id)
                 .where(by_sender(session, InboundRow, *sender),
                        InboundRow.processed_at.is_(None),
                        InboundRow.attempts < max_attempts)
                 .order_by(InboundRow.id))
    return list(session.scalars(statement))


# -- the outbox sender -------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """An outbox row taken by one sender, with what sending it needs to know."""

    outbox_id: int
    lease: datetime
    channel: str
    recipient: str
    body: dict[str, Any]
    kind: str
    attempts: int
    parts_sent: int
    conversation_id: int | None
    language: str | None
    last_inbound_at: datetime | None
    blocked: bool


def claim_outbox(session: Session, channels: Sequence[str], now: datetime, lease: datetime,
                 limit: int = 100) -> list[Claim]:
    """Take the due rows that are first in their conversation's queue.

    Only the oldest unfinished row of a conversation is taken, so replies go out in order even
    with several senders; PostgreSQL skips rows another sender has locked (SKIP LOCKED). A row
    left in `sending` by a crashed sender is taken again once its lease has run out.
    """
    if not channels:
        return []
    earlier = aliased(OutboxMessage)
    waits = exists().where(earlier.conversation_id == OutboxMessage.conversation_id,
                           earlier.id < OutboxMessage.id, earlier.state.in_(UNFINISHED))
    statement = (select(OutboxMessage)
                 .where(OutboxMessage.channel.in_(list(channels)),
                        OutboxMessage.state.in_(("pending", "sending")),
                        OutboxMessage.next_attempt_at <= now, ~waits)
                 .order_by(OutboxMessage.id).limit(limit)
                 .with_for_update(skip_locked=True, of=OutboxMessage))
    rows = list(session.scalars(statement))
    conversations = {c.id: c for c in session.scalars(select(Conversation).where(
        Conversation.id.in_([r.conversation_id for r in rows if r.conversation_id])))}
    claims = []
    for row in rows:
        conversation = conversations.get(row.conversation_id or 0)
        row.state, row.next_attempt_at = "sending", lease
        claims.append(Claim(
            outbox_id=row.id, lease=lease, channel=row.channel, recipient=row.recipient,
            body=dict(row.body), kind=row.kind, attempts=row.attempts, parts_sent=row.parts_sent,
            conversation_id=row.conversation_id,
            language=conversation.language if conversation else None,
            last_inbound_at=conversation.last_inbound_at if conversation else None,
            blocked=bool(conversation and conversation.blocked_at)))
    session.flush()
    return claims


def claimed_rows(session: Session, claims: Sequence[Claim]) -> dict[int, OutboxMessage]:
    """The claimed rows, locked, by id: those these claims still hold (no other sender took
    them since)."""
    leases = {claim.outbox_id: claim.lease for claim in claims}
    rows = session.scalars(select(OutboxMessage).where(
        OutboxMessage.id.in_(list(leases))).with_for_update())
    return {row.id: row for row in rows
            if row.state == "sending" and row.next_attempt_at == leases[row.id]}


def mark_blocked(session: Session, channel: str, sender: str, blocked: bool, now: datetime
                 ) -> int:
    """Record that a person blocked the bot (or came back) on every conversation of theirs."""
    result = session.execute(update(Conversation).where(
        by_sender(session, Conversation, channel, sender)).values(
        blocked_at=now if blocked else None))
    return int(getattr(result, "rowcount", 0) or 0)


def release_held(session: Session, conversation_ids: Sequence[int], now: datetime) -> None:
    """These people wrote: messages held for WhatsApp's 24-hour window go out now.

    A Core statement on the session's connection, run for every group of messages processed:
    no held row is ever loaded in the transaction that processes a message, so the ORM has
    nothing to flush or synchronise first."""
    session.connection().execute(_release_held(), {"held_in": list(conversation_ids),
                                                   "released_at": now})


@cache
def _release_held() -> Update:
    table = cast(Table, OutboxMessage.__table__)
    return (update(table)
            .where(table.c.conversation_id.in_(bindparam("held_in", expanding=True)),
                   table.c.state == "held")
            .values(state="pending", delivery_mode=None,
                    next_attempt_at=bindparam("released_at", type_=table.c.next_attempt_at.type)))


def record_report(session: Session, channel: str, provider_message_id: str, status: str,
                  error: str | None, blocked: bool, now: datetime) -> bool:
    """A provider's delivery report on a sent message; False when no sent row matches."""
    indexes = keyring_of(session).indexes("provider_message",
                                          f"{channel}\x00{provider_message_id}")
    row = session.scalars(select(OutboxMessage).where(
        OutboxMessage.channel == channel,
        OutboxMessage.provider_message_index.in_(indexes))).first()
    if row is None:
        return False
    if status in ("delivered", "read") and row.delivery_status != "read":
        row.delivery_status = status
    elif status == "failed":
        row.delivery_status, row.state = "failed", "failed"
        row.last_error = error or "the provider reported the message as not delivered"
        if blocked and row.conversation_id is not None:
            conversation = session.get_one(Conversation, row.conversation_id)
            mark_blocked(session, conversation.channel, conversation.sender, True, now)
    session.flush()
    return True

