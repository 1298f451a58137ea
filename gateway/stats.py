"""Counts from the database, for /metrics and `gateway stats`.

"Unprocessed" inbound messages are those the gateway still means to process: one whose
processing failed MAX_PROCESSING_ATTEMPTS times waits for a person instead, and is counted as
needing a person (as a refused or doubtful one is) until it is marked handled; so an alert on
the unprocessed count says that processing is down or behind, and only that.
Translation jobs are the free-text answers' and the secretariat's notices' together.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select

from gateway.runtime import Runtime
from gateway.service import MAX_PROCESSING_ATTEMPTS
from intake.workflow import STATUSES
from storage.db import reading
from storage.models import (
    Application,
    Conversation,
    FieldTranslation,
    InboundMessage,
    NoticeTranslation,
    OutboxMessage,
)


def counts(runtime: Runtime) -> dict[str, dict[tuple[str, ...], int]]:
    """Rows per channel and state of the main tables."""
    # Only reads: on SQLite it neither waits for nor holds the write lock that webhooks need.
    with reading(runtime.sessions) as session:
        def grouped(*columns):  # type: ignore[no-untyped-def]
            rows = session.execute(select(*columns, func.count()).group_by(*columns))
            return {tuple(str(v) for v in row[:-1]): int(row[-1]) for row in rows}

        def total(*where):  # type: ignore[no-untyped-def]
            return {(): int(session.scalar(
                select(func.count()).select_from(InboundMessage).where(*where)) or 0)}
        unhandled = InboundMessage.handled_at.is_(None)
        return {
            "gateway_inbound_messages": grouped(InboundMessage.channel),
            "gateway_inbound_unprocessed": total(  # what the workers will still process
                InboundMessage.processed_at.is_(None),
                InboundMessage.attempts < MAX_PROCESSING_ATTEMPTS),
            "gateway_inbound_needing_person": total(
                unhandled, or_(InboundMessage.needs_person.is_not(None),
                               InboundMessage.error_sealed.is_not(None))),
            "gateway_outbox_messages": grouped(OutboxMessage.channel, OutboxMessage.state),
            "gateway_conversations": grouped(Conversation.status),
            "gateway_applications": grouped(Application.status),
            "gateway_translations": grouped(FieldTranslation.target_language,
                                            FieldTranslation.state),
            "gateway_notice_translations": grouped(NoticeTranslation.target_language,
                                                   NoticeTranslation.state),
        }


# States always listed by `gateway stats`, even at zero, so scripts can read them directly.
OUTBOX_STATES = ("pending", "sending", "held", "sent", "failed")
TRANSLATION_STATES = ("pending", "done", "failed")


def summary(runtime: Runtime) -> dict[str, object]:
    """The counts `gateway stats --json` prints: inbound messages per channel, those not
    processed yet and those waiting for a person, outbox messages and translation jobs (of
    answers and of notices) by state, applications by status."""
    found = counts(runtime)
    return {
        "inbound_messages": {channel: n for (channel,), n in
                             sorted(found["gateway_inbound_messages"].items())},
        "inbound_unprocessed": found["gateway_inbound_unprocessed"][()],
        "inbound_needing_person": found["gateway_inbound_needing_person"][()],
        "outbox": _totals(found["gateway_outbox_messages"], OUTBOX_STATES),
        "applications": _totals(found["gateway_applications"], STATUSES),
        "translation_jobs": _totals(found["gateway_translations"]
                                    | _prefixed(found["gateway_notice_translations"]),
                                    TRANSLATION_STATES),
    }


def _prefixed(grouped: dict[tuple[str, ...], int]) -> dict[tuple[str, ...], int]:
    """Notice jobs under labels of their own, so they add to the answers' instead of
    replacing those of the same language and state."""
    return {("notice", *labels): value for labels, value in grouped.items()}


def _totals(grouped: dict[tuple[str, ...], int], always: tuple[str, ...]) -> dict[str, int]:
    """Totals by the last label (the state), with the usual states present at zero."""
    totals = dict.fromkeys(always, 0)
    for labels, value in grouped.items():
        totals[labels[-1]] = totals.get(labels[-1], 0) + value
    return totals


_LABELS = {
    "gateway_inbound_messages": ("channel",),
    "gateway_inbound_unprocessed": (),
    "gateway_inbound_needing_person": (),
    "gateway_outbox_messages": ("channel", "state"),
    "gateway_conversations": ("status",),
    "gateway_applications": ("status",),
    "gateway_translations": ("language", "state"),
    "gateway_notice_translations": ("language", "state"),
}


def prometheus_text(runtime: Runtime) -> str:
    """The counts as Prometheus gauges."""
    lines = []
    for name, values in counts(runtime).items():
        lines.append(f"# TYPE {name} gauge")
        for labels, value in sorted(values.items()):
            pairs = ",".join(f'{k}="{v}"' for k, v in zip(_LABELS[name], labels, strict=True))
            lines.append(f"{name}{{{pairs}}} {value}" if pairs else f"{name} {value}")
    return "\n".join(lines) + "\n"
