"""Several gateways on one PostgreSQL database: two `gateway serve` instances behind a load
balancer and a `gateway worker` share the work, and no message is handled twice.

The claims that let them share it are `SELECT … FOR UPDATE SKIP LOCKED`: a sender or a
translation worker that claims while another holds its claim (uncommitted, rows locked) gets
the other rows at once instead of waiting. (The translation worker's claim is shown in
tests/test_translation.py, `test_two_workers_never_claim_the_same_job`; the mailbox lease that
keeps one IMAP poller per mailbox in tests/test_email_channel.py,
`test_only_one_instance_reads_a_mailbox`.)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from gateway.runtime import Runtime, open_runtime
from gateway.service import now_utc
from gateway.settings import Settings
from intake.messages import OutboundMessage
from storage import delivery, repository
from storage.db import transaction
from storage.models import InboundMessage as InboundRow
from tests.conftest import _reset_postgres
from tests.processes import Server
from tests.whatsapp_load import (
    CONVERSATIONS,
    SlowProviders,
    assert_each_reply_sent_once,
    deliver,
    outbox,
    quiet,
    replies_without_a_crash,
    settings_env,
    start,
    until,
)


@pytest.fixture
def database(postgres_url: str) -> str:
    """An empty PostgreSQL database (the tests' scratch database, emptied)."""
    _reset_postgres(postgres_url)
    return postgres_url


@pytest.fixture
def runtime(database: str, tmp_path: Path) -> Iterator[Runtime]:
    # The instances started by a test share this data folder (and so its key files).
    opened = open_runtime(Settings(data_dir=tmp_path / "data", database_url=database,
                                   language_detector="script"))
    yield opened
    opened.close()


def test_a_second_sender_takes_other_replies_without_waiting_for_the_first(
        runtime: Runtime) -> None:
    now = now_utc()
    with transaction(runtime.sessions) as session:
        for person in range(6):
            conversation = repository.new_conversation(session, "whatsapp", f"2439{person}", now)
            repository.add_outbox(session, conversation, [OutboundMessage("Welcome")], now)
    lease = now + timedelta(minutes=5)
    with runtime.sessions() as first:
        held = delivery.claim_outbox(first, ["whatsapp"], now, lease, 3)  # locked, uncommitted
        taken: list[int] = []

        def second_sender() -> None:
            with transaction(runtime.sessions) as session:
                # Waiting for the first sender's locks would end in an error after 2 s.
                session.execute(text("SET LOCAL lock_timeout = '2s'"))
                taken.extend(claim.outbox_id for claim in delivery.claim_outbox(
                    session, ["whatsapp"], now, lease, 10))
        thread = threading.Thread(target=second_sender)
        thread.start()
        thread.join(10)
        first.rollback()
    assert len(held) == 3 and len(taken) == 3
    assert not {claim.outbox_id for claim in held} & set(taken)


@pytest.fixture
async def providers(aiohttp_server: Any) -> SlowProviders:
    fake = SlowProviders(delay=0.02)
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


async def test_two_instances_and_a_worker_handle_every_message_once(
        runtime: Runtime, database: str, tmp_path: Path, providers: SlowProviders) -> None:
    env = settings_env(tmp_path / "data", providers, GATEWAY_DATABASE_URL=database,
                       GATEWAY_SECRET_KEY="a-shared-key-for-every-instance-0123456789")
    gateways: list[Server] = []
    try:
        for name in ("serve-a", "serve-b"):
            gateways.append(await start("serve", tmp_path, env, name))
        gateways.append(await start("worker", tmp_path, env, "worker"))
        first, second = gateways[0].url, gateways[1].url

        async def person(lines: list[bytes]) -> None:
            for number, body in enumerate(lines):
                # Each delivery reaches both instances at once (a retry of the provider sent
                # by the load balancer to the other one), which comes first alternating.
                order = (first, second) if number % 2 else (second, first)
                acknowledged = await asyncio.gather(*(deliver(url, body) for url in order))
                assert acknowledged == [True, True]
        await asyncio.gather(*(person(lines) for lines in CONVERSATIONS.values()))
        await until(lambda: processed(runtime) == total(), "processing")
        await quiet(runtime)
    finally:
        for gateway in gateways:
            await asyncio.to_thread(gateway.stop)

    with transaction(runtime.sessions) as session:
        stored = list(session.scalars(select(InboundRow)))
    assert len(stored) == total() == len({row.provider_message_id for row in stored})
    assert {(row.processed_at is not None, row.attempts, row.error) for row in stored} == \
        {(True, 1, None)}
    expected = replies_without_a_crash(tmp_path / "reference",
                                       env | {"GATEWAY_DATABASE_URL": ""})
    assert {person: [row.body["text"] for row in outbox(runtime) if row.recipient == person]
            for person in CONVERSATIONS} == expected
    assert_each_reply_sent_once(runtime, providers, under_way=set())


def total() -> int:
    return sum(len(lines) for lines in CONVERSATIONS.values())


def processed(runtime: Runtime) -> int:
    with transaction(runtime.sessions) as session:
        return sum(row.processed_at is not None for row in session.scalars(select(InboundRow)))
