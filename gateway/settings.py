"""One settings object: environment variables prefixed GATEWAY_, optionally a TOML file.

The TOML file is `gateway.toml` in the working directory, or the path in GATEWAY_CONFIG.
Environment variables win over the file. docs/settings.md describes every setting.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from gateway.language_detection import DEFAULT_DETECTOR, detector_name


class Settings(BaseSettings):
    """Every setting of the gateway, with the default that runs on a fresh machine."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="SQLite file and evidence folder")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty: SQLite in data_dir")
    http_host: str = Field(default="127.0.0.1", description="Address the HTTP server listens on")
    http_port: int = Field(default=8080, ge=1, le=65535)
    public_url: str = Field(default="", description="Public base URL behind a proxy")
    form_path: Path | None = Field(default=None, description="A form definition to use instead")
    catalog_dir: Path | None = Field(default=None, description="Extra .po catalogs that override")
    default_language: str = Field(default="en")
    language_detector: str = Field(
        default=DEFAULT_DETECTOR, description="Guesses the language of a first message: "
        "fasttext, langdetect, lingua or script, or several joined by '+'")
    max_attachment_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    draft_reminder_hours: float = Field(default=24.0, gt=0)
    draft_expiry_days: float = Field(default=30.0, gt=0)
    draft_retention_days: float | None = Field(
        default=None, gt=0, description="Delete expired drafts after; unset: keep")
    worker_interval_seconds: float = Field(default=5.0, gt=0)
    # Machine translation of free-text answers into Chinese and English (docs/settings.md).
    translation_backend: Literal["argos", "libretranslate", "none"] = Field(
        default="argos", description="argos: installed Argos packages in this process")
    libretranslate_url: str = Field(default="", description="A LibreTranslate server")
    libretranslate_api_key: SecretStr = Field(default=SecretStr(""))
    argos_package_index: str = Field(
        default="https://raw.githubusercontent.com/argosopentech/argospm-index/main/",
        description="Where `gateway translate install --from-index` looks")
    translation_batch_size: int = Field(default=32, ge=1, le=1000)
    translation_max_attempts: int = Field(default=5, ge=1)
    translation_timeout_seconds: float = Field(default=120.0, gt=0)
    translation_threads: int = Field(default=1, ge=0, description="CTranslate2 threads; 0: all")
    log_level: str = Field(default="INFO")
    secret_key: str = Field(
        default="", description="Signs secretariat cookies and tokens; empty: a generated key "
                                "file in data_dir (set it when several instances serve)")
    staff_session_hours: float = Field(default=8.0, gt=0, description="Idle secretariat login")
    api_token_hours: float = Field(default=12.0, gt=0, description="Lifetime of an API token")
    login_max_failures_per_user: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_window_minutes: float = Field(default=15.0, gt=0)
    trusted_proxies: str = Field(
        default="", description="Comma-separated proxy addresses whose X-Forwarded-For is used")
    # Encryption at rest and limits on what comes in (docs/security.md).
    encryption_key: SecretStr = Field(
        default=SecretStr(""), description="Base64 AES keys, comma-separated, the current first")
    encryption_key_file: Path | None = Field(
        default=None, description="A file of base64 keys, one a line; unset: one in data_dir")
    chat_messages_per_minute: int = Field(default=60, ge=1, description="Per web chat browser")
    chat_requests_per_minute_per_address: int = Field(default=300, ge=1)
    inbound_messages_per_minute: int = Field(
        default=60, ge=1, description="Per sender on a messaging channel; more are deferred")
    webhook_refusals_per_minute_per_address: int = Field(default=30, ge=1)

    # Messaging channels (docs/settings.md, "Messaging channels"): each stays off until its
    # credentials are set; a webhook whose secret is missing refuses every request.
    telegram_token: SecretStr = Field(default=SecretStr(""), description="Bot token")
    telegram_secret_token: SecretStr = Field(default=SecretStr(""),
                                             description="Webhook secret_token")
    telegram_mode: Literal["webhook", "polling"] = Field(default="polling")
    telegram_api_base: str = Field(default="https://api.telegram.org")
    telegram_rate_per_second: float = Field(default=30.0, gt=0)
    telegram_rate_per_chat_per_second: float = Field(default=1.0, gt=0)
    whatsapp_app_secret: SecretStr = Field(default=SecretStr(""))
    whatsapp_verify_token: SecretStr = Field(default=SecretStr(""))
    whatsapp_access_token: SecretStr = Field(default=SecretStr(""))
    whatsapp_phone_number_id: str = Field(default="")
    whatsapp_api_base: str = Field(default="https://graph.facebook.com/v23.0")
    whatsapp_rate_per_second: float = Field(default=80.0, gt=0)
    whatsapp_template_reminder: str = Field(default="")
    whatsapp_template_notification: str = Field(default="")
    whatsapp_template_languages: str = Field(default="en")
    twilio_account_sid: str = Field(default="")
    twilio_auth_token: SecretStr = Field(default=SecretStr(""))
    twilio_from: str = Field(default="")
    twilio_api_base: str = Field(default="https://api.twilio.com")
    twilio_rate_per_second: float = Field(default=1.0, gt=0, le=100)
    africastalking_username: str = Field(default="")
    africastalking_api_key: SecretStr = Field(default=SecretStr(""))
    africastalking_api_base: str = Field(default="https://api.africastalking.com")
    africastalking_from: str = Field(default="")
    africastalking_webhook_secret: SecretStr = Field(default=SecretStr(""))
    africastalking_allowed_ips: str = Field(default="")
    africastalking_rate_per_second: float = Field(default=10.0, gt=0)
    sms_max_segments: int = Field(default=3, ge=1, le=10)
    webhook_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    outbox_max_attempts: int = Field(default=8, ge=1)
    outbox_backoff_seconds: float = Field(default=2.0, gt=0)
    outbox_backoff_max_seconds: float = Field(default=900.0, gt=0)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    media_max_attempts: int = Field(default=4, ge=1)
    media_allowed_types: str = Field(
        default="image/*,audio/*,video/*,application/pdf,text/plain,application/msword,"
                "application/vnd.openxmlformats-officedocument.*,application/vnd.oasis.opendocument.*")

    # E-mail (docs/settings.md, "E-mail"): on when GATEWAY_IMAP_HOST is set (with the rest).
    imap_host: str = Field(default="", description="IMAP server the applications arrive at")
    imap_port: int = Field(default=0, ge=0, le=65535, description="0: 993 with ssl, else 143")
    imap_user: str = Field(default="")
    imap_password: SecretStr = Field(default=SecretStr(""))
    imap_tls: Literal["none", "starttls", "ssl"] = Field(default="ssl")
    imap_folder: str = Field(default="INBOX")
    imap_poll_seconds: float = Field(default=60.0, gt=0, description="Without IDLE")
    smtp_host: str = Field(default="", description="SMTP server the replies leave by")
    smtp_port: int = Field(default=0, ge=0, le=65535, description="0: 465, 587 or 25")
    smtp_tls: Literal["none", "starttls", "ssl"] = Field(default="starttls")
    smtp_user: str = Field(default="")
    smtp_password: SecretStr = Field(default=SecretStr(""))
    smtp_rate_per_second: float = Field(default=5.0, gt=0)
    email_from: str = Field(default="", description="'MCM Intake <intake@example.org>'")
    email_max_message_bytes: int = Field(default=40 * 1024 * 1024, ge=64 * 1024)
    email_max_replies_per_hour: int = Field(default=10, ge=1)

    @field_validator("form_path", "catalog_dir", "draft_retention_days", "encryption_key_file",
                     mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("africastalking_allowed_ips")
    @classmethod
    def _networks(cls, value: str) -> str:
        for network in (n.strip() for n in value.split(",") if n.strip()):
            ipaddress.ip_network(network, strict=False)
        return value

    @field_validator("language_detector")
    @classmethod
    def _known_language_detector(cls, value: str) -> str:
        return detector_name(value)

    @property
    def effective_database_url(self) -> str:
        """The database URL: the setting, or an SQLite file under data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gateway.sqlite3').resolve()}"

    @property
    def evidence_dir(self) -> Path:
        """Where evidence files are kept, named by their sha256."""
        return self.data_dir / "evidence"

    @property
    def argos_dir(self) -> Path:
        """Where Argos Translate packages and argostranslate's own files are kept."""
        return self.data_dir / "argos"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit values, then the environment, then the TOML file."""
        toml_file = Path(os.environ.get("GATEWAY_CONFIG", "gateway.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)
