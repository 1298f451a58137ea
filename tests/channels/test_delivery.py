"""What people notice of delivery: replies arrive in order and within the providers' limits,
temporary failures are retried, final failures are visible, blocked people are left alone,
files become evidence or the person is told, and WhatsApp's 24-hour window is respected."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gateway import messaging
from gateway.app import create_app
from gateway.outbox import RateLimiter, backoff
from gateway.providers import Limit
from gateway.settings import Settings
from intake.messages import InboundMessage, OutboundMessage
from storage import repository
from storage.db import transaction
from storage.models import Conversation, OutboxMessage
from tests.channels import fakes
from tests.channels.conftest import Gateway, configured, open_gateway
from tests.channels.drivers import (
    DRIVERS,
    SENDERS,
    TELEGRAM_SECRET,
    WHATSAPP_VERIFY_TOKEN,
    Driver,
    TelegramDriver,
    TwilioDriver,
    WhatsAppDriver,
)

TELEGRAM, WHATSAPP, TWILIO = TelegramDriver(), WhatsAppDriver(), TwilioDriver()


class Clock:
    """Time that moves only when a test says so (and when the sender sleeps)."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC) + timedelta(minutes=1)  # rows made now are already due
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.at.timestamp()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.at += timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def clock(gateway: Gateway) -> Clock:
    """The gateway's outbox on a clock the test controls (no sleeps, no timed tests)."""
    fake = Clock()
    outbox = gateway.messaging.outbox
    outbox.now, outbox.sleep, outbox.limiter.clock = fake.now, fake.sleep, fake.monotonic
    outbox.jitter = lambda: 1.0
    gateway.messaging.media.now = fake.now
    gateway.messaging.media.jitter = lambda: 1.0
    return fake


def rows(gateway: Gateway, channel: str) -> list[OutboxMessage]:
    with transaction(gateway.runtime.sessions) as session:
        return list(session.scalars(select(OutboxMessage).where(
            OutboxMessage.channel == channel).order_by(OutboxMessage.id)))


def conversation(gateway: Gateway, channel: str, sender: str) -> Conversation:
    with transaction(gateway.runtime.sessions) as session:
        found = repository.current_conversation(session, channel, sender)
        assert found is not None
        return found


async def say(gateway: Gateway, driver: Driver, text: str) -> None:
    response = await gateway.post(driver, driver.text(SENDERS[driver.channel], text))
    assert response.status == 200
    await gateway.messaging.inbound.drain()


# -- rate limits and backoff, on an injected clock ---------------------------------------------


def test_rate_limiter_spaces_calls_per_key_and_overall() -> None:
    now = [0.0]
    limiter = RateLimiter(lambda: now[0])
    assert [limiter.reserve(Limit("telegram:1", 1)) for _ in range(3)] == [0.0, 1.0, 2.0]
    overall = [limiter.reserve(Limit("telegram", 30, 30)) for _ in range(40)]
    assert overall[:30] == [0.0] * 30  # a burst of 30, then 30 per second
    assert overall[30] == pytest.approx(1 / 30) and overall[-1] == pytest.approx(10 / 30)
    assert [limiter.reserve(Limit("whatsapp", 80, 80)) for _ in range(81)][-1] == \
        pytest.approx(1 / 80)
    twilio = [limiter.reserve(Limit("sms-twilio", 5)) for _ in range(3)]
    assert twilio == pytest.approx([0.0, 0.2, 0.4])
    now[0] = 100.0
    assert limiter.reserve(Limit("telegram:1", 1)) == 0.0


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    assert [backoff(n, 2, 60, lambda: 1.0) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    assert backoff(3, 2, 60, lambda: 0.0) == 4  # half of 8: retries of many rows spread out


async def test_replies_to_one_telegram_chat_go_out_one_per_second(gateway: Gateway,
                                                                  clock: Clock) -> None:
    await say(gateway, TELEGRAM, "Hello")
    await say(gateway, TELEGRAM, "1")  # English: the intro, then the next question
    await gateway.messaging.outbox.run_until_idle()
    received = gateway.providers.to("telegram", SENDERS["telegram"])
    assert len(received) == 4
    assert clock.slept == [1.0, 1.0, 1.0]
    assert "Welcome" in received[0].text and received[-1].choices


# -- retries and failures ----------------------------------------------------------------------


async def test_transient_error_is_retried_later_and_order_is_kept(gateway: Gateway,
                                                                  clock: Clock) -> None:
    gateway.providers.fail_next("sms-twilio", 503, {"code": 20500, "message": "busy"})
    await say(gateway, TWILIO, "Hello")
    await gateway.messaging.outbox.run_until_idle()
    first, second = rows(gateway, "sms-twilio")
    assert gateway.providers.delivered == []
    assert (first.state, second.state) == ("pending", "pending")
    assert "Twilio 503" in (first.last_error or "")
    assert first.next_attempt_at is not None and first.next_attempt_at > clock.now()
    clock.advance(3)
    await gateway.messaging.outbox.run_until_idle()
    received = gateway.providers.to("sms-twilio", SENDERS["sms-twilio"])
    assert [r.text[:30] for r in received] == [first.body["text"][:30],
                                                second.body["text"][:30]]
    assert [r.state for r in rows(gateway, "sms-twilio")] == ["sent", "sent"]
    assert rows(gateway, "sms-twilio")[0].provider_message_id.startswith("SM")


async def test_flood_control_waits_as_long_as_telegram_asks(gateway: Gateway,
                                                            clock: Clock) -> None:
    gateway.providers.fail_next("telegram", 429, {
        "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 40",
        "parameters": {"retry_after": 40}})
    await say(gateway, TELEGRAM, "Hello")
    await gateway.messaging.outbox.run_until_idle()
    head = rows(gateway, "telegram")[0]
    assert head.state == "pending"
    assert head.next_attempt_at - clock.now() >= timedelta(seconds=40)


async def test_sender_gives_up_after_the_last_attempt_and_says_why(
        aiohttp_client, channel_settings: Settings,
        providers: fakes.FakeProviders) -> None:  # type: ignore[no-untyped-def]
    gateway = await open_gateway(aiohttp_client, channel_settings.model_copy(
        update={"outbox_max_attempts": 2}), providers)
    for _ in range(2):
        providers.fail_next("whatsapp", 500, {"error": {"code": 131000, "message": "oops"}})
    await say(gateway, WHATSAPP, "Hello")
    outbox = gateway.messaging.outbox
    await outbox.run_until_idle()
    outbox.now = lambda: datetime.now(UTC) + timedelta(hours=1)
    await outbox.run_until_idle()
    first = rows(gateway, "whatsapp")[0]
    assert first.state == "failed"
    assert first.last_error.startswith("gave up after 2 attempts: WhatsApp 500 (131000)")
    assert len(providers.to("whatsapp", SENDERS["whatsapp"])) == 1  # the next reply went out


async def test_permanent_error_fails_at_once_and_the_next_reply_still_goes(
        gateway: Gateway, clock: Clock) -> None:
    gateway.providers.fail_next("sms-twilio", 400, {
        "code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400})
    await say(gateway, TWILIO, "Hello")
    await gateway.messaging.outbox.run_until_idle()
    first, second = rows(gateway, "sms-twilio")
    assert first.state == "failed" and "21211" in first.last_error
    assert first.attempts == 1 and second.state == "sent"


BLOCKED = {
    "telegram": (403, {"ok": False, "error_code": 403,
                       "description": "Forbidden: bot was blocked by the user"}),
    "whatsapp": (400, {"error": {"code": 131026, "message": "Message undeliverable"}}),
    "sms-twilio": (400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient",
                         "status": 400}),
    "sms-africastalking": (201, {"SMSMessageData": {"Message": "Sent to 0/1", "Recipients": [
        {"statusCode": 406, "number": "+254711000001", "status": "UserInBlacklist",
         "cost": "0", "messageId": "None"}]}}),
}


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.channel)
async def test_person_who_blocked_the_bot_is_marked_and_not_retried(
        gateway: Gateway, clock: Clock, driver: Driver) -> None:
    gateway.providers.fail_next(driver.channel, *BLOCKED[driver.channel])
    await say(gateway, driver, "Hello")
    await gateway.messaging.outbox.run_until_idle()
    clock.advance(3600)
    await gateway.messaging.outbox.run_until_idle()
    sender = SENDERS[driver.channel]
    assert conversation(gateway, driver.channel, sender).blocked_at is not None
    assert [r.state for r in rows(gateway, driver.channel)] == ["failed", "failed"]
    assert gateway.providers.to(driver.channel, sender) == []
    sends = [c for c in gateway.providers.calls
             if c[0] == driver.channel and not c[1].startswith("setWebhook")]
    assert len(sends) == 1
    await say(gateway, driver, "1")  # they came back
    await gateway.messaging.outbox.run_until_idle()
    assert conversation(gateway, driver.channel, sender).blocked_at is None
    assert gateway.providers.to(driver.channel, sender)


async def test_web_and_terminal_replies_are_left_to_their_front_ends(gateway: Gateway) -> None:
    gateway.runtime.intake.handle(InboundMessage("terminal", "amina", "t-1", "Hello"))
    gateway.runtime.intake.handle(InboundMessage("web", "browser", "w-1", "Hello"))
    assert await gateway.messaging.outbox.run_until_idle() == 0
    with transaction(gateway.runtime.sessions) as session:
        states = set(session.scalars(select(OutboxMessage.state)))
    assert states == {"pending"} and gateway.providers.calls == [
        c for c in gateway.providers.calls if c[1].startswith("setWebhook")]


# -- WhatsApp's 24-hour window ------------------------------------------------------------------


async def test_whatsapp_outside_the_window_sends_a_template_and_holds_the_message(
        gateway: Gateway, clock: Clock) -> None:
    sender = SENDERS["whatsapp"]
    await say(gateway, WHATSAPP, "Hello")
    await gateway.messaging.outbox.run_until_idle()
    with transaction(gateway.runtime.sessions) as session:
        talk = repository.current_conversation(session, "whatsapp", sender)
        talk.last_inbound_at = clock.now() - timedelta(hours=25)  # a day without a word
        repository.add_outbox(session, talk, [OutboundMessage("A question from the "
                                                              "secretariat")], clock.now())
        repository.add_outbox(session, talk, [OutboundMessage("Please continue")], clock.now(),
                              kind="reminder")
    await gateway.messaging.outbox.run_until_idle()
    question, reminder = rows(gateway, "whatsapp")[-2:]
    assert (question.state, question.delivery_mode) == ("held", "template:mcm_new_message")
    assert reminder.state == "pending"  # waits behind the held question
    assert gateway.providers.to("whatsapp", sender)[-1].text == "[template mcm_new_message]"
    assert gateway.providers.to("whatsapp", sender)[-1].raw["template"]["language"] == {
        "code": "en"}
    await say(gateway, WHATSAPP, "1")  # the person answers: the window is open again
    await gateway.messaging.outbox.run_until_idle()
    texts = [d.text for d in gateway.providers.to("whatsapp", sender)]
    assert "A question from the secretariat" in texts and "Please continue" in texts
    assert rows(gateway, "whatsapp")[-3].delivery_mode == "session"


async def test_whatsapp_reminder_outside_the_window_is_the_reminder_template(
        gateway: Gateway, clock: Clock) -> None:
    sender = SENDERS["whatsapp"]
    await say(gateway, WHATSAPP, "Hello")
    await gateway.messaging.outbox.run_until_idle()
    with transaction(gateway.runtime.sessions) as session:
        talk = repository.current_conversation(session, "whatsapp", sender)
        talk.last_inbound_at = clock.now() - timedelta(hours=30)
        repository.add_outbox(session, talk, [OutboundMessage("reminder")], clock.now(),
                              kind="reminder")
    await gateway.messaging.outbox.run_until_idle()
    last = rows(gateway, "whatsapp")[-1]
    assert (last.state, last.delivery_mode) == ("sent", "template:mcm_reminder")


async def test_whatsapp_closed_window_reported_by_meta_falls_back_to_the_template(
        gateway: Gateway, clock: Clock) -> None:
    gateway.providers.fail_next("whatsapp", 400, {"error": {
        "code": 131047, "message": "Re-engagement message"}})
    await say(gateway, WHATSAPP, "Hello")
    await gateway.messaging.outbox.run_until_idle()
    assert rows(gateway, "whatsapp")[0].state == "held"


# -- files -----------------------------------------------------------------------------------------

PHOTO = b"\xff\xd8\xff\xe0" + b"river photo" * 100


@pytest.mark.parametrize(("driver", "fixture", "reference"), [
    (TELEGRAM, "media_photo", "AgACAgQAAxkBAAIBq2WlargeXX"),
    (WHATSAPP, "media_image", "1037543291543636"),
    (TWILIO, "media_image", "ME3c4d5e6f708192a3b4c5d6e7f8091a2b"),
], ids=["telegram", "whatsapp", "sms-twilio"])
async def test_photo_becomes_evidence_with_its_sha256(gateway: Gateway, clock: Clock,
                                                      driver: Driver, fixture: str,
                                                      reference: str) -> None:
    import hashlib

    gateway.providers.files[reference] = (PHOTO, "image/jpeg")
    payload = driver.fixture(fixture, api_base=gateway.runtime.settings.twilio_api_base)
    assert (await gateway.post(driver, payload)).status == 200
    await gateway.settle()
    [row] = gateway.inbound(driver.channel)
    [attachment] = row.attachments
    assert attachment["sha256"] == hashlib.sha256(PHOTO).hexdigest()
    assert attachment["media_type"] == "image/jpeg" and attachment["size"] == len(PHOTO)
    assert gateway.runtime.evidence.read(attachment["sha256"]) == PHOTO
    assert row.processed_at is not None


async def test_file_over_the_size_cap_is_refused_and_the_person_told(gateway: Gateway,
                                                                     clock: Clock) -> None:
    await say(gateway, TELEGRAM, "Hello")
    gateway.providers.files["BQACAgQAAxkBAAIBrGdocXX"] = (b"%PDF-" + b"x" * 70_000,
                                                          "application/pdf")
    doc = TELEGRAM.fixture("media_document")
    doc["message"]["chat"]["id"] = doc["message"]["from"]["id"] = int(SENDERS["telegram"])
    await gateway.post(TELEGRAM, doc)
    await gateway.settle()
    texts = [d.text for d in gateway.providers.to("telegram", SENDERS["telegram"])]
    assert any("lettre à la mine.pdf is too large" in t for t in texts)


async def test_mislabelled_file_is_refused_as_the_wrong_type(gateway: Gateway,
                                                             clock: Clock) -> None:
    await say(gateway, WHATSAPP, "Hello")
    gateway.providers.files["1037543291543636"] = (b"<html>error</html>", "image/jpeg")
    payload = WHATSAPP.fixture("media_image")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = SENDERS["whatsapp"]
    await gateway.post(WHATSAPP, payload)
    await gateway.settle()
    texts = [d.text for d in gateway.providers.to("whatsapp", SENDERS["whatsapp"])]
    assert any("this kind of file is not accepted" in t for t in texts)


async def test_failed_download_is_retried_then_reported_and_later_messages_wait(
        gateway: Gateway, clock: Clock) -> None:
    sender = SENDERS["whatsapp"]
    await say(gateway, WHATSAPP, "Hello")
    await gateway.messaging.outbox.run_until_idle()
    gateway.providers.files["1037543291543636"] = (PHOTO, "image/jpeg")
    for _ in range(4):
        gateway.providers.fail_next("whatsapp-file", 503, "unavailable")
    photo = WHATSAPP.fixture("media_image")
    photo["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = sender
    await gateway.post(WHATSAPP, photo)
    await say(gateway, WHATSAPP, "1")  # English: must wait for the photo before it
    await gateway.settle()
    photo_row, answer_row = gateway.inbound("whatsapp")[1:]
    assert photo_row.processed_at is None and answer_row.processed_at is None
    for _ in range(3):
        clock.advance(120)
        await gateway.messaging.inbound.retry_media()
        await gateway.settle()
    photo_row, answer_row = gateway.inbound("whatsapp")[1:]
    assert photo_row.processed_at < answer_row.processed_at
    texts = [d.text for d in gateway.providers.to("whatsapp", sender)]
    assert any("image-" in t and "did not reach us" in t for t in texts)
    assert conversation(gateway, "whatsapp", sender).language == "en"


async def test_a_file_that_never_arrives_still_wakes_an_expired_draft(
        gateway: Gateway, clock: Clock) -> None:
    # The person's only sign of life is a photo whose download fails: their draft must not
    # stay expired (retention purges expired drafts) while they are writing to us.
    sender = SENDERS["whatsapp"]
    await say(gateway, WHATSAPP, "Hello")
    with transaction(gateway.runtime.sessions) as session:
        row = repository.current_conversation(session, "whatsapp", sender)
        row.status, row.expired_at = "expired", datetime.now(UTC) - timedelta(days=3)
    for _ in range(4):
        gateway.providers.fail_next("whatsapp-file", 503, "unavailable")
    photo = WHATSAPP.fixture("media_image")
    photo["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = sender
    del photo["entry"][0]["changes"][0]["value"]["messages"][0]["image"]["caption"]
    await gateway.post(WHATSAPP, photo)
    for _ in range(4):
        clock.advance(120)
        await gateway.messaging.inbound.retry_media()
        await gateway.settle()
    texts = [d.text for d in gateway.providers.to("whatsapp", sender)]
    assert any("did not reach us" in t for t in texts)
    woken = conversation(gateway, "whatsapp", sender)
    assert woken.status == "draft" and woken.expired_at is None


# -- order, startup, handshakes and secrets ------------------------------------------------------


async def test_one_senders_messages_are_processed_in_the_order_they_came(
        gateway: Gateway) -> None:
    sender = SENDERS["sms-twilio"]
    ids = [gateway.runtime.intake.receive(InboundMessage("sms-twilio", sender, f"SMo{n}", text))
           for n, text in enumerate(["Hello", "1", "1", "1"])]
    await gateway.messaging.inbound.process_in_order(ids[-1])  # the last one arrives first
    state = conversation(gateway, "sms-twilio", sender).state
    assert state["answers"]["applicant.on_behalf"] == "self"
    assert state["answers"]["applicant.category"] == "individual"
    assert state["current"] == "applicant.name"


async def test_button_press_is_acknowledged_to_telegram(gateway: Gateway) -> None:
    await gateway.post(TELEGRAM, TELEGRAM.press(SENDERS["telegram"], "en"))
    await gateway.messaging.inbound.drain()
    assert ("telegram", "answerCallbackQuery") in gateway.providers.calls


async def test_telegram_webhook_is_registered_with_its_secret_at_startup(
        gateway: Gateway) -> None:
    assert ("telegram", "setWebhook https://intake.example.org/webhooks/telegram "
                        f"secret={TELEGRAM_SECRET}") in gateway.providers.calls


async def test_telegram_long_polling_takes_updates_like_the_webhook(
        aiohttp_client, channel_settings: Settings,
        providers: fakes.FakeProviders) -> None:  # type: ignore[no-untyped-def]
    gateway = await open_gateway(aiohttp_client, channel_settings.model_copy(
        update={"telegram_mode": "polling"}), providers)
    providers.updates.append(TELEGRAM.text(SENDERS["telegram"], "Hello"))
    client = gateway.messaging.clients["telegram"]
    for update in await client.updates(0, 0):  # type: ignore[attr-defined]
        await gateway.messaging.take_telegram_update(update)
    await gateway.settle()
    assert "Welcome" in providers.to("telegram", SENDERS["telegram"])[0].text


async def test_telegram_long_polling_goes_on_after_an_unforeseen_error(
        aiohttp_client, channel_settings: Settings, providers: fakes.FakeProviders,
        monkeypatch) -> None:  # type: ignore[no-untyped-def]
    gateway = await open_gateway(aiohttp_client, channel_settings.model_copy(
        update={"telegram_mode": "polling"}), providers)
    monkeypatch.setattr(messaging, "POLL_ERROR_PAUSE_SECONDS", 0.01)
    providers.updates.append(TELEGRAM.text(SENDERS["telegram"], "Hello"))
    take, failed = gateway.messaging.take_telegram_update, []

    async def breaks_once(data: dict[str, object]) -> None:
        if not failed:
            failed.append(data)
            raise RuntimeError("an error nobody foresaw")
        await take(data)
    monkeypatch.setattr(gateway.messaging, "take_telegram_update", breaks_once)
    polling = asyncio.create_task(gateway.messaging._poll_telegram(
        gateway.messaging.clients["telegram"]))  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(10):
            while not providers.to("telegram", SENDERS["telegram"]):
                await asyncio.sleep(0.02)
                await gateway.settle()
    finally:
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
    assert failed and "Welcome" in providers.to("telegram", SENDERS["telegram"])[0].text
    assert [row.text for row in gateway.inbound("telegram")] == ["Hello"]  # taken once


async def test_whatsapp_subscription_handshake(gateway: Gateway) -> None:
    ok = await gateway.client.get("/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": WHATSAPP_VERIFY_TOKEN,
        "hub.challenge": "1158201444"})
    assert ok.status == 200 and await ok.text() == "1158201444"
    wrong = await gateway.client.get("/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    assert wrong.status == 403


async def test_delivery_report_marks_the_message_delivered(gateway: Gateway,
                                                           clock: Clock) -> None:
    await say(gateway, TWILIO, "Hello")
    await gateway.messaging.outbox.run_until_idle()
    first = rows(gateway, "sms-twilio")[0]
    report = TWILIO.fixture("status_delivered") | {"MessageSid": first.provider_message_id}
    assert (await gateway.post(TWILIO, report)).status == 200
    assert rows(gateway, "sms-twilio")[0].delivery_status == "delivered"


async def test_each_channel_off_is_said_once_at_startup(aiohttp_client, settings: Settings,
                                                        caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="gateway")
    await aiohttp_client(create_app(settings, workers=False))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("channel ")]
    assert sorted(line.split(":")[0] for line in lines) == [
        "channel E-mail", "channel SMS (Africa's Talking)", "channel SMS (Twilio)",
        "channel Telegram", "channel WhatsApp"]
    assert all("off, not configured" in line for line in lines)


async def test_secrets_never_reach_the_log(gateway: Gateway, clock: Clock, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    await say(gateway, TELEGRAM, "Hello")
    await gateway.messaging.outbox.run_until_idle()
    await gateway.client.post("/webhooks/sms/africastalking?secret=wrong", data=b"id=1")
    logging.getLogger("gateway").warning("token %s leaked", fakes.TELEGRAM_TOKEN)
    assert gateway.providers.to("telegram", SENDERS["telegram"])
    for secret in (fakes.TELEGRAM_TOKEN, TELEGRAM_SECRET, fakes.TWILIO_TOKEN):
        assert secret not in caplog.text


def test_configured_helper_turns_every_channel_on(settings: Settings) -> None:
    from gateway.providers import channel_statuses

    on = configured(settings, fakes.FakeProviders(url="http://127.0.0.1:9"))
    assert all(status.on for status in channel_statuses(on))
