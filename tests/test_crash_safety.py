"""What a crash costs: nothing lost, nothing done twice.

`gateway serve`, then `gateway worker` sending replies, then `gateway worker` translating, are
killed with SIGKILL in the middle of their work (on SQLite, in processes of their own, against
local fakes of the providers), restarted, and the provider's retries replayed. Then:

- every distinct message is stored once (its provider id), processed once (one committed
  attempt) and in order: each person's replies are exactly those of the same conversation
  without a crash;
- every reply is sent once. "Once" as the outbox guarantees it (gateway/outbox.py): a reply
  whose send was under way when the sender died (its row was claimed, `sending`) reached the
  provider or not, and the gateway cannot know which, so it is sent again after the claim's
  lease has run out: it arrives at least once and at most twice, right after its first copy.
  Every other reply arrives exactly once, and in its conversation's order. A restarted sender
  does not take a dead sender's claims before the lease has run out;
- every translation job is recorded once; a batch whose answer the dead worker never recorded
  is asked for again after its lease, and only such a batch.

The leases (five minutes for replies, minutes for translations) are not waited for: the
restarted sender or worker is run once more, in this process, on a clock that far ahead.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from channels import whatsapp
from gateway.runtime import Runtime, open_runtime
from gateway.service import now_utc
from gateway.stats import summary
from gateway.translation.libretranslate import LibreTranslateTranslator
from gateway.translation.worker import TranslationWorker
from storage import translations
from storage.db import transaction
from storage.models import FieldTranslation
from storage.models import InboundMessage as InboundRow
from storage.repository import new_conversation
from tests.whatsapp_load import (
    CONVERSATIONS,
    LINES,
    PEOPLE,
    SlowProviders,
    assert_each_reply_sent_once,
    claimed,
    deliver,
    gateway_stats,
    outbox,
    quiet,
    replies_without_a_crash,
    send_late,
    settings_env,
    settings_of,
    start,
    until,
)


@pytest.fixture
async def providers(aiohttp_server: Any) -> SlowProviders:
    fake = SlowProviders(delay=0.05)
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "data").mkdir()
    yield tmp_path


# -- gateway serve -----------------------------------------------------------------------------


async def test_serve_killed_mid_load_stores_processes_and_answers_every_message_once(
        folder: Path, providers: SlowProviders) -> None:
    env = settings_env(folder / "data", providers)
    runtime = open_runtime(settings_of(env))
    serve = await start("serve", folder, env, "serve-1")
    acknowledged = dict.fromkeys(PEOPLE, 0)
    killed = asyncio.Event()
    providers.delay = 0.2  # a kill finds a reply under way

    async def person(who: str) -> None:
        # Like someone on a phone: each line once the last was acknowledged and answered, so
        # the load keeps on while replies are being sent (the kill finds both under way).
        for body in CONVERSATIONS[who]:
            before = len(providers.to("whatsapp", who))
            if killed.is_set() or not await deliver(serve.url, body):
                return
            acknowledged[who] += 1
            await until(lambda before=before: killed.is_set()
                        or len(providers.to("whatsapp", who)) > before,
                        f"the answer to {who}'s line")

    async def kill_mid_load() -> None:
        total = len(PEOPLE) * len(LINES)
        await until(lambda: sum(acknowledged.values()) >= total // 2, "half the load")
        await until(lambda: providers.in_flight > 0, "a reply being sent", timeout=10)
        await asyncio.to_thread(serve.kill)
        killed.set()

    await asyncio.gather(kill_mid_load(), *(person(who) for who in PEOPLE))
    under_way = claimed(runtime)
    assert under_way and 0 < sum(acknowledged.values()) < len(PEOPLE) * len(LINES)

    serve = await start("serve", folder, env, "serve-2")
    try:
        async def retried(who: str) -> None:
            lines = CONVERSATIONS[who]
            if acknowledged[who]:  # an answer lost on the way back: Meta delivers it again
                assert await deliver(serve.url, lines[acknowledged[who] - 1])
            for body in lines[acknowledged[who]:]:  # the unacknowledged one, then the rest
                assert await deliver(serve.url, body)
        await asyncio.gather(*(retried(who) for who in PEOPLE))
        await until(lambda: summary(runtime)["inbound_unprocessed"] == 0, "processing")
        await quiet(runtime)
    finally:
        await asyncio.to_thread(serve.stop)
    assert claimed(runtime) == under_way  # not taken again before the lease ran out
    await send_late(runtime)

    with transaction(runtime.sessions) as session:
        stored = list(session.scalars(select(InboundRow)))
    assert sorted(row.provider_message_id for row in stored) == sorted(
        json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        for lines in CONVERSATIONS.values() for body in lines)
    assert {(row.processed_at is not None, row.attempts, row.error) for row in stored} == \
        {(True, 1, None)}
    expected = replies_without_a_crash(folder / "reference", env)
    assert {person: [row.body["text"] for row in outbox(runtime) if row.recipient == person]
            for person in PEOPLE} == expected
    assert_each_reply_sent_once(runtime, providers, under_way)
    counts = await asyncio.to_thread(gateway_stats, env)
    assert counts["inbound_messages"] == {"whatsapp": len(PEOPLE) * len(LINES)}
    assert counts["inbound_unprocessed"] == 0
    assert counts["outbox"]["sent"] == len(outbox(runtime))
    runtime.close()


# -- the outbox sender in `gateway worker` -------------------------------------------------------


async def test_outbox_worker_killed_mid_send_sends_every_reply_once(
        folder: Path, providers: SlowProviders) -> None:
    env = settings_env(folder / "data", providers)
    runtime = open_runtime(settings_of(env))
    for lines in CONVERSATIONS.values():  # replies queued by the conversations, not sent yet
        for body in lines[:3]:
            [message] = whatsapp.parse(json.loads(body)).messages
            runtime.intake.handle(message)
    queued = len(outbox(runtime))
    providers.delay = 0.1

    worker = await start("worker", folder, env, "worker-1")
    await until(lambda: len(providers.delivered) >= queued // 3, "a third of the replies")
    await until(lambda: providers.in_flight > 0, "a reply being sent", timeout=10)
    await asyncio.to_thread(worker.kill)
    under_way = claimed(runtime)
    assert under_way and len(providers.delivered) < queued

    worker = await start("worker", folder, env, "worker-2")
    try:
        await quiet(runtime)
    finally:
        await asyncio.to_thread(worker.stop)
    assert claimed(runtime) == under_way
    await send_late(runtime)
    assert len(outbox(runtime)) == queued
    assert_each_reply_sent_once(runtime, providers, under_way)
    runtime.close()


# -- the translation worker in `gateway worker` --------------------------------------------------


@dataclass
class SlowLibreTranslate:
    """A LibreTranslate server whose every answer takes `delay` seconds; it records what it
    was asked to translate."""

    delay: float
    asked: list[tuple[str, str]] = field(default_factory=list)  # (text, target)
    in_flight: int = 0
    answered: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/languages", self.languages)
        app.router.add_post("/translate", self.translate)
        return app

    async def languages(self, request: web.Request) -> web.Response:
        return web.json_response([{"code": "fr", "name": "French", "targets": ["en", "zh"]},
                                  {"code": "en", "name": "English", "targets": ["fr", "zh"]}])

    async def translate(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.asked += [(text, body["target"]) for text in body["q"]]
        self.in_flight += 1
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        self.answered += 1
        return web.json_response(
            {"translatedText": [f"[{body['target']}] {text}" for text in body["q"]]})


TEXTS = [f"La rivière près de la mine numéro {n} est devenue rouge." for n in range(12)]


def jobs(runtime: Runtime) -> list[FieldTranslation]:
    with transaction(runtime.sessions) as session:
        return list(session.scalars(select(FieldTranslation).order_by(FieldTranslation.id)))


async def test_translation_worker_killed_mid_batch_records_every_translation_once(
        folder: Path, aiohttp_server: Any, providers: SlowProviders) -> None:
    libretranslate = SlowLibreTranslate(delay=0.3)
    server = await aiohttp_server(libretranslate.app())
    url = str(server.make_url("")).rstrip("/")
    env = settings_env(folder / "data", providers, GATEWAY_TRANSLATION_BACKEND="libretranslate",
                       GATEWAY_LIBRETRANSLATE_URL=url, GATEWAY_TRANSLATION_BATCH_SIZE="4",
                       GATEWAY_TRANSLATION_TIMEOUT_SECONDS="10")
    runtime = open_runtime(settings_of(env))
    with transaction(runtime.sessions) as session:
        conversation = new_conversation(session, "whatsapp", uuid.uuid4().hex, now_utc())
        for text in TEXTS:  # answers sent after submission: into English and Chinese
            translations.queue_supplement(session, conversation.id, None, text, "fr", now_utc())
    total = len(jobs(runtime))

    worker = await start("worker", folder, env, "worker-1")
    await until(lambda: libretranslate.answered >= 2 and libretranslate.in_flight > 0,
                "two batches answered and one under way")
    await asyncio.to_thread(worker.kill)
    unrecorded = {job.id for job in jobs(runtime) if job.state == "pending" and job.attempts}
    assert unrecorded and len(unrecorded) < total

    worker = await start("worker", folder, env, "worker-2")
    try:
        await until(lambda: {job.id for job in jobs(runtime) if job.state != "done"}
                    == unrecorded, "every job but the dead worker's")
        await asyncio.sleep(1.0)  # a few more rounds: they leave the dead worker's jobs alone
        assert {job.id for job in jobs(runtime) if job.state != "done"} == unrecorded
    finally:
        await asyncio.to_thread(worker.stop)
    later = TranslationWorker(runtime, LibreTranslateTranslator(url, timeout=10))
    while (await asyncio.to_thread(later.run_round, now_utc() + timedelta(hours=1))).busy:
        pass

    done = jobs(runtime)
    assert len(done) == total
    assert {(job.state, job.text) for job in done} == {
        ("done", f"[{job.target_language}] {job.source_text}") for job in done}
    asked = Counter(libretranslate.asked)
    unrecorded_texts = {(job.source_text, job.target_language) for job in done
                        if job.id in unrecorded}
    assert {pair for pair, times in asked.items() if times > 1} <= unrecorded_texts
    assert max(asked.values()) <= 2
    assert {job.attempts for job in done if job.id not in unrecorded} == {1}
    runtime.close()
