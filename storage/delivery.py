"""Repository functions of the messaging channels: files still to fetch, the outbox sender's
claims and results, delivery reports and blocked people. They flush but never commit."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Protocol, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    Update,
    bindparam,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from storage.models import Conversation, MediaDownload, OutboxMessage, OutboxPart
from storage.models import InboundMessage as InboundRow
from storage.repository import add_files, by_sender, lock_indexes
from storage.sealing import keyring_of

# Outbox rows in these states keep the rows after them (same conversation) waiting.
UNFINISHED = ("pending", "sending", "held")
# What a delivery report can say that changes anything ("sent", "queued" and the like do not).
REPORTED = ("delivered", "read", "failed")
# How long a report on a part not recorded yet is kept for it. The sender records a reply's
# parts once its last part is out, within its claim (minutes); a reply whose sender died is
# sent again, under new ids, so a report older than this names nothing that will come.
EARLY_REPORT_KEPT = timedelta(days=1)


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
    """An outbox row taken by one sender, with what sending it needs to know.

    `last_inbound_at` is when the person last wrote on this channel, in any of their
    conversations (WhatsApp's 24-hour window is the phone number's, not a conversation's)."""

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
    heard = last_heard(session, [(row.channel, row.recipient) for row in rows])
    claims = []
    for row in rows:
        conversation = conversations.get(row.conversation_id or 0)
        row.state, row.next_attempt_at = "sending", lease
        claims.append(Claim(
            outbox_id=row.id, lease=lease, channel=row.channel, recipient=row.recipient,
            body=dict(row.body), kind=row.kind, attempts=row.attempts, parts_sent=row.parts_sent,
            conversation_id=row.conversation_id,
            language=conversation.language if conversation else None,
            last_inbound_at=heard.get((row.channel, row.recipient)),
            blocked=bool(conversation and conversation.blocked_at)))
    session.flush()
    return claims


def last_heard(session: Session, people: Collection[tuple[str, str]]
               ) -> dict[tuple[str, str], datetime]:
    """When each (channel, person) last wrote, in any of their conversations; those who never
    did are missing."""
    keyring = keyring_of(session)
    by_index = {(channel, index): (channel, person) for channel, person in set(people)
                for index in keyring.indexes("sender", f"{channel}\x00{person}")}
    if not by_index:
        return {}
    heard: dict[tuple[str, str], datetime] = {}
    for channel, index, latest in session.execute(_last_heard(), {
            "channels": sorted({channel for channel, _ in by_index}),
            "indexes": sorted({index for _, index in by_index})}):
        person = by_index.get((channel, index))
        if person is not None and latest is not None:
            heard[person] = max(latest, heard.get(person, latest))
    return heard


@cache
def _last_heard() -> Select[str, str, datetime | None]:
    return (select(Conversation.channel, Conversation.sender_index,
                   func.max(Conversation.last_inbound_at))
            .where(Conversation.channel.in_(bindparam("channels", expanding=True)),
                   Conversation.sender_index.in_(bindparam("indexes", expanding=True)))
            .group_by(Conversation.channel, Conversation.sender_index))


def claimed_rows(session: Session, claims: Sequence[Claim]) -> dict[int, OutboxMessage]:
    """The claimed rows, locked, by id: those these claims still hold (no other sender took
    them since)."""
    leases = {claim.outbox_id: claim.lease for claim in claims}
    rows = session.scalars(select(OutboxMessage).where(
        OutboxMessage.id.in_(list(leases))).with_for_update())
    return {row.id: row for row in rows
            if row.state == "sending" and row.next_attempt_at == leases[row.id]}


def heard_from_since(session: Session, claims: Sequence[Claim]) -> set[int]:
    """Of these claims, the outbox ids whose person wrote after the claim was made (later than
    it saw). Their conversations are locked for sharing: a message of theirs being processed
    now is waited for, or finds the row held once this transaction commits, and releases it."""
    found = set()
    for claim in claims:
        heard = session.scalars(select(Conversation.last_inbound_at).where(
            by_sender(session, Conversation, claim.channel, claim.recipient))
            .with_for_update(read=True))
        latest = max((at for at in heard if at is not None), default=None)
        if latest is not None and (claim.last_inbound_at is None
                                   or latest > claim.last_inbound_at):
            found.add(claim.outbox_id)
    return found


def mark_blocked(session: Session, channel: str, sender: str, blocked: bool, now: datetime
                 ) -> int:
    """Record that a person blocked the bot (or came back) on every conversation of theirs."""
    result = session.execute(update(Conversation).where(
        by_sender(session, Conversation, channel, sender)).values(
        blocked_at=now if blocked else None))
    return int(getattr(result, "rowcount", 0) or 0)


def release_held(session: Session, conversation_ids: Sequence[int], now: datetime) -> None:
    """These people wrote: messages held for WhatsApp's 24-hour window go out now, those of
    every conversation of theirs on the channel (the window is the phone number's).

    A Core statement on the session's connection, run for every group of messages processed:
    no held row is ever loaded in the transaction that processes a message, so the ORM has
    nothing to flush or synchronise first."""
    session.connection().execute(_release_held(), {"held_in": list(conversation_ids),
                                                   "released_at": now})


@cache
def _release_held() -> Update:
    table = cast(Table, OutboxMessage.__table__)
    conversations = cast(Table, Conversation.__table__)
    heard = conversations.alias("heard")
    # During a key rotation a person's conversations can be indexed under two keys for a
    # while; a row of one not yet indexed again waits for their next message.
    theirs = (select(conversations.c.id)
              .join(heard, (heard.c.channel == conversations.c.channel)
                    & (heard.c.sender_index == conversations.c.sender_index))
              .where(heard.c.id.in_(bindparam("held_in", expanding=True))))
    return (update(table)
            .where(table.c.conversation_id.in_(theirs), table.c.state == "held")
            .values(state="pending", delivery_mode=None,
                    next_attempt_at=bindparam("released_at", type_=table.c.next_attempt_at.type)))


# -- the parts sent and the providers' reports on them ---------------------------------------


@dataclass(frozen=True)
class SentParts:
    """Parts of one outbox row the provider took: their ids in order, numbered from `first`
    (0: the template that announces a held message)."""

    row: OutboxMessage
    provider_ids: Sequence[str]
    first: int


def record_parts(session: Session, sent: Sequence[SentParts], now: datetime) -> None:
    """Make the parts just sent findable by the providers' delivery reports; a report that
    came before its part was recorded counts for the row now."""
    named = {(parts.row.channel, provider_id): parts
             for parts in sent for provider_id in parts.provider_ids}
    if not named:
        return
    indexes = _indexes(session, named)
    lock_indexes(session, indexes)
    early = {indexes[part.provider_message_index]: part for part in session.scalars(
        select(OutboxPart).where(OutboxPart.outbox_id.is_(None),
                                 OutboxPart.provider_message_index.in_(sorted(indexes)))
        .with_for_update())}
    for parts in sent:
        for number, provider_id in enumerate(parts.provider_ids, start=parts.first):
            part = early.get((parts.row.channel, provider_id)) or OutboxPart(
                channel=parts.row.channel, provider_message_id=provider_id, blocked=False)
            part.outbox_id, part.part, part.sent_at = parts.row.id, number, now
            session.add(part)
    for name, part in early.items():
        _settle(session, named[name].row, part, now)


def record_report(session: Session, channel: str, provider_message_id: str, status: str,
                  error: str | None, blocked: bool, now: datetime) -> bool:
    """A provider's delivery report on a message sent; False when it names no part recorded.
    One that says something (delivered, read, failed) is kept then: it counts for the row once
    the sender records the part (`record_parts`)."""
    indexes = _indexes(session, [(channel, provider_message_id)])
    part = _part(session, channel, indexes)
    if part is None and status in REPORTED and lock_indexes(session, indexes):
        part = _part(session, channel, indexes)  # recorded while this waited for the lock
    if status not in REPORTED:
        return part is not None and part.outbox_id is not None
    if part is None:
        part = _keep(session, channel, provider_message_id, now)
    _note(part, status, error, blocked, now)
    if part.outbox_id is None:
        session.flush()
        return False
    _settle(session, session.get_one(OutboxMessage, part.outbox_id, with_for_update=True),
            part, now)
    session.flush()
    return True


def _indexes(session: Session, names: Collection[tuple[str, str]]
             ) -> dict[str, tuple[str, str]]:
    """The blind index of each (channel, provider id) under every key, to what it indexes."""
    keyring = keyring_of(session)
    return {index: (channel, provider_id) for channel, provider_id in names
            for index in keyring.indexes("provider_message", f"{channel}\x00{provider_id}")}


def _part(session: Session, channel: str, indexes: Collection[str]) -> OutboxPart | None:
    """The part a provider's id names (or the report kept on it), locked."""
    return session.scalars(select(OutboxPart).where(
        OutboxPart.channel == channel, OutboxPart.provider_message_index.in_(list(indexes)))
        .limit(1).with_for_update()).first()


def _keep(session: Session, channel: str, provider_message_id: str, now: datetime
          ) -> OutboxPart:
    """A report on a part not recorded yet, kept for it; reports kept too long go."""
    forget_early_reports(session, now)
    part = OutboxPart(channel=channel, provider_message_id=provider_message_id, blocked=False)
    session.add(part)
    return part


def early_reports_past_keeping(session: Session, now: datetime) -> bool:
    """Whether a report kept for a part is older than EARLY_REPORT_KEPT (a read)."""
    return session.scalar(select(OutboxPart.id).where(*_past_keeping(now)).limit(1)) is not None


def forget_early_reports(session: Session, now: datetime) -> int:
    """Delete the reports kept for parts that never came (their sealed ids name a person's
    number on WhatsApp): past EARLY_REPORT_KEPT nothing will claim them."""
    result = session.execute(delete(OutboxPart).where(*_past_keeping(now))
                             .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def _past_keeping(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """The reports kept for a part that has not come in EARLY_REPORT_KEPT."""
    return (OutboxPart.outbox_id.is_(None), OutboxPart.reported_at < now - EARLY_REPORT_KEPT)


def _note(part: OutboxPart, status: str, error: str | None, blocked: bool,
          now: datetime) -> None:
    """What one report says of its part: a failure stays, and read goes past delivered
    (reports can come out of order)."""
    part.reported_at = now
    if part.delivery_status == "failed" or (part.delivery_status, status) == ("read",
                                                                            "delivered"):
        return
    part.delivery_status = status
    if status == "failed":
        part.error, part.blocked = error, blocked


def _settle(session: Session, row: OutboxMessage, part: OutboxPart, now: datetime) -> None:
    """What a part's report means for its row: a part not delivered fails the reply, for good
    (a held message's template only while the message waits for it); the reply is delivered,
    or read, once every part of it is."""
    if part.delivery_status == "failed":
        if part.part == 0 and row.state != "held":
            return  # the person wrote meanwhile, and the message itself went out
        row.delivery_status = "failed"
        row.last_error = part.error or "the provider reported the message as not delivered"
        if row.state != "sending":  # a sender still at it records the failure itself
            row.state, row.next_attempt_at = "failed", None
        if part.blocked and row.conversation_id is not None:
            conversation = session.get_one(Conversation, row.conversation_id)
            mark_blocked(session, conversation.channel, conversation.sender, True, now)
        return
    if row.state != "sent" or row.delivery_status == "failed":
        return
    statuses = set(session.scalars(select(OutboxPart.delivery_status).where(
        OutboxPart.outbox_id == row.id, OutboxPart.part > 0)))
    if statuses and statuses <= {"read"}:
        row.delivery_status = "read"
    elif statuses and statuses <= {"delivered", "read"}:
        row.delivery_status = "delivered"
