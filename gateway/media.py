"""Files people send over Telegram, WhatsApp and MMS: fetched into evidence before their
message is processed.

The webhook stores the message with one download job per file and answers at once. Processing
that message (and every later message of the same sender, to keep their order) waits until
its jobs are done: the engine then gets the message with its attachments, as from the web
chat. A download is tried at once; a transient failure (timeout, 5xx) is tried again with
backoff, `GATEWAY_MEDIA_MAX_ATTEMPTS` times in all. A file that is too large, of a type not
accepted, or that could not be fetched in the end is not dropped silently: the message is
processed without it and the person is told which file to send again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from gateway.evidence import AttachmentRefused
from gateway.outbox import backoff
from gateway.providers import ChannelClient, Fetched, FetchFailure
from gateway.runtime import Runtime
from gateway.service import now_utc
from storage import delivery
from storage.db import transaction, with_retry
from storage.models import MediaDownload

log = logging.getLogger(__name__)
RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0


class MediaFetcher:
    """Runs the download jobs of inbound messages."""

    def __init__(self, runtime: Runtime, clients: dict[str, ChannelClient],
                 now: Callable[[], datetime] = now_utc,
                 jitter: Callable[[], float] = random.random) -> None:
        self.runtime = runtime
        self.clients = clients
        self.now = now
        self.jitter = jitter

    async def fetch(self, inbound_id: int) -> bool:
        """Try the due downloads of one message; True when none is left pending."""
        jobs = await asyncio.to_thread(self._due, inbound_id)
        for job in jobs:
            client = self.clients.get(job.channel)
            try:
                if client is None:
                    raise FetchFailure("transient", f"the {job.channel} channel is off")
                fetched = await client.fetch(job.reference, self.runtime.settings.
                                             max_attachment_bytes)
                await asyncio.to_thread(self._keep, job, fetched)
            except FetchFailure as failure:
                await asyncio.to_thread(self._failed, job, failure)
        return not await asyncio.to_thread(self._waiting, inbound_id)

    def _due(self, inbound_id: int) -> list[MediaDownload]:
        def work() -> list[MediaDownload]:
            with transaction(self.runtime.sessions) as session:
                now = self.now()
                return [job for job in delivery.media_of(session, inbound_id)
                        if job.state == "pending" and (job.next_attempt_at is None
                                                       or job.next_attempt_at <= now)]
        return with_retry(work)

    def _waiting(self, inbound_id: int) -> bool:
        def work() -> bool:
            with transaction(self.runtime.sessions) as session:
                return delivery.waiting_for_media(session, inbound_id)
        return with_retry(work)

    def _keep(self, job: MediaDownload, fetched: Fetched) -> None:
        """Store the file as evidence of the message, typed by its content (an HTML error
        page that claims to be a photo is refused)."""
        claimed = job.declared_media_type or fetched.media_type
        try:
            attachment = self.runtime.evidence.accept(fetched.data, job.filename or "file",
                                                      claimed)
        except AttachmentRefused as error:
            raise FetchFailure(error.kind, str(error)) from error

        def work() -> None:
            with transaction(self.runtime.sessions) as session:
                current = delivery.media_job(session, job.id)
                if current.state == "pending":
                    delivery.store_attachment(session, current, attachment.as_dict(), self.now())
        with_retry(work)

    def _failed(self, job: MediaDownload, failure: FetchFailure) -> None:
        """Try again later, or give up and let the person know."""
        settings = self.runtime.settings

        def work() -> None:
            with transaction(self.runtime.sessions) as session:
                current = delivery.media_job(session, job.id)
                if current.state != "pending":
                    return
                now = self.now()
                current.attempts += 1
                current.last_error = str(failure)[:2000]
                if failure.kind == "transient" and current.attempts < settings.media_max_attempts:
                    wait = backoff(current.attempts, RETRY_BASE_SECONDS, RETRY_MAX_SECONDS,
                                   self.jitter)
                    current.next_attempt_at = now + timedelta(seconds=wait)
                    return
                current.state, current.finished_at = "failed", now
                current.failure = "download" if failure.kind == "transient" else failure.kind
                log.warning("file of inbound message %s not kept: %s", current.inbound_id,
                            failure)
        with_retry(work)
