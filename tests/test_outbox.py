"""The outbox at the edges of its claims: each reply reaches the person exactly once when the
sender is stopped in the middle of a round, and when a slow channel's rate limits make a
claimed row wait longer than the claim lasts while another sender works beside it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from gateway.outbox import CLAIM_LEASE, OutboxSender
from gateway.providers import Limit, Rendering
from gateway.runtime import Runtime
from intake.messages import OutboundMessage
from storage import repository
from storage.db import transaction
from storage.delivery import Claim
from storage.models import OutboxMessage

UNLIMITED = Limit("fake", 1000.0, 1000)


class Provider:
    """The provider's side: what each person received, and how often."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()


class FakeClient:
    """A channel whose sends are recorded by a `Provider`, `parts` calls a row, under `limit`;
    `before_send` runs before the provider takes a part (to hold a send in flight)."""

    channel = "whatsapp"

    def __init__(self, provider: Provider, limit: Limit = UNLIMITED, parts: int = 1,
                 before_send: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.provider, self.limit, self.parts = provider, limit, parts
        self.before_send = before_send

    def limits(self, recipient: str) -> list[Limit]:
        return [self.limit]

    def render(self, claim: Claim, message: OutboundMessage, words: Any, now: datetime
               ) -> Rendering:
        return Rendering([f"{claim.recipient} {message.text} part {n}"
                          for n in range(1, self.parts + 1)])

    async def send_part(self, part: str) -> str:
        if self.before_send is not None:
            await self.before_send(part)
        self.provider.received[part] += 1
        return f"id-{part}"

    async def fetch(self, reference: str, max_bytes: int) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        pass


class Clock:
    """Virtual time for a sender: a sleep ends at the moment it was asked to end, and sleeps
    that overlap (one row per person, waiting together) run side by side."""

    def __init__(self, start: datetime) -> None:
        self.start, self.seconds = start, 0.0
        self.on_tick: Callable[[], Awaitable[None]] | None = None

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)

    def monotonic(self) -> float:
        return self.seconds

    async def sleep(self, seconds: float) -> None:
        until = self.seconds + seconds
        await asyncio.sleep(0)
        self.seconds = max(self.seconds, until)
        if self.on_tick is not None:
            await self.on_tick()


def queue_replies(runtime: Runtime, people: int, now: datetime) -> list[str]:
    """One reply queued to each of `people` WhatsApp users; their numbers."""
    numbers = [f"+24381{n:07d}" for n in range(people)]
    with transaction(runtime.sessions) as session:
        for number in numbers:
            conversation = repository.new_conversation(session, "whatsapp", number, now)
            repository.add_outbox(session, conversation, [OutboundMessage("your reply")], now)
    return numbers


def states(runtime: Runtime) -> Counter[str]:
    with transaction(runtime.sessions) as session:
        return Counter(session.scalars(select(OutboxMessage.state)))


def sender(runtime: Runtime, client: FakeClient, clock: Clock | None = None) -> OutboxSender:
    if clock is None:
        return OutboxSender(runtime, {"whatsapp": client})
    return OutboxSender(runtime, {"whatsapp": client}, clock=clock.monotonic, sleep=clock.sleep,
                        now=clock.now)


async def stop(running: asyncio.Task[None], stopping: OutboxSender) -> None:
    """What `gateway worker` and `gateway serve` do on SIGTERM."""
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    async with asyncio.timeout(10):
        await stopping.close()


async def restart_later(runtime: Runtime, provider: Provider, minutes: float) -> None:
    """The next process, `minutes` later, sends what is due."""
    later = OutboxSender(runtime, {"whatsapp": FakeClient(provider)},
                         now=lambda: datetime.now(UTC) + timedelta(minutes=minutes))
    await later.run_until_idle()
    await later.close()


# -- a graceful shutdown ----------------------------------------------------------------------


class SlowToRecord(OutboxSender):
    """A sender whose first recording waits (another writer holds the database) until told."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recording, self.recorded = threading.Event(), threading.Event()

    def _record_group(self, group: list[Any]) -> list[None | BaseException]:
        if not self.recording.is_set():
            self.recording.set()
            self.recorded.wait(5)
        return super()._record_group(group)


async def test_replies_sent_or_being_sent_at_shutdown_are_recorded_and_not_sent_again(
        runtime: Runtime) -> None:
    first, second, third = queue_replies(runtime, 3, datetime.now(UTC))
    provider = Provider()
    in_flight, finish = asyncio.Event(), asyncio.Event()

    async def before_send(part: str) -> None:
        if part.startswith(second):  # the provider answers it a little later
            in_flight.set()
            await finish.wait()
        if part.startswith(third):  # its outcome waits while the first one's is recorded
            await in_flight.wait()

    stopping = SlowToRecord(runtime, {"whatsapp": FakeClient(provider, before_send=before_send)})
    running = asyncio.create_task(stopping.run())
    await asyncio.to_thread(stopping.recording.wait, 5)
    await in_flight.wait()
    await asyncio.sleep(0.05)
    asyncio.get_running_loop().call_later(0.1, finish.set)
    asyncio.get_running_loop().call_later(0.2, stopping.recorded.set)
    await stop(running, stopping)

    assert states(runtime) == {"sent": 3}  # nothing left `sending`
    await restart_later(runtime, provider, minutes=6)  # after the claims ran out
    assert sorted(provider.received) == sorted(f"{n} your reply part 1"
                                               for n in (first, second, third))
    assert set(provider.received.values()) == {1}


async def test_a_reply_waiting_for_its_turn_at_shutdown_goes_out_once_right_after_restart(
        runtime: Runtime) -> None:
    queue_replies(runtime, 2, datetime.now(UTC))
    provider = Provider()
    slow = FakeClient(provider, Limit("fake", 1 / 60))  # the second waits a minute
    stopping = sender(runtime, slow)
    running = asyncio.create_task(stopping.run())
    while not provider.received:
        await asyncio.sleep(0.01)
    await stop(running, stopping)  # does not wait out the minute

    assert states(runtime) == {"sent": 1, "pending": 1}
    await restart_later(runtime, provider, minutes=0)
    assert len(provider.received) == 2 and set(provider.received.values()) == {1}


# -- errors no client foresaw ----------------------------------------------------------------


async def test_an_unexpected_error_while_sending_is_retried_and_the_reply_goes_out_once(
        runtime: Runtime) -> None:
    (person,) = queue_replies(runtime, 1, datetime.now(UTC))
    provider = Provider()
    calls = Counter[str]()

    async def second_part_breaks_once(part: str) -> None:
        calls[part] += 1
        if part.endswith("part 2") and calls[part] == 1:
            raise ValueError("a bug in a client")
    breaking = sender(runtime, FakeClient(provider, parts=3, before_send=second_part_breaks_once))
    await breaking.run_until_idle()
    await breaking.close()
    with transaction(runtime.sessions) as session:
        row = session.scalars(select(OutboxMessage)).one()
        assert (row.state, row.attempts, row.parts_sent) == ("pending", 1, 1)  # not `sending`
        assert "ValueError" in row.last_error

    later = OutboxSender(runtime, {"whatsapp": FakeClient(provider, parts=3)},
                         now=lambda: datetime.now(UTC) + timedelta(hours=1))
    await later.run_until_idle()
    await later.close()
    assert provider.received == {f"{person} your reply part {n}": 1 for n in (1, 2, 3)}
    assert states(runtime) == {"sent": 1}


# -- claims that outlast their lease ----------------------------------------------------------


async def test_rows_whose_turn_comes_after_their_claim_are_sent_once_beside_another_sender(
        runtime: Runtime) -> None:
    clock = Clock(datetime.now(UTC) + timedelta(minutes=1))
    numbers = queue_replies(runtime, 100, datetime.now(UTC))
    provider = Provider()
    sms_rate = Limit("fake", 0.3)  # 100 rows take 330 s, past the five-minute claim
    first = sender(runtime, FakeClient(provider, sms_rate), clock)
    second = sender(runtime, FakeClient(provider, sms_rate), clock)
    lease_end = CLAIM_LEASE.total_seconds()
    others_round: list[int] = []

    async def second_sender_works_beside() -> None:
        if clock.seconds >= lease_end and not others_round:
            others_round.append(await second.send_due())

    clock.on_tick = second_sender_works_beside
    assert await first.send_due() == 100
    clock.seconds = max(clock.seconds, lease_end + 1)
    await second.run_until_idle()
    await first.close()
    await second.close()

    assert sorted(provider.received) == sorted(f"{n} your reply part 1" for n in numbers)
    assert set(provider.received.values()) == {1}
    assert states(runtime) == {"sent": 100}


async def test_a_long_message_is_resumed_after_its_claim_not_sent_twice(
        runtime: Runtime) -> None:
    clock = Clock(datetime.now(UTC) + timedelta(minutes=1))
    (number,) = queue_replies(runtime, 1, datetime.now(UTC))
    provider = Provider()
    slow = Limit("fake", 1 / 100)  # four parts at 0, 100, 200 and 300 s
    first = sender(runtime, FakeClient(provider, slow, parts=4), clock)
    second = sender(runtime, FakeClient(provider, slow, parts=4), clock)

    async def second_sender_works_beside() -> None:
        if clock.seconds >= CLAIM_LEASE.total_seconds():
            clock.on_tick = None
            await second.send_due()

    clock.on_tick = second_sender_works_beside
    await first.send_due()
    await second.run_until_idle()
    await first.close()
    await second.close()

    assert provider.received == Counter(f"{number} your reply part {n}" for n in range(1, 5))
    assert states(runtime) == {"sent": 1}
