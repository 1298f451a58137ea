"""Keeping secrets and applicants out of the logs.

Every configured secret (provider tokens, the signing key, the encryption keys, the database
password) is masked in every log line and traceback (chained exceptions included), on every
handler of every logger the process has, whenever the gateway opens; phone numbers and e-mail
addresses are masked too, in case an error message from a provider quotes one: international
numbers written with '+', and runs of 8 or more digits, which is how WhatsApp ids, Africa's
Talking recipients and Telegram chat ids appear (row ids, counts, ports, statuses and
durations are shorter, or decimals, and stay). An exception no code caught, in any thread, is
logged through the same filter instead of printed raw. Clients that log request URLs or
payloads (Telegram's bot token is in its URLs; message texts are in its payloads) are held at
WARNING whatever GATEWAY_LOG_LEVEL says.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

MASK = "[redacted]"
# Clients that log request URLs or bodies at INFO or DEBUG.
CHATTY_LOGGERS = ("httpx", "httpcore", "telegram", "hpack", "urllib3")
# What identifies a person in free text: an international phone number, an e-mail address,
# and a bare run of 8 or more digits (a phone number without '+': a WhatsApp id, an Africa's
# Talking recipient; a Telegram chat id, negative for a group) that is not part of a word, a
# decimal, a hyphenated id or a size in bytes.
PERSONAL = re.compile(r"\+\s?\d[\d\s().-]{6,18}\d|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
                      r"|(?<![\w.])(?<!\w-)-?\d{8,}(?![\w])(?!\.\d)(?!-\w)(?!\s?bytes\b)")


class SecretFilter(logging.Filter):
    """Masks each secret, phone number and e-mail address in a record's message and
    traceback."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these secrets too (a process may open several gateways, as tests do)."""
        found = {*self.secrets, *(s for s in secrets if len(s) >= 4)}
        self.secrets = sorted(found, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; never raises, so a bad log call cannot crash its caller
        (nor reach logging's error report, which prints the arguments unmasked)."""
        # The message is formatted once, here, and kept as formatted: no handler or formatter
        # after this one formats the arguments again.
        record.msg, record.args = redact(_message(record), self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
            # Formatters print exc_text; one that formats exc_info itself would print it raw.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


def _message(record: logging.LogRecord) -> str:
    """The record's message; if its arguments do not fit it, the template and their types."""
    try:
        return record.getMessage()
    except Exception as error:  # noqa: BLE001 - a bad log call must not crash the caller
        types = ", ".join(type(arg).__name__ for arg in record.args or ()) \
            if isinstance(record.args, tuple) else type(record.args).__name__
        return f"{_text(record.msg)} (log arguments {types} unusable: {type(error).__name__})"


def _text(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - as above
        return f"<{type(value).__name__}>"


def redact(text: str, secrets: Iterable[str]) -> str:
    """The text with every secret, phone number and e-mail address masked."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return PERSONAL.sub(MASK, text)


_FILTER = SecretFilter(())


def install(secrets: Iterable[str]) -> SecretFilter:
    """Mask these secrets on every handler of every logger, log uncaught exceptions through
    them, and quieten chatty clients."""
    _FILTER.add(secrets)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    for handler in _handlers():
        for old in [f for f in handler.filters if isinstance(f, SecretFilter) and f is not _FILTER]:
            handler.removeFilter(old)
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return _FILTER


def _handlers() -> list[logging.Handler]:
    loggers: list[Any] = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    found = [handler for logger in loggers if isinstance(logger, logging.Logger)
             for handler in logger.handlers]
    # Where records go when no logger has a handler.
    return found + ([logging.lastResort] if logging.lastResort is not None else [])


def _log_uncaught(kind: type[BaseException], error: BaseException,
                  traceback: TracebackType | None) -> None:
    """sys.excepthook: the traceback goes to the log, masked, not raw to standard error."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    logging.getLogger("gateway").critical("uncaught exception",
                                          exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(uncaught: threading.ExceptHookArgs) -> None:
    """threading.excepthook: as `_log_uncaught`, naming the thread."""
    if uncaught.exc_type is SystemExit or uncaught.exc_value is None:
        return
    name = uncaught.thread.name if uncaught.thread is not None else "?"
    logging.getLogger("gateway").error(
        "uncaught exception in thread %s", name,
        exc_info=(uncaught.exc_type, uncaught.exc_value, uncaught.exc_traceback))


def secrets_of(settings: Any, keys: Iterable[str] = ()) -> list[str]:
    """Every secret the settings hold, for masking: the channels', the signing key, the
    translation server's key, the database password, the password of any other URL setting
    (a LibreTranslate server or a provider's base URL behind a proxy with `user:password@`),
    and the encryption keys."""
    from gateway.providers import secrets_of as channel_secrets

    found = [*channel_secrets(settings), settings.secret_key,
             settings.libretranslate_api_key.get_secret_value(), *keys]
    found += settings.encryption_key.get_secret_value().split(",")
    with contextlib.suppress(ArgumentError):
        found.append(make_url(settings.effective_database_url).password or "")
    found += [_url_password(value) for value in vars(settings).values()
              if isinstance(value, str) and "://" in value]
    for path in (settings.encryption_key_file or settings.data_dir / "encryption.key",
                 settings.data_dir / "secret_key"):
        if path.is_file():  # its keys; not the words of a comment, masked in every line
            found += [word for line in path.read_text(encoding="ascii", errors="replace")
                      .splitlines() if not line.strip().startswith("#") for word in line.split()]
    return [secret.strip() for secret in found if secret and secret.strip()]


def _url_password(url: str) -> str:
    """The password in a URL's `user:password@`, or ''."""
    try:
        return urlsplit(url).password or ""
    except ValueError:  # a port that is not a number: no password to find either
        return ""
