"""What an operator reads in the gateway's log: every identifier a provider quotes without '+'
(a WhatsApp id, an Africa's Talking recipient, a Telegram chat id) is masked, the figures that
make a log line useful stay, and no secret gets out through a log call's arguments, a chained
exception, a broken log call or an exception in a thread.

Each test logs through a real handler and formatter, as `gateway serve` sets them up, and
reads the text the handler wrote."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.redaction import MASK, install, secrets_of
from gateway.settings import Settings
from storage.crypto import new_key

TOKEN = "7712345678:AAFakeTelegramBotToken-abcdefghijk"
API_KEY = "atsk_0123456789abcdef0123456789abcdef"


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """A handler on the root logger writing what an operator would read; the filter on it."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    hooks = sys.excepthook, threading.excepthook
    install([TOKEN, API_KEY])
    try:
        yield written
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        sys.excepthook, threading.excepthook = hooks


log = logging.getLogger("gateway.outbox")


def test_identifiers_without_plus_are_masked(log_text: io.StringIO) -> None:
    log.warning("outbox row %s to %s failed: %s", 41, "whatsapp",
                "WhatsApp 400 (131026): Message undeliverable to 254712345678")
    log.warning("outbox row 42 to sms-africastalking failed: Africa's Talking 403: "
                "{'Recipients': [{'number': '254712345679', 'status': 'UserInBlacklist'}]}")
    log.warning("Telegram 400: chat %d not found", 123456789)
    log.warning("Telegram 400: group migrated to supergroup. New chat id: -1001234567890.")
    log.warning("reply to 254712345670.")  # the end of a sentence
    written = log_text.getvalue()
    for identifier in ("254712345678", "254712345679", "123456789", "1001234567890",
                       "254712345670"):
        assert identifier not in written
    assert written.count(MASK) == 5
    assert "Message undeliverable to [redacted]" in written


def test_figures_that_identify_nobody_stay(log_text: io.StringIO) -> None:
    log.info("outbox row %d to %s failed: HTTP %d after %d attempts in %.3f s", 1234567,
             "sms-twilio", 503, 5, 12.345)
    log.info("webhook listening on port %d; %d messages stored, %d unprocessed", 8080, 250, 0)
    log.info("file of inbound message 88 not kept: more than 20971520 bytes")
    log.info("round took 1712345678.25 s; lease 2026-05-01T10:00:00+00:00; "
             "id 550e8400-e29b-41d4-a716-446655440000")
    written = log_text.getvalue()
    assert MASK not in written
    for figure in ("row 1234567", "HTTP 503", "5 attempts", "12.345 s", "port 8080",
                   "250 messages", "0 unprocessed", "20971520 bytes", "1712345678.25 s",
                   "2026-05-01T10:00:00", "550e8400-e29b-41d4-a716-446655440000"):
        assert figure in written


def test_secrets_in_arguments_that_are_not_strings_are_masked(log_text: io.StringIO) -> None:
    log.error("send failed: %s", RuntimeError(f"401 for https://api.telegram.org/bot{TOKEN}/x"))
    log.error("headers %r", {"apiKey": API_KEY})
    log.error("raw %s", API_KEY.encode())
    log.error({"token": TOKEN})
    written = log_text.getvalue()
    assert TOKEN not in written and API_KEY not in written
    assert written.count(MASK) == 4


def test_a_broken_log_call_neither_crashes_its_caller_nor_leaks(
        log_text: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise ValueError(f"cannot print {API_KEY}")

    log.warning("row %d sent to %s", "not a number", TOKEN)  # must not raise
    log.warning("recipient %s", Unprintable())                # must not raise
    written = log_text.getvalue() + capsys.readouterr().err
    assert TOKEN not in written and API_KEY not in written
    assert "row %d sent to %s" in written and "recipient %s" in written


def test_chained_exceptions_are_masked_in_the_traceback(log_text: io.StringIO) -> None:
    try:
        try:
            raise ConnectionError(f"refused: https://api.telegram.org/bot{TOKEN}/sendMessage")
        except ConnectionError as cause:
            try:
                raise KeyError(f"chat 254712345678 with key {API_KEY}") from cause
            except KeyError:
                raise RuntimeError("sending failed") from None
    except RuntimeError:
        log.exception("outbox round failed")
    try:
        try:
            raise ValueError(API_KEY)
        except ValueError:
            raise RuntimeError("while handling it") from None
    except RuntimeError as error:
        error.__context__ = ValueError(f"context {TOKEN}")
        error.__suppress_context__ = False
        log.exception("translation round failed")
    written = log_text.getvalue()
    assert "outbox round failed" in written and "translation round failed" in written
    assert "RuntimeError: while handling it" in written
    assert TOKEN not in written and API_KEY not in written
    assert "254712345678" not in written


def test_exceptions_in_threads_are_masked(log_text: io.StringIO) -> None:
    def logs_its_exception() -> None:
        try:
            raise RuntimeError(f"Africa's Talking refused {API_KEY} for 254712345678")
        except RuntimeError:
            logging.getLogger("gateway.translation.worker").exception("round failed")

    def dies() -> None:
        raise RuntimeError(f"bot token {TOKEN} refused")

    for target in (logs_its_exception, dies):
        thread = threading.Thread(target=target, name=f"worker-{target.__name__}")
        thread.start()
        thread.join()
    written = log_text.getvalue()
    assert "round failed" in written
    assert "uncaught exception in thread worker-dies" in written
    assert "RuntimeError: bot token [redacted] refused" in written
    assert TOKEN not in written and API_KEY not in written and "254712345678" not in written


def test_an_uncaught_exception_in_a_process_is_logged_masked() -> None:
    program = (
        "import logging, sys\n"
        "logging.basicConfig(stream=sys.stderr, format='%(levelname)s %(message)s')\n"
        "from gateway.redaction import install\n"
        f"install([{TOKEN!r}])\n"
        f"raise RuntimeError('cannot reach https://api.telegram.org/bot{TOKEN}/getMe')\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "CRITICAL uncaught exception" in result.stderr
    assert "RuntimeError: cannot reach https://api.telegram.org/bot[redacted]/getMe" \
        in result.stderr
    assert TOKEN not in result.stderr


def test_a_comment_in_the_key_file_does_not_mask_its_words_everywhere(tmp_path: Path) -> None:
    key = new_key()
    (tmp_path / "encryption.key").write_text(f"# office key, rotated in March\n{key}\n")
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    logger = logging.getLogger("gateway.review.keyfile")
    logger.addHandler(handler)
    try:
        install(secrets_of(Settings(data_dir=tmp_path)))
        logger.warning("the office rotated the key in March: %s", key)
    finally:
        logger.removeHandler(handler)
    assert written.getvalue() == f"the office rotated the key in March: {MASK}\n"


def test_the_password_of_a_url_setting_is_masked(tmp_path: Path, log_text: io.StringIO) -> None:
    settings = Settings(data_dir=tmp_path, translation_backend="libretranslate",
                        libretranslate_url="https://mcm:Tr4nsl8-pw@translate.example.org/")
    install(secrets_of(settings))
    log.warning("translation server %s did not answer", settings.libretranslate_url)
    assert "Tr4nsl8-pw" not in log_text.getvalue()
    assert "translate.example.org" in log_text.getvalue()
