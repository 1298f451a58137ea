"""Keeping secrets and applicants out of the logs.

Every configured secret (provider tokens, the signing key, the encryption keys, the database
password) is masked in every log line and traceback, on every handler of every logger the
process has, whenever the gateway opens; phone numbers and e-mail addresses are masked too, in
case an error message from a provider quotes one. Clients that log request URLs or payloads
(Telegram's bot token is in its URLs; message texts are in its payloads) are held at WARNING
whatever GATEWAY_LOG_LEVEL says.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

MASK = "[redacted]"
# Clients that log request URLs or bodies at INFO or DEBUG.
CHATTY_LOGGERS = ("httpx", "httpcore", "telegram", "hpack", "urllib3")
# What identifies a person in free text: an international phone number, an e-mail address.
PERSONAL = re.compile(r"\+\s?\d[\d\s().-]{6,18}\d|[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


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
        message = record.getMessage()
        masked = redact(message, self.secrets)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


def redact(text: str, secrets: Iterable[str]) -> str:
    """The text with every secret, phone number and e-mail address masked."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return PERSONAL.sub(MASK, text)


_FILTER = SecretFilter(())


def install(secrets: Iterable[str]) -> SecretFilter:
    """Mask these secrets on every handler of every logger, and quieten chatty clients."""
    _FILTER.add(secrets)
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
    return [handler for logger in loggers if isinstance(logger, logging.Logger)
            for handler in logger.handlers]


def secrets_of(settings: Any, keys: Iterable[str] = ()) -> list[str]:
    """Every secret the settings hold, for masking: the channels', the signing key, the
    translation server's key, the database password, and the encryption keys."""
    from gateway.providers import secrets_of as channel_secrets

    found = [*channel_secrets(settings), settings.secret_key,
             settings.libretranslate_api_key.get_secret_value(), *keys]
    found += settings.encryption_key.get_secret_value().split(",")
    with contextlib.suppress(ArgumentError):
        found.append(make_url(settings.effective_database_url).password or "")
    for path in (settings.encryption_key_file or settings.data_dir / "encryption.key",
                 settings.data_dir / "secret_key"):
        if path.is_file():
            found += path.read_text(encoding="ascii", errors="replace").split()
    return [secret.strip() for secret in found if secret and secret.strip()]
