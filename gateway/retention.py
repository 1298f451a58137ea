"""Retention: drafts abandoned past GATEWAY_DRAFT_RETENTION_DAYS are deleted with everything
they hold, their evidence files too when nothing kept refers to the same file.

A draft is abandoned when it expired (GATEWAY_DRAFT_EXPIRY_DAYS after its reminder) without
being submitted; it goes this many days after expiring. It is kept while the person has a
message stored and not processed yet (they came back: processing it reopens the draft), and
while one of its messages waits for a person (refused, doubtful or failed, not yet marked
handled: the secretariat must still see it). With it go its messages both ways,
its translations, its file downloads and every other row that refers to them (found from the
schema's foreign keys, so a table added later is not forgotten). An evidence file goes only
when no kept message and no application's evidence refers to its sha256, and not while a new
message may be bringing it again (EvidenceStore.delete).

`gateway retention purge --dry-run` reports what would go; without `--dry-run` it goes; the
worker's automatic purge runs the same code.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from gateway.runtime import Runtime
from storage.db import transaction
from storage.models import Base, Conversation, Evidence, InboundFile
from storage.models import InboundMessage as InboundRow

log = logging.getLogger(__name__)
CHUNK = 500


@dataclass
class RetentionReport:
    """What a purge removed, or would remove (`dry_run`); no identity, only counts and dates."""

    dry_run: bool
    retention_days: float | None
    cutoff: datetime | None = None
    drafts: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    files_kept: int = 0
    files_deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "retention_days": self.retention_days,
                "cutoff": self.cutoff.isoformat() if self.cutoff else None,
                "drafts": self.drafts, "rows": self.rows, "files": self.files,
                "files_kept": self.files_kept, "files_deleted": self.files_deleted}


def purge(runtime: Runtime, now: datetime, dry_run: bool = False) -> RetentionReport:
    """Delete (or, with `dry_run`, list) the drafts past retention and what they hold."""
    days = runtime.settings.draft_retention_days
    report = RetentionReport(dry_run, days)
    if days is None:
        return report
    report.cutoff = now - timedelta(days=days)
    with transaction(runtime.sessions) as session:
        drafts = list(session.scalars(
            select(Conversation).where(Conversation.status == "expired",
                                       Conversation.application_id.is_(None),
                                       Conversation.expired_at < report.cutoff,
                                       _untouched_since_expiry())
            .order_by(Conversation.id).with_for_update()))
        if not drafts:
            return report
        ids = [draft.id for draft in drafts]
        report.drafts = [{"id": d.id, "channel": d.channel, "created_at": d.created_at.isoformat(),
                          "expired_at": d.expired_at.isoformat() if d.expired_at else None}
                         for d in drafts]
        candidates, kept = _files(session, ids)
        report.files, report.files_kept = sorted(candidates - kept), len(candidates & kept)
        conversations: Table = Conversation.__table__  # type: ignore[assignment]
        for chunk in _chunks(ids):
            _remove(session, conversations, chunk, report.rows, dry_run)
    if not dry_run:
        report.files_deleted = sum(runtime.evidence.delete(sha256) for sha256 in report.files)
        log.info("retention: deleted %d abandoned drafts, %d rows, %d evidence files",
                 len(ids), sum(report.rows.values()), report.files_deleted)
    return report


def _untouched_since_expiry() -> ColumnElement[bool]:
    """Nobody came back to the draft, and none of its messages waits for a person."""
    came_back = select(InboundRow.id).where(
        InboundRow.channel == Conversation.channel,
        InboundRow.sender_index == Conversation.sender_index,
        InboundRow.processed_at.is_(None), InboundRow.handled_at.is_(None))
    needs_person = select(InboundRow.id).where(
        InboundRow.conversation_id == Conversation.id, InboundRow.handled_at.is_(None),
        or_(InboundRow.needs_person.is_not(None), InboundRow.error_sealed.is_not(None)))
    return ~exists(came_back) & ~exists(needs_person)


def _files(session: Session, ids: Sequence[int]) -> tuple[set[str], set[str]]:
    """The sha256 of the files the drafts' messages carried, and those of them that a kept
    message or an application's evidence also refers to."""
    purged_messages = select(InboundRow.id).where(InboundRow.conversation_id.in_(ids))
    candidates = set(session.scalars(select(InboundFile.sha256).where(
        InboundFile.inbound_id.in_(purged_messages)).distinct()))
    if not candidates:
        return set(), set()
    kept = set(session.scalars(select(InboundFile.sha256).where(
        InboundFile.sha256.in_(candidates), InboundFile.inbound_id.not_in(purged_messages))))
    kept |= set(session.scalars(select(Evidence.sha256).where(
        Evidence.sha256.in_(candidates), Evidence.conversation_id.not_in(ids))))
    return candidates, kept


def _remove(session: Session, table: Table, ids: Any, counts: dict[str, int],
            dry_run: bool) -> None:
    """Delete the rows of `table` with these ids (a list or a subquery) after every row that
    refers to them, counting each table's rows."""
    for child, column in _referring(table):
        _remove(session, child, select(child.c.id).where(column.in_(ids)), counts, dry_run)
    where = table.c.id.in_(ids)
    counts[table.name] = counts.get(table.name, 0) + int(
        session.scalar(select(func.count()).select_from(table).where(where)) or 0)
    if not dry_run:
        session.execute(delete(table).where(where))


def _referring(table: Table) -> list[tuple[Table, Any]]:
    """(table, column) of every foreign key that points at `table`'s rows."""
    return [(child, key.parent) for child in Base.metadata.sorted_tables
            for key in child.foreign_keys
            if key.column.table is table and child is not table]


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[start:start + CHUNK] for start in range(0, len(ids), CHUNK)]
