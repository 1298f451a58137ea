"""Background work: retry unprocessed messages, remind idle drafts once, expire and purge them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.inbound import sender_key
from gateway.messaging import Messaging
from gateway.retention import purge
from gateway.runtime import Runtime
from gateway.service import MAX_PROCESSING_ATTEMPTS, now_utc
from gateway.translation.worker import start_translation_worker
from intake.engine import State
from storage import delivery, repository
from storage.db import reading, transaction

log = logging.getLogger(__name__)
# A stored message still unprocessed after this long was interrupted (a crash, a restart).
STALE_INBOUND = timedelta(seconds=30)


async def run_workers(runtime: Runtime, messaging: Messaging | None = None) -> None:
    """Run every periodic job until cancelled; one failing round never stops the loop.

    The translation worker runs beside them in a thread of its own, so a long translation
    holds up neither these jobs nor a conversation. So does the messaging channels' work
    (outbox, file downloads): `gateway serve` passes the `Messaging` its webhooks use (and
    polls Telegram when that mode is set), `gateway worker` gets its own, without polling.
    """
    own_messaging = messaging is None
    channels = Messaging(runtime) if messaging is None else messaging
    channel_work = asyncio.create_task(channels.run(polling=not own_messaging))
    interval = runtime.settings.worker_interval_seconds
    stop_translation = start_translation_worker(runtime)
    try:
        while True:
            try:
                await asyncio.to_thread(run_once, runtime, now_utc())
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - log and try again next round
                log.exception("background round failed")
            await asyncio.sleep(interval)
    finally:
        channel_work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await channel_work
        if own_messaging:
            await channels.close()
        await asyncio.to_thread(stop_translation, 10.0)


@dataclass(frozen=True)
class RoundReport:
    """What one round did."""

    reprocessed: int = 0
    reminded: int = 0
    expired: int = 0
    purged: int = 0
    reports_forgotten: int = 0


def run_once(runtime: Runtime, now: datetime) -> RoundReport:
    """One round of every job."""
    return RoundReport(
        reprocessed=reprocess_interrupted(runtime, now),
        reminded=remind_idle_drafts(runtime, now),
        expired=expire_drafts(runtime, now),
        purged=purge_expired_drafts(runtime, now),
        reports_forgotten=forget_early_reports(runtime, now),
    )


def forget_early_reports(runtime: Runtime, now: datetime) -> int:
    """Delivery reports kept for parts that never came go after a day, whether or not
    another report comes to sweep them (looked for first without SQLite's write lock)."""
    with reading(runtime.sessions) as session:
        if not delivery.early_reports_past_keeping(session, now):
            return 0
    with transaction(runtime.sessions) as session:
        return delivery.forget_early_reports(session, now)


def reprocess_interrupted(runtime: Runtime, now: datetime) -> int:
    """Process messages that were stored but never processed, no sender faster than
    GATEWAY_INBOUND_MESSAGES_PER_MINUTE (the rest of a sender's waits for the next round)."""
    with transaction(runtime.sessions) as session:
        found = repository.unprocessed_inbound(session, now - STALE_INBOUND,
                                               MAX_PROCESSING_ATTEMPTS)
    limit = runtime.settings.inbound_messages_per_minute
    held: set[str] = set()
    done = 0
    for inbound_id, channel, sender in found:
        key = sender_key((channel, sender))
        if key in held or runtime.throttle.admit(key, limit):
            held.add(key)
            continue
        runtime.intake.process(inbound_id)
        done += 1
    return done


def remind_idle_drafts(runtime: Runtime, now: datetime) -> int:
    """Send one reminder to each draft idle for longer than the reminder setting."""
    cutoff = now - timedelta(hours=runtime.settings.draft_reminder_hours)
    with transaction(runtime.sessions) as session:
        drafts = repository.drafts_idle_since(session, cutoff, reminded=False)
        for conversation in drafts:
            if conversation.last_inbound_at is None:
                conversation.reminder_sent_at = now  # opened, never answered: nothing to remind
                continue
            reminder = runtime.engine.reminder(State.from_dict(conversation.state))
            repository.add_outbox(session, conversation, [reminder], now, kind="reminder")
            conversation.reminder_sent_at = now
        return len(drafts)


def expire_drafts(runtime: Runtime, now: datetime) -> int:
    """Mark drafts idle past the expiry setting as expired; they are kept, not deleted."""
    cutoff = now - timedelta(days=runtime.settings.draft_expiry_days)
    with transaction(runtime.sessions) as session:
        drafts = repository.drafts_idle_since(session, cutoff, reminded=True)
        for conversation in drafts:
            conversation.status = "expired"
            conversation.expired_at = now
        return len(drafts)


def purge_expired_drafts(runtime: Runtime, now: datetime) -> int:
    """Delete drafts abandoned past the retention setting, with their messages and the
    evidence files nothing else refers to (gateway.retention, as `gateway retention purge`)."""
    return len(purge(runtime, now).drafts)
