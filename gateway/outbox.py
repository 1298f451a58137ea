"""The outbox sender: every reply to a Telegram, WhatsApp or SMS user leaves from here.

One round claims the due rows that head their conversation's queue (so replies keep their
order; on PostgreSQL with SKIP LOCKED, so several workers share the work), renders each with its
channel's adapter, sends it within the channel's rate limits and records what happened in the
row: `sent` with the provider's message id, `pending` again with a later `next_attempt_at`
after a transient error (timeouts, 5xx, 429 and the providers' throttling codes; capped
exponential backoff with jitter), or `failed` with `last_error`, where the secretariat sees it.

Sending twice is guarded by the row's state: only the claim that moved a row to `sending`
sends it, and a message split into parts records how many went out, so a retry resumes after
them. A row is taken again only when its claim ran out (the sender died mid-send); the message
may then arrive twice, which beats never. So a sender sends only while its claim still holds
(LEASE_MARGIN) and gives back, unsent, a row whose turn under the rate limits comes later; and
on a graceful stop it records every outcome it knows before it ends (`close`).

Every part's provider id is recorded (storage.delivery.record_parts), so a delivery report on
any part reaches the row: one part not delivered marks the reply failed, where the
secretariat sees it.

The web chat and the terminal deliver their own rows, so the sender never touches them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from channels.base import SendFailure
from gateway.grouping import GroupCommitter, each_alone
from gateway.providers import ChannelClient, Limit, Rendering, Words
from gateway.runtime import Runtime
from gateway.service import now_utc
from intake.messages import OutboundMessage
from storage import delivery
from storage.db import DatabaseUnavailable, concurrent_writers, transaction, with_retry
from storage.delivery import Claim

log = logging.getLogger(__name__)
CLAIM_LEASE = timedelta(minutes=5)
CLAIM_BATCH = 100
# What must be left of a claim for a part to go out: more than a send's HTTP timeout (30 s) and
# the recording of its outcome, so no other sender takes the row while this one is sending it.
LEASE_MARGIN = timedelta(minutes=1)
# How long a stopping sender waits for the sends under way to finish (and be recorded).
SHUTDOWN_GRACE_SECONDS = 10.0


class RateLimiter:
    """Per-key rate limits (the generic cell rate algorithm), on an injectable clock.

    `reserve` books the earliest moment the limit allows and says how long to wait for it;
    bookings are made without awaiting, so concurrent senders never overbook. A call under
    several limits reserves them one after the other, the narrowest (one chat) first, each
    after waiting for the one before, so a wait for one chat never holds a slot of the
    shared limit that other chats could use.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._next: dict[str, float] = {}

    def reserve(self, limit: Limit, before: float = math.inf) -> float | None:
        """Seconds to wait before the next call under this limit; None, booking nothing, if
        that call could not start by `before` (on this limiter's clock)."""
        now = self.clock()
        interval = 1.0 / limit.rate
        earliest = self._next.get(limit.key, now)
        start = max(now, earliest - (limit.burst - 1) * interval)
        if start > before:
            return None
        self._next[limit.key] = max(earliest, start) + interval
        return start - now


def backoff(attempt: int, base: float, cap: float, jitter: Callable[[], float]) -> float:
    """Seconds before try number `attempt` + 1: doubling from `base`, at most `cap`, and
    randomly between half and all of that, so retries of many rows spread out."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return ceiling / 2 + jitter() * ceiling / 2


@dataclasses.dataclass
class Outcome:
    """What sending one claimed row came to."""

    ids: list[str]
    rendering: Rendering | None = None
    failure: SendFailure | None = None
    given_back: bool = False  # the rest was not sent: the row is due again, for any sender

    @property
    def announces(self) -> bool:
        """Whether what went out is the template that announces a held message, not the
        message itself."""
        return bool(self.rendering and self.rendering.hold)

    @property
    def holds(self) -> bool:
        """Whether the row waits for the person now: a template announced it, nothing failed."""
        return self.announces and self.failure is None and not self.given_back


class OutboxSender:
    """Sends the outbox rows of the channels that have a client."""

    def __init__(self, runtime: Runtime, clients: dict[str, ChannelClient],
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 now: Callable[[], datetime] = now_utc,
                 jitter: Callable[[], float] = random.random) -> None:
        self.runtime = runtime
        self.clients = clients
        self.limiter = RateLimiter(clock)
        self.sleep = sleep
        self.now = now
        self.jitter = jitter
        self._wake: asyncio.Event | None = None
        self._closing = asyncio.Event()
        self._deliveries: dict[asyncio.Task[None], Claim] = {}
        # Outcomes that come in while one group is recorded are recorded together after it.
        self._recording = GroupCommitter(self._record_group,
                                         concurrent_writers(runtime.database), "outbox-record")

    def wake(self) -> None:
        """New rows were queued: send them now rather than at the next poll."""
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Send until cancelled; an error in one round never stops the sender."""
        self._wake = asyncio.Event()
        poll = self.runtime.settings.outbox_poll_seconds
        while True:
            try:
                claimed = await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - log and try again next round
                log.exception("outbox round failed")
                claimed = 0
            if not claimed:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), poll)

    async def run_until_idle(self) -> int:
        """Send rounds until nothing is due (tests, and a worker draining before it stops)."""
        total = 0
        while claimed := await self.send_due():
            total += claimed
        return total

    async def send_due(self) -> int:
        """One round: claim the due rows and send them; the number claimed."""
        if not self.clients:
            return 0
        now = self.now()
        claims = await asyncio.to_thread(self._claim, now)
        deliveries = [asyncio.create_task(self._deliver(claim)) for claim in claims]
        for task, claim in zip(deliveries, claims, strict=True):
            self._deliveries[task] = claim
            task.add_done_callback(self._deliveries.pop)
        # Shielded: stopping the sender leaves a send under way to finish and its outcome to
        # be recorded (`close` waits for them), so a reply that went out is never sent again.
        await asyncio.shield(asyncio.gather(*deliveries))
        return len(claims)

    def _claim(self, now: datetime) -> list[Claim]:
        def work() -> list[Claim]:
            with transaction(self.runtime.sessions) as session:
                return delivery.claim_outbox(session, list(self.clients), now,
                                             now + CLAIM_LEASE, CLAIM_BATCH)
        return with_retry(work)

    async def _deliver(self, claim: Claim) -> None:
        """Render and send one row, then record the outcome."""
        if claim.blocked:
            outcome = Outcome([], failure=SendFailure(
                "blocked", "not sent: the person has blocked the bot or unsubscribed"))
        else:
            try:
                outcome = await self._send(claim)
            except Exception as error:  # noqa: BLE001 - see _unexpected
                outcome = _unexpected(claim, error, [])
        try:
            await self._recording.submit((claim, outcome))
        except Exception:  # noqa: BLE001 - the claim runs out and the row is tried again
            log.exception("recording the outcome of outbox row %s failed", claim.outbox_id)

    async def close(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop, once `run` is cancelled: rows waiting for their turn are given back unsent,
        the sends under way have `grace` seconds to finish, and every outcome known is
        recorded before the recording stops."""
        self._closing.set()
        if self._deliveries:
            _, unfinished = await asyncio.wait(self._deliveries, timeout=grace)
            for task in unfinished:
                log.warning("outbox row %s was still being sent at shutdown; it is sent again "
                            "once its claim runs out", self._deliveries[task].outbox_id)
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        await self._recording.drain()
        self._recording.close()

    async def _send(self, claim: Claim) -> Outcome:
        client = self.clients[claim.channel]
        message = OutboundMessage.from_dict(claim.body)
        words = self._words(claim.language, len(message.choices))
        try:
            rendering = client.render(claim, message, words, self.now())
        except SendFailure as failure:
            return Outcome([], failure=failure)
        outcome = await self._send_parts(client, claim, rendering)
        if outcome.failure and outcome.failure.kind == "window" and not outcome.ids:
            # The provider says the window closed before our clock did: use the template.
            closed = dataclasses.replace(claim, last_inbound_at=None)
            try:
                rendering = client.render(closed, message, words, self.now())
            except SendFailure as failure:
                return Outcome([], failure=failure)
            outcome = await self._send_parts(client, closed, rendering)
        return outcome

    async def _send_parts(self, client: ChannelClient, claim: Claim, rendering: Rendering
                          ) -> Outcome:
        """The parts not sent yet, each within the rate limits (a template that announces a
        held message is never part of the message: it goes whole)."""
        ids: list[str] = []
        for part in rendering.parts[0 if rendering.hold else claim.parts_sent:]:
            if not await self._wait_for_turn(client, claim):
                return Outcome(ids, rendering, given_back=True)
            try:
                ids.append(await client.send_part(part))
            except SendFailure as failure:
                return Outcome(ids, rendering, failure)
            except Exception as error:  # noqa: BLE001 - see _unexpected
                return dataclasses.replace(_unexpected(claim, error, ids), rendering=rendering)
        return Outcome(ids, rendering)

    async def _wait_for_turn(self, client: ChannelClient, claim: Claim) -> bool:
        """Wait until the rate limits let the next part go; False, and it must not go, if that
        is too late for the claim or the sender is stopping.

        On a slow channel (SMS, one a second, several parts a row) the last rows of a claimed
        batch would wait past the claim's lease; another sender would then take them again
        and both would send them. So a part goes out only while the claim has LEASE_MARGIN
        left, and one whose turn comes later books no turn: its row is given back, due at
        once, and the next round claims it afresh with a new lease."""
        left = (claim.lease - LEASE_MARGIN - self.now()).total_seconds()
        deadline = self.limiter.clock() + left
        for limit in client.limits(claim.recipient):
            delay = self.limiter.reserve(limit, before=deadline)
            if delay is None:
                return False
            if delay > 0:
                await self._pause(delay)
            if self._closing.is_set():
                return False
        return self.limiter.clock() <= deadline

    async def _pause(self, seconds: float) -> None:
        """Sleep for `seconds`, or until the sender is closed."""
        sleeping = asyncio.ensure_future(self.sleep(seconds))
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait((sleeping, closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeping.cancel()
            closing.cancel()

    def _words(self, language: str | None, choices: int) -> Words:
        catalogs = self.runtime.engine.catalogs
        lang = language or catalogs.default_language
        return Words(choose=catalogs.text(lang, "channel.choose"),
                     number_hint=catalogs.text(lang, "error.choice", count=choices))

    def _record_group(self, group: list[tuple[Claim, Outcome]]) -> list[None | BaseException]:
        """One transaction for the outcomes waiting; if it fails, each on its own."""
        return each_alone(self._record, group, together=(DatabaseUnavailable,))

    def _record(self, group: list[tuple[Claim, Outcome]]) -> list[None]:
        def work() -> list[None]:
            with transaction(self.runtime.sessions) as session:
                rows = delivery.claimed_rows(session, [claim for claim, _ in group])
                wrote = delivery.heard_from_since(session, [
                    claim for claim, outcome in group
                    if outcome.holds and claim.outbox_id in rows])
                now = self.now()
                sent: list[delivery.SentParts] = []
                for claim, outcome in group:
                    row = rows.get(claim.outbox_id)
                    if row is None:
                        log.warning("outbox row %s was taken by another sender",
                                    claim.outbox_id)
                        continue
                    self._record_row(session, row, claim, outcome, now,
                                     claim.outbox_id in wrote)
                    if outcome.ids:
                        first = 0 if outcome.announces else claim.parts_sent + 1
                        sent.append(delivery.SentParts(row, outcome.ids, first))
                delivery.record_parts(session, sent, now)
            return [None] * len(group)
        return with_retry(work)

    def _record_row(self, session: Any, row: Any, claim: Claim, outcome: Outcome,
                    now: datetime, heard_since: bool) -> None:
        """One row's outcome; `heard_since`: the person wrote after it was claimed."""
        if outcome.ids:
            row.provider_message_id = outcome.ids[-1]
        if not outcome.announces:
            row.parts_sent = claim.parts_sent + len(outcome.ids)
        if not outcome.given_back:  # given back, the rest was never tried: not an attempt
            row.attempts += 1
        if row.delivery_status == "failed":  # a part sent earlier was reported undelivered
            row.state, row.next_attempt_at = "failed", None
        elif outcome.given_back:
            row.state, row.next_attempt_at = "pending", now
        elif outcome.failure is None:
            self._sent(row, outcome.rendering, now, heard_since)
        else:
            self._failed(session, row, claim, outcome.failure, now)

    def _sent(self, row: Any, rendering: Rendering | None, now: datetime,
              heard_since: bool) -> None:
        row.last_error = None
        row.next_attempt_at = None
        row.delivery_mode = rendering.mode if rendering else None
        if rendering is not None and rendering.hold:
            # Only the template went out; the message itself waits for the person's reply,
            # unless it came while the template was on its way: their message found the row
            # being sent, not held, and released nothing (storage.delivery.release_held).
            if heard_since:
                row.state, row.next_attempt_at, row.delivery_mode = "pending", now, None
            else:
                row.state = "held"
            return
        row.state, row.sent_at = "sent", now

    def _failed(self, session: Any, row: Any, claim: Claim, failure: SendFailure,
                now: datetime) -> None:
        settings = self.runtime.settings
        row.last_error = f"{failure.detail}"[:2000]
        if failure.kind == "transient" and row.attempts < settings.outbox_max_attempts:
            wait = backoff(row.attempts, settings.outbox_backoff_seconds,
                           settings.outbox_backoff_max_seconds, self.jitter)
            row.state = "pending"
            row.next_attempt_at = now + timedelta(seconds=max(wait, failure.retry_after or 0))
            return
        row.state, row.next_attempt_at = "failed", None
        if failure.kind == "transient":
            row.last_error = f"gave up after {row.attempts} attempts: {failure.detail}"[:2000]
        if failure.kind == "blocked":
            delivery.mark_blocked(session, claim.channel, claim.recipient, True, now)
        log.warning("outbox row %s to %s failed: %s", row.id, claim.channel, row.last_error)


def _unexpected(claim: Claim, error: Exception, ids: list[str]) -> Outcome:
    """An error no client turned into a SendFailure (a bug, an error of a kind not foreseen):
    recorded as a transient failure, so the row is tried again with backoff and, past
    GATEWAY_OUTBOX_MAX_ATTEMPTS, shown as failed to the secretariat, instead of staying
    `sending` and being taken again every few minutes for ever; the parts already sent stay
    counted."""
    log.exception("sending outbox row %s failed unexpectedly", claim.outbox_id, exc_info=error)
    return Outcome(ids, failure=SendFailure(
        "transient", f"unexpected error while sending: {type(error).__name__}"))
