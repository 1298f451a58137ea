"""Messages from Telegram, WhatsApp and SMS: stored before the provider gets its answer, then
processed one sender at a time, in the order they came.

`ingest` commits everything a delivery carried (each message under its provider id, so a
retried delivery is recognised; the files still to fetch; delivery reports; blocks). Only
then does the webhook answer 200. Processing is scheduled afterwards on a queue per sender:
different senders run in parallel, one sender's messages strictly one after the other, and
before message N every earlier unprocessed message of that sender is processed first (after
a restart, or when another instance received it). Across instances the row locks (the
inbound message, then the conversation) keep the same message from being applied twice.
A message whose file is still being fetched holds back its sender's later messages until the
file is in (or has finally failed).

Storing never waits behind processing: deliveries are committed by threads of their own, and
those that arrive while a group is being committed are committed together, in one transaction,
right after it (group commit), so a burst costs one commit per group rather than one per
request. Processing is grouped the same way: the messages of different people that wait at
the same time are processed in one transaction (a failing one then again alone), which a
delivery waiting to be stored cuts short. Storing, looking up a sender's backlog (a reading
transaction, beside the writer) and processing each have one thread on SQLite, which lets one
transaction write at a time anyway, and several on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from channels.base import Parsed
from gateway.grouping import GroupCommitter, each_alone
from gateway.media import MediaFetcher
from gateway.runtime import Runtime
from gateway.service import MAX_PROCESSING_ATTEMPTS, now_utc
from storage import delivery
from storage.db import (
    DatabaseUnavailable,
    concurrent_writers,
    reading,
    transaction,
    with_retry,
)
from storage.models import InboundMessage as InboundRow

log = logging.getLogger(__name__)
Sender = tuple[str, str]  # (channel, sender)
Backlog = tuple[list[int], set[int]]  # a sender's unprocessed messages, those with files pending
# The most messages processed in one transaction: a group holds SQLite's write lock while it
# runs (about 3 ms a message on two cores), and deliveries to acknowledge wait for it.
PROCESSING_GROUP = 16


def sender_key(sender: Sender) -> str:
    """The throttle key of one person's messages on one channel."""
    return f"inbound:{sender[0]}:{sender[1]}"


@dataclass
class Ingested:
    """What one delivery added: new messages to process, and what was only acknowledged."""

    new: list[tuple[Sender, int]] = field(default_factory=list)
    duplicates: int = 0
    reports: int = 0
    blocks: int = 0

    def summary(self) -> str:
        return (f"{len(self.new)} new, {self.duplicates} duplicate, {self.reports} reports, "
                f"{self.blocks} blocks")


class InboundDispatcher:
    """Stores deliveries and processes each sender's messages in order."""

    def __init__(self, runtime: Runtime, media: MediaFetcher,
                 on_processed: Callable[[], None] = lambda: None) -> None:
        self.runtime = runtime
        self.media = media
        self.on_processed = on_processed
        self._queues: dict[Sender, deque[int]] = {}
        self._tasks: dict[Sender, asyncio.Task[None]] = {}
        self._side_jobs: set[asyncio.Task[Any]] = set()
        self.sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
        threads = concurrent_writers(runtime.database)  # storing, looking up, processing, each
        self._storing = GroupCommitter(self._store_group, threads, "inbound-store")
        self._lookups = GroupCommitter(self._backlogs, threads, "inbound-lookup")
        self._processing = GroupCommitter(runtime.intake.process_many, threads,
                                          "inbound-process", max_group=PROCESSING_GROUP)

    # -- storing ------------------------------------------------------------------------------

    async def ingest(self, parsed: Parsed) -> Ingested:
        """Commit what a delivery carried (raises DatabaseUnavailable: do not answer 200)."""
        return await self._storing.submit(parsed)

    def _store_group(self, group: list[Parsed]) -> list[Ingested | BaseException]:
        """One transaction for the group; if it fails, each delivery on its own, so one that
        cannot be stored fails alone."""
        return each_alone(self._store, group, together=(DatabaseUnavailable,))

    def _store(self, group: list[Parsed]) -> list[Ingested]:
        def work() -> list[Ingested]:
            with transaction(self.runtime.sessions, urgent=True) as session:
                now = now_utc()
                return [self._store_one(session, parsed, now) for parsed in group]
        return with_retry(work)

    def _store_one(self, session: Session, parsed: Parsed, now: datetime) -> Ingested:
        ingested = Ingested()
        for message in parsed.messages:
            media = parsed.media.get(message.provider_message_id, [])
            inbound_id = self.runtime.intake.store(session, message, media, now)
            if inbound_id is None:
                ingested.duplicates += 1
            else:
                ingested.new.append(((message.channel, message.sender), inbound_id))
        ingested.reports = sum(delivery.record_report(
            session, parsed.channel, report.provider_message_id, report.status, report.error,
            report.blocked, now) for report in parsed.reports)
        ingested.blocks = sum(delivery.mark_blocked(session, parsed.channel, block.sender,
                                                    block.blocked, now)
                              for block in parsed.blocks)
        return ingested

    # -- processing ---------------------------------------------------------------------------

    def schedule(self, ingested: Ingested) -> None:
        """Process the new messages after the answer, each on its sender's queue."""
        for sender, inbound_id in ingested.new:
            self.submit(sender, inbound_id)

    def submit(self, sender: Sender, inbound_id: int) -> None:
        """Queue one message behind the earlier ones of the same sender."""
        self._queues.setdefault(sender, deque()).append(inbound_id)
        if sender not in self._tasks:
            self._tasks[sender] = asyncio.create_task(self._run_queue(sender))

    async def _run_queue(self, sender: Sender) -> None:
        try:
            while queue := self._queues.get(sender):
                inbound_id = queue.popleft()
                try:
                    await self.process_in_order(inbound_id, sender)
                except Exception:  # noqa: BLE001 - the worker retries what is left unprocessed
                    log.exception("processing inbound message %s failed", inbound_id)
        finally:
            self._queues.pop(sender, None)
            self._tasks.pop(sender, None)

    async def process_in_order(self, inbound_id: int, sender: Sender | None = None) -> None:
        """Process this message, after every earlier unprocessed one of the same sender (and
        the later ones already stored, which were waiting behind it); a sender over
        GATEWAY_INBOUND_MESSAGES_PER_MINUTE waits, stored, for their turn (a flood is deferred,
        not dropped)."""
        earlier, with_files = await self._lookups.submit((inbound_id, sender))
        for message_id in earlier:
            if message_id in with_files and not await self.media.fetch(message_id):
                return  # its file is tried again later; the rest waits for it
            if sender is not None:
                await self._wait_turn(sender)
            # Processed with the messages of other people that wait at the same time, in one
            # transaction (one failing is processed again alone, see IntakeService.process_many).
            await self._processing.submit(message_id)
            self.on_processed()

    async def _wait_turn(self, sender: Sender) -> None:
        wait = self.runtime.throttle.delay(sender_key(sender),
                                           self.runtime.settings.inbound_messages_per_minute)
        if wait > 0:
            log.info("a %s sender is over the message rate: processing deferred %.1f s",
                     sender[0], wait)
            await self.sleep(wait)

    def _backlogs(self, group: list[tuple[int, Sender | None]]
                  ) -> list[Backlog | BaseException]:
        """The lookups waiting at the same time, in one reading transaction."""
        return each_alone(self._look_up, group, together=(DatabaseUnavailable,))

    def _look_up(self, group: list[tuple[int, Sender | None]]) -> list[Backlog]:
        """For each message, its sender's unprocessed messages, and those of them with files
        still to fetch."""
        def work() -> list[Backlog]:
            with reading(self.runtime.sessions) as session:
                found = [delivery.backlog(session, inbound_id, MAX_PROCESSING_ATTEMPTS, sender)
                         for inbound_id, sender in group]
                pending = delivery.with_pending_media(session, [i for ids in found for i in ids])
                return [(ids, pending.intersection(ids)) for ids in found]
        return with_retry(work)

    async def retry_media(self) -> int:
        """Queue the messages whose files are due for another try."""
        def due() -> list[tuple[Sender, int]]:
            with transaction(self.runtime.sessions) as session:
                ids = delivery.inbound_with_due_media(session, self.media.now())
                rows = [session.get_one(InboundRow, i) for i in ids]
                return [((row.channel, row.sender), row.id) for row in rows]
        found = await asyncio.to_thread(with_retry, due)
        for sender, inbound_id in found:
            if sender not in self._tasks:
                self.submit(sender, inbound_id)
        return len(found)

    def spawn(self, job: Coroutine[Any, Any, Any]) -> None:
        """Run a side job after the answer (answering a button press), tracked like the rest."""
        task = asyncio.create_task(job)
        self._side_jobs.add(task)
        task.add_done_callback(self._side_jobs.discard)

    async def drain(self) -> None:
        """Wait until every queued message has been processed (tests, shutdown)."""
        while self._tasks or self._side_jobs:
            await asyncio.gather(*self._tasks.values(), *self._side_jobs,
                                 return_exceptions=True)

    async def close(self) -> None:
        """Stop processing; what is left is picked up by the next start's workers."""
        tasks = [*self._tasks.values(), *self._side_jobs]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for committer in (self._storing, self._lookups, self._processing):
            committer.close()  # each ends after the group under way
