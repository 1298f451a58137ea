"""Opening what every entry point needs: settings, database, engine, services."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine as DatabaseEngine
from sqlalchemy.orm import Session, sessionmaker

from gateway.evidence import EvidenceStore
from gateway.keys import check_keys, open_keyring
from gateway.mail_filing import MailFiling
from gateway.ratelimit import Throttle
from gateway.redaction import install, secrets_of
from gateway.service import IntakeService, build_engine
from gateway.settings import Settings
from intake.engine import Engine
from storage.crypto import Keyring
from storage.db import needs_upgrade, open_engine, require_database, session_factory, upgrade

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The opened database, the engine and the services built on them."""

    settings: Settings
    database: DatabaseEngine
    sessions: sessionmaker[Session]
    engine: Engine
    intake: IntakeService
    evidence: EvidenceStore
    keyring: Keyring
    # The inbound limits of this process (web chat, webhooks, each sender's messages).
    throttle: Throttle = field(default_factory=Throttle)

    def close(self) -> None:
        """Release the database connections."""
        self.database.dispose()


def open_runtime(settings: Settings, migrate: bool = True, existing: bool = False) -> Runtime:
    """Open everything; with `migrate`, bring an empty or older database up to date. With
    `existing` (commands that look at what is there), refuse with NoDatabase where there is
    no gateway database yet, making neither a database nor a key."""
    if existing:
        require_database(settings.effective_database_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keyring = open_keyring(settings)
    install(secrets_of(settings))
    database = open_engine(settings.effective_database_url)
    evidence = EvidenceStore(settings.evidence_dir, settings.max_attachment_bytes, keyring,
                             settings.media_allowed_types)
    if migrate and needs_upgrade(database):
        log.info("upgrading the database schema")
        upgrade_and_seal(database, keyring, evidence)
    sessions = session_factory(database, keyring)
    if migrate:
        check_keys(sessions, keyring)
    engine = build_engine(settings)
    intake = IntakeService(sessions, engine)
    intake.filings[MailFiling.channel] = MailFiling(intake, settings.email_max_replies_per_hour)
    return Runtime(settings=settings, database=database, sessions=sessions, engine=engine,
                   intake=intake, evidence=evidence, keyring=keyring)


def upgrade_and_seal(database: DatabaseEngine, keyring: Keyring, evidence: EvidenceStore
                     ) -> None:
    """Migrate (sealing what was stored in clear, 0004_security), seal the evidence files kept
    in clear, and on SQLite rewrite the file so no page keeps an old clear value."""
    upgrade(database, keyring)
    evidence.reseal_all()
    if database.dialect.name == "sqlite":
        connection = database.raw_connection()
        try:
            connection.execute("VACUUM")
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()
