"""The conformance harness: every channel's table of cases, the cases every channel must
pass, and the same whole application filed over each channel's real payload format."""

from __future__ import annotations

import importlib
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from channels.conformance import Case
from gateway.queue import queue_entry
from intake.messages import InboundMessage
from storage import delivery, repository
from storage.db import transaction
from storage.models import Conversation, MediaDownload, OutboxMessage
from tests.channels import fakes
from tests.channels.conftest import Gateway, open_gateway
from tests.channels.drivers import DRIVERS, SENDERS, Driver
from tests.filings import ENGLISH_FILING

CASE_MODULES = {"telegram": "channels.telegram.cases", "whatsapp": "channels.whatsapp.cases",
                "sms-twilio": "channels.sms.twilio.cases",
                "sms-africastalking": "channels.sms.africastalking.cases"}


def cases_of(driver: Driver):  # type: ignore[no-untyped-def]
    return importlib.import_module(CASE_MODULES[driver.channel])


TABLE = [(driver, case) for driver in DRIVERS for case in cases_of(driver).CASES]
BY_CHANNEL = pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.channel)


def _fixture(gateway: Gateway, driver: Driver, name: str):  # type: ignore[no-untyped-def]
    return driver.fixture(name, api_base=gateway.runtime.settings.twilio_api_base)


def _add_sent(gateway: Gateway, channel: str, provider_id: str, recipient: str) -> int:
    """A message the gateway sent earlier, which a delivery report can be about."""
    with transaction(gateway.runtime.sessions) as session:
        now = datetime.now(UTC)
        conversation = repository.new_conversation(session, channel, recipient, now)
        row = OutboxMessage(channel=channel, recipient=recipient, conversation_id=conversation.id,
                            body={"text": "hello", "choices": []}, state="sent", attempts=1,
                            created_at=now, sent_at=now, provider_message_id=provider_id,
                            parts_sent=1)
        session.add(row)
        session.flush()
        delivery.record_parts(session, [delivery.SentParts(row, [provider_id], 1)], now)
        return row.id


# -- each channel's own table ----------------------------------------------------------------


@pytest.mark.parametrize(("driver", "case"), TABLE,
                         ids=[f"{d.channel}:{c.fixture}" for d, c in TABLE])
async def test_provider_payload_becomes_the_expected_message(gateway: Gateway, driver: Driver,
                                                              case: Case) -> None:
    reported = {pid: _add_sent(gateway, driver.channel, pid, "+0") for pid, _ in case.reports}
    if case.blocked is not None:
        with transaction(gateway.runtime.sessions) as session:
            sender = case.sender or _fixture_sender(gateway, driver, case)
            repository.new_conversation(session, driver.channel, sender, datetime.now(UTC))
    response = await gateway.post(driver, _fixture(gateway, driver, case.fixture))
    assert response.status == 200
    rows = gateway.inbound(driver.channel)
    assert tuple(row.text for row in rows) == case.texts
    for row in rows:
        assert case.sender is None or row.sender == case.sender
        assert case.hints.items() <= row.hints.items()
    with transaction(gateway.runtime.sessions) as session:
        files = session.scalar(select(func.count()).select_from(MediaDownload))
        outcomes = {row.provider_message_id: row.delivery_status for row in session.scalars(
            select(OutboxMessage).where(OutboxMessage.id.in_(reported.values())))}
        blocked = [c.blocked_at is not None for c in session.scalars(select(Conversation))]
    assert files == case.files
    assert outcomes == dict(case.reports)
    if case.blocked is not None:
        assert blocked == [case.blocked]
    await gateway.messaging.inbound.drain()


def _fixture_sender(gateway: Gateway, driver: Driver, case: Case) -> str:
    payload = _fixture(gateway, driver, case.fixture)
    if driver.channel == "telegram":
        return str(payload["my_chat_member"]["chat"]["id"])
    return str(payload["From"])


# -- what every channel must pass ------------------------------------------------------------


@BY_CHANNEL
async def test_wrong_signature_is_refused_and_nothing_stored(gateway: Gateway,
                                                             driver: Driver) -> None:
    body = driver.encode(_fixture(gateway, driver, cases_of(driver).PLAIN_TEXT))
    path, headers = driver.forged(body)
    response = await gateway.post(driver, body=body, headers=headers, path=path, signed=False)
    assert response.status == 403
    assert gateway.inbound(driver.channel) == []


@BY_CHANNEL
async def test_missing_signature_is_refused_and_nothing_stored(gateway: Gateway,
                                                               driver: Driver) -> None:
    body = driver.encode(_fixture(gateway, driver, cases_of(driver).PLAIN_TEXT))
    path, headers = driver.unsigned(body)
    response = await gateway.post(driver, body=body, headers=headers, path=path, signed=False)
    assert response.status == 403
    assert gateway.inbound(driver.channel) == []


@BY_CHANNEL
async def test_duplicate_delivery_is_acknowledged_and_answered_once(gateway: Gateway,
                                                                    driver: Driver) -> None:
    sender = SENDERS[driver.channel]
    payload = driver.text(sender, "Hello")
    first = await gateway.post(driver, payload)
    await gateway.settle()
    again = await gateway.post(driver, payload)
    await gateway.settle()
    assert first.status == again.status == 200
    assert len(gateway.inbound(driver.channel)) == 1
    greetings = [d for d in gateway.providers.to(driver.channel, sender)
                 if "Welcome" in d.text]
    assert len(greetings) == 1


@BY_CHANNEL
async def test_unknown_message_type_is_acknowledged_and_ignored(gateway: Gateway,
                                                                driver: Driver) -> None:
    response = await gateway.post(driver, _fixture(gateway, driver, cases_of(driver).UNKNOWN_TYPE))
    assert response.status == 200
    assert gateway.inbound(driver.channel) == []
    await gateway.settle()
    assert gateway.providers.delivered == []


@BY_CHANNEL
@pytest.mark.parametrize("body", [b"", b"{not json", b"\xff\xfe\x00garbage\xc3\x28",
                                  b"[1, 2, 3]", b"From=%ZZ&&Body"],
                         ids=["empty", "malformed", "invalid-utf8", "wrong-shape", "bad-form"])
async def test_unreadable_body_gets_the_providers_answer_never_500(
        gateway: Gateway, driver: Driver, body: bytes) -> None:
    response = await gateway.post(driver, body=body)
    assert response.status == driver.unreadable
    assert gateway.inbound(driver.channel) == []


@BY_CHANNEL
async def test_oversized_body_is_refused(gateway: Gateway, driver: Driver) -> None:
    payload = driver.text(SENDERS[driver.channel], "x" * 70_000)
    response = await gateway.post(driver, payload)
    assert response.status == 413
    assert gateway.inbound(driver.channel) == []


SECRETS = {"telegram": "telegram_secret_token", "whatsapp": "whatsapp_app_secret",
           "sms-twilio": "twilio_auth_token", "sms-africastalking": "africastalking_webhook_secret"}


@BY_CHANNEL
async def test_channel_without_its_secret_refuses_everything(
        aiohttp_client, channel_settings, providers, driver: Driver) -> None:  # type: ignore[no-untyped-def]
    unsafe = channel_settings.model_copy(update={SECRETS[driver.channel]: SecretStr("")})
    gateway = await open_gateway(aiohttp_client, unsafe, providers)
    body = driver.encode(_fixture(gateway, driver, cases_of(driver).PLAIN_TEXT))
    response = await gateway.post(driver, body=body)
    assert response.status == 403
    assert gateway.inbound(driver.channel) == []


# -- the same application over every channel ------------------------------------------------


async def _file(gateway: Gateway, driver: Driver, lines: list[str]) -> fakes.Delivered:
    """Type (or press) every line as a person on this channel; the last message received."""
    sender = SENDERS[driver.channel]
    last = None
    for line in lines:
        response = await gateway.post(driver, driver.answer(sender, line, last))
        assert response.status == 200, await response.text()
        await gateway.settle()
        received = gateway.providers.to(driver.channel, sender)
        assert received, f"no reply on {driver.channel} to {line!r}"
        last = received[-1]
    assert last is not None
    return last


async def test_same_application_is_filed_over_every_channel(gateway: Gateway) -> None:
    receipts = {driver.channel: await _file(gateway, driver, ENGLISH_FILING)
                for driver in DRIVERS}
    for line in ENGLISH_FILING:  # the same lines typed in the terminal: the reference
        gateway.runtime.intake.handle(InboundMessage("terminal", "reference",
                                                     str(uuid.uuid4()), line))
    with transaction(gateway.runtime.sessions) as session:
        applications = {a.channel: a for a in repository.applications(session)}
        entries = {c: queue_entry(gateway.runtime.engine, a) for c, a in applications.items()}
    reference = applications.pop("terminal")
    assert sorted(applications) == sorted(receipts)
    for channel, application in applications.items():
        assert application.fields == reference.fields, channel
        assert entries[channel]["completeness"] == {k: True for k in
                                                    entries[channel]["completeness"]}
        assert len(entries[channel]["completeness"]) == 9
        assert application.reference in receipts[channel].text
    assert reference.fields["applicant.name"] == "Jane Mwamba"
