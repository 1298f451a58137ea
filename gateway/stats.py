"""Counts from the database, for /metrics and `gateway stats`."""

from __future__ import annotations

from sqlalchemy import func, select

from gateway.runtime import Runtime
from intake.workflow import STATUSES
from storage.db import transaction
from storage.models import (
    Application,
    Conversation,
    FieldTranslation,
    InboundMessage,
    OutboxMessage,
)


def counts(runtime: Runtime) -> dict[str, dict[tuple[str, ...], int]]:
    """Rows per channel and state of the main tables."""
    with transaction(runtime.sessions) as session:
        def grouped(*columns):  # type: ignore[no-untyped-def]
            rows = session.execute(select(*columns, func.count()).group_by(*columns))
            return {tuple(str(v) for v in row[:-1]): int(row[-1]) for row in rows}
        return {
            "gateway_inbound_messages": grouped(InboundMessage.channel),
            "gateway_inbound_unprocessed": {(): int(session.scalar(
                select(func.count()).where(InboundMessage.processed_at.is_(None))) or 0)},
            "gateway_outbox_messages": grouped(OutboxMessage.channel, OutboxMessage.state),
            "gateway_conversations": grouped(Conversation.status),
            "gateway_applications": grouped(Application.status),
            "gateway_translations": grouped(FieldTranslation.target_language,
                                            FieldTranslation.state),
        }


# States always listed by `gateway stats`, even at zero, so scripts can read them directly.
OUTBOX_STATES = ("pending", "sending", "held", "sent", "failed")
TRANSLATION_STATES = ("pending", "done", "failed")


def summary(runtime: Runtime) -> dict[str, object]:
    """The counts `gateway stats --json` prints: inbound messages per channel and those not
    processed yet, outbox messages and translation jobs by state, applications by status."""
    found = counts(runtime)
    return {
        "inbound_messages": {channel: n for (channel,), n in
                             sorted(found["gateway_inbound_messages"].items())},
        "inbound_unprocessed": found["gateway_inbound_unprocessed"][()],
        "outbox": _totals(found["gateway_outbox_messages"], OUTBOX_STATES),
        "applications": _totals(found["gateway_applications"], STATUSES),
        "translation_jobs": _totals(found["gateway_translations"], TRANSLATION_STATES),
    }


def _totals(grouped: dict[tuple[str, ...], int], always: tuple[str, ...]) -> dict[str, int]:
    """Totals by the last label (the state), with the usual states present at zero."""
    totals = dict.fromkeys(always, 0)
    for labels, value in grouped.items():
        totals[labels[-1]] = totals.get(labels[-1], 0) + value
    return totals


_LABELS = {
    "gateway_inbound_messages": ("channel",),
    "gateway_inbound_unprocessed": (),
    "gateway_outbox_messages": ("channel", "state"),
    "gateway_conversations": ("status",),
    "gateway_applications": ("status",),
    "gateway_translations": ("language", "state"),
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
