"""People writing to the gateway on WhatsApp, a fake Cloud API that records what reaches it,
and the checks the crash and scale-out tests make of what was stored, processed and sent."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select

from channels import whatsapp
from gateway.messaging import Messaging
from gateway.outbox import CLAIM_LEASE
from gateway.runtime import Runtime, open_runtime
from gateway.service import now_utc
from gateway.settings import Settings
from gateway.stats import summary
from intake.messages import OutboundMessage
from storage.db import transaction
from storage.models import OutboxMessage
from tests.channels import fakes
from tests.filings import ENGLISH_FILING
from tests.processes import GATEWAY, Server, start_gateway

APP_SECRET = "test-app-secret"
LINES = ENGLISH_FILING[:7]  # greeting, language, for whom, … the applicant's name, how many
PEOPLE = [f"24397{n:07d}" for n in range(12)]
TIMEOUT = 60.0


# -- the providers, recording what reached them --------------------------------------------------


@dataclass
class SlowProviders(fakes.FakeProviders):
    """The fake APIs, where the answer to a WhatsApp send comes `delay` seconds after the
    message was taken (so a kill finds messages the provider took and the gateway does not know
    about); the message ids given out are recorded."""

    delay: float = 0.0
    in_flight: int = 0
    answered: list[str] = field(default_factory=list)

    async def whatsapp_send(self, request: web.Request) -> web.Response:
        response = await super().whatsapp_send(request)
        if response.status == 200 and isinstance(response.body, bytes):
            self.answered.append(json.loads(response.body)["messages"][0]["id"])
        self.in_flight += 1
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        return response


def settings_env(data_dir: Path, providers: SlowProviders, **extra: str) -> dict[str, str]:
    """A gateway with WhatsApp on against the fakes; quick background rounds."""
    return {
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_LANGUAGE_DETECTOR": "script",
        "GATEWAY_TRANSLATION_BACKEND": "none",
        "GATEWAY_WORKER_INTERVAL_SECONDS": "0.2",
        "GATEWAY_OUTBOX_POLL_SECONDS": "0.2",
        "GATEWAY_WHATSAPP_APP_SECRET": APP_SECRET,
        "GATEWAY_WHATSAPP_VERIFY_TOKEN": "verify",
        "GATEWAY_WHATSAPP_ACCESS_TOKEN": fakes.WHATSAPP_TOKEN,
        "GATEWAY_WHATSAPP_PHONE_NUMBER_ID": fakes.WHATSAPP_PHONE_ID,
        "GATEWAY_WHATSAPP_API_BASE": f"{providers.url}/whatsapp",
    } | extra


def settings_of(env: dict[str, str]) -> Settings:
    """The same settings, for the gateway opened in this process."""
    return Settings(**{key.removeprefix("GATEWAY_").lower(): value
                       for key, value in env.items()})


# -- people writing on WhatsApp ---------------------------------------------------------------


def webhook(person: str, line_number: int, text: str) -> bytes:
    """One person's message as Meta delivers it. The message was written two minutes before
    (a retry carries the original time), so the workers take up an interrupted one at once
    instead of after the 30 s that tell an interrupted message from one being processed."""
    return json.dumps({"object": "whatsapp_business_account", "entry": [{
        "id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881",
                         "phone_number_id": fakes.WHATSAPP_PHONE_ID},
            "contacts": [{"profile": {"name": "Jane Mwamba"}, "wa_id": person}],
            "messages": [{"from": person, "id": f"wamid.CRASH{person}{line_number:02d}",
                          "timestamp": str(int(time.time()) - 120), "type": "text",
                          "text": {"body": text}}]}}]}]}).encode()


CONVERSATIONS = {person: [webhook(person, n, line) for n, line in enumerate(LINES)]
                 for person in PEOPLE}


async def deliver(url: str, body: bytes) -> bool:
    """Post one delivery; whether the gateway acknowledged it (200)."""
    headers = {"Content-Type": "application/json",
               whatsapp.SIGNATURE_HEADER: whatsapp.sign(body, APP_SECRET)}
    try:
        async with aiohttp.ClientSession() as session, session.post(
                url + "/webhooks/whatsapp", data=body, headers=headers,
                timeout=aiohttp.ClientTimeout(total=10)) as answer:
            return answer.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def until(condition: Callable[[], Awaitable[bool] | bool], what: str,
                timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        met = condition()
        if await met if isinstance(met, Awaitable) else met:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def quiet(runtime: Runtime, seconds: float = 1.5) -> None:
    """Until the database's counts stop changing for `seconds` (the process has done what it
    can)."""
    last, since = None, time.monotonic()
    deadline = since + TIMEOUT
    while time.monotonic() < deadline:
        now = await asyncio.to_thread(summary, runtime)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"still busy after {TIMEOUT:g} s: {last}")


# -- what the database and the provider say ---------------------------------------------------


def outbox(runtime: Runtime) -> list[OutboxMessage]:
    with transaction(runtime.sessions) as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def claimed(runtime: Runtime) -> set[int]:
    """Replies whose send was under way: claimed by a sender, not recorded."""
    return {row.id for row in outbox(runtime) if row.state == "sending"}


def parts_of(row: OutboxMessage) -> list[str]:
    """What reaching the person takes for one reply: the texts of its WhatsApp messages."""
    message = OutboundMessage.from_dict(row.body)
    return [fakes.whatsapp_delivered(part).text
            for part in whatsapp.render(row.recipient, message, "Choose")]


def assert_each_reply_sent_once(runtime: Runtime, providers: SlowProviders,
                                under_way: set[int]) -> None:
    """Every reply reached the person in its conversation's order, once; one under way at the
    crash may have arrived a second time, right after the first."""
    rows = outbox(runtime)
    assert {row.state for row in rows} == {"sent"}
    assert {row.provider_message_id for row in rows} <= set(providers.answered)
    for person in {row.recipient for row in rows}:
        received = [d.text for d in providers.to("whatsapp", person)]
        at = 0
        for row in (r for r in rows if r.recipient == person):
            parts = parts_of(row)
            repeats = range(len(parts), -1, -1) if row.id in under_way else [0]
            for first_copy in repeats:  # a first copy may have stopped after any part
                if received[at:at + first_copy] == parts[:first_copy] and \
                        received[at + first_copy:at + first_copy + len(parts)] == parts:
                    at += first_copy + len(parts)
                    break
            else:
                raise AssertionError(f"reply {row.id} to {person} did not arrive as sent: "
                                     f"expected {parts}, got {received[at:at + 4]}")
        assert at == len(received), f"{person} got more than was sent: {received[at:]}"


def replies_without_a_crash(folder: Path, env: dict[str, str]) -> dict[str, list[str]]:
    """Each person's replies when every line is handled once, in order, with no crash."""
    runtime = open_runtime(settings_of(env | {"GATEWAY_DATA_DIR": str(folder)}))
    try:
        for lines in CONVERSATIONS.values():
            for body in lines:
                [message] = whatsapp.parse(json.loads(body)).messages
                runtime.intake.handle(message)
        return {person: [row.body["text"] for row in outbox(runtime) if row.recipient == person]
                for person in PEOPLE}
    finally:
        runtime.close()


async def send_late(runtime: Runtime) -> None:
    """The sender as it runs once the dead sender's claims have run out."""
    messaging = Messaging(runtime)
    later = CLAIM_LEASE + timedelta(seconds=1)
    messaging.outbox.now = lambda: now_utc() + later
    try:
        await messaging.outbox.run_until_idle()
    finally:
        await messaging.close()


async def start(command: str, folder: Path, env: dict[str, str], name: str) -> Server:
    """A `gateway` command started without holding up this test's event loop (the fakes)."""
    return await asyncio.to_thread(start_gateway, command, folder, env, name)


def gateway_stats(env: dict[str, str]) -> dict[str, Any]:
    """What `gateway stats --json` says about the gateway's database."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | env
    result = subprocess.run([*GATEWAY, "stats", "--json"], capture_output=True, env=environment,
                            timeout=60, check=True)
    return dict(json.loads(result.stdout))
