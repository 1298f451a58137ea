"""Secretariat users: argon2 passwords, rate-limited logins, signed session tokens, audit log.

A login is a row in `staff_sessions`: the browser's cookie or the API's bearer token is a
random secret signed with the deployment's key (itsdangerous), and only the secret's sha256 is
stored. So a tampered value is refused before the database is asked, a stolen database holds
no usable token, and logout or disabling a user ends the login on every instance at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, Signer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.redaction import install
from gateway.service import now_utc
from gateway.settings import Settings
from intake.workflow import ROLES
from storage import repository
from storage.db import transaction, with_retry
from storage.models import Application, AuditEvent, StaffSession, StaffUser

log = logging.getLogger(__name__)
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
SECRET_KEY_FILE = "secret_key"
MIN_SECRET_KEY_CHARS = 32
# Refresh a web login's idle expiry at most this often (one write per minute, not per page).
TOUCH_EVERY = timedelta(minutes=1)
_HASHER = PasswordHasher()
# Verified when the user name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


class StaffError(ValueError):
    """A user cannot be added or changed; the message says why."""


@dataclass(frozen=True)
class Staff:
    """The logged-in user of one request."""

    user_id: int
    username: str
    role: str
    session_id: int
    csrf_token: str
    kind: str  # web | api
    address: str | None = None


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a login: a token, or why there is none (and when to try again)."""

    token: str | None = None
    staff: Staff | None = None
    refused: str | None = None  # "credentials" | "throttled"
    retry_after: int = 0


# -- the signing key -----------------------------------------------------------------------


def secret_key(settings: Settings) -> bytes:
    """The key from GATEWAY_SECRET_KEY, else from a key file made once in the data folder."""
    if settings.secret_key:
        if len(settings.secret_key) < MIN_SECRET_KEY_CHARS:
            raise StaffError(f"GATEWAY_SECRET_KEY must have at least {MIN_SECRET_KEY_CHARS} "
                             f"characters")
        return settings.secret_key.encode()
    return _key_file(settings.data_dir / SECRET_KEY_FILE)


def _key_file(path: Path) -> bytes:
    """Read the key file, or create it readable by this user only (never overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
        if len(key) < MIN_SECRET_KEY_CHARS:
            raise StaffError(f"{path}: the key is too short; delete the file to make a new one"
                             ) from None
        return key.encode()
    key = secrets.token_urlsafe(48)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    log.info("made a new secret key in %s", path)
    return key.encode()


# -- users -----------------------------------------------------------------------------------


def check_password(password: str) -> None:
    """Refuse a password that is too short or too long."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise StaffError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise StaffError(f"the password may have at most {MAX_PASSWORD_CHARS} characters")


def add_user(sessions: sessionmaker[Session], username: str, role: str, password: str
             ) -> StaffUser:
    """Create a user; StaffError for a bad name, role or password, or a name taken."""
    if not USERNAME.fullmatch(username):
        raise StaffError("a user name is 2-64 characters: lower-case letters, digits, . _ -")
    if role not in ROLES:
        raise StaffError(f"the role must be one of {', '.join(ROLES)}")
    check_password(password)
    password_hash = _HASHER.hash(password)

    def work() -> StaffUser:
        with transaction(sessions) as session:
            if repository.user_by_name(session, username):
                raise StaffError(f"the user {username} exists already")
            user = repository.add_user(session, username, role, password_hash, now_utc())
            repository.add_audit(session, AuditEvent(
                at=now_utc(), username="(command line)", action="user.add",
                detail={"user": username, "role": role}))
            return user
    try:
        return with_retry(work)
    except IntegrityError as error:
        raise StaffError(f"the user {username} exists already") from error


def disable_user(sessions: sessionmaker[Session], username: str) -> None:
    """Disable a user and end all their logins."""
    with transaction(sessions) as session:
        user = repository.user_by_name(session, username)
        if user is None:
            raise StaffError(f"there is no user {username}")
        now = now_utc()
        user.disabled_at = user.disabled_at or now
        repository.revoke_sessions_of(session, user.id, now)
        repository.add_audit(session, AuditEvent(at=now, username="(command line)",
                                                 action="user.disable",
                                                 detail={"user": username}))


def list_users(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    """Every user as data for `gateway users list`."""
    with transaction(sessions) as session:
        return [{"username": u.username, "role": u.role, "created_at": u.created_at.isoformat(),
                 "disabled": u.disabled_at is not None,
                 "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None}
                for u in repository.users(session)]


# -- logins and their tokens -----------------------------------------------------------------


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class Authenticator:
    """Logs users in and recognises their signed tokens."""

    sessions: sessionmaker[Session]
    settings: Settings
    signer: Signer = field(init=False)

    def __post_init__(self) -> None:
        key = secret_key(self.settings)
        install([key.decode()])
        self.signer = Signer(key, salt="gateway.staff-session")

    def login(self, username: str, password: str, address: str, kind: str) -> LoginResult:
        """Check the password under the rate limits; on success a new signed token."""
        # A NUL, which PostgreSQL cannot store, makes the name nobody's: a failed attempt.
        name = username.strip().lower()[:64].replace("\x00", "\ufffd")
        return with_retry(lambda: self._login(name, password[:MAX_PASSWORD_CHARS], address,
                                              kind))

    def _login(self, username: str, password: str, address: str, kind: str) -> LoginResult:
        now = now_utc()
        with transaction(self.sessions) as session:
            wait = self._throttled(session, username, address, now)
            if wait:
                return LoginResult(refused="throttled", retry_after=wait)
            user = repository.user_by_name(session, username)
            verified = _verify(user.password_hash if user else _DUMMY_HASH, password)
            succeeded = bool(user and verified and user.disabled_at is None)
            repository.record_login_attempt(session, username, address, now, succeeded)
            if not user or not succeeded:
                return LoginResult(refused="credentials")
            if _HASHER.check_needs_rehash(user.password_hash):
                user.password_hash = _HASHER.hash(password)
            user.last_login_at = now
            token, staff = self._open(session, user, kind, address, now)
            repository.add_audit(session, AuditEvent(
                at=now, user_id=user.id, username=user.username, action="login",
                address=address, detail={"kind": kind}))
            return LoginResult(token=token, staff=staff)

    def _throttled(self, session: Session, username: str, address: str, now: datetime) -> int:
        """Seconds to wait when too many attempts failed lately for this name or address."""
        window = timedelta(minutes=self.settings.login_window_minutes)
        since = now - window
        by_user = repository.failed_logins_since(session, since, username=username)
        by_address = repository.failed_logins_since(session, since, address=address)
        if by_user >= self.settings.login_max_failures_per_user or \
                by_address >= self.settings.login_max_failures_per_address:
            return int(window.total_seconds())
        return 0

    def _open(self, session: Session, user: StaffUser, kind: str, address: str,
              now: datetime) -> tuple[str, Staff]:
        secret = secrets.token_urlsafe(32)
        lifetime = timedelta(hours=self.settings.api_token_hours if kind == "api"
                             else self.settings.staff_session_hours)
        row = repository.add_staff_session(session, StaffSession(
            token_hash=_token_hash(secret), user_id=user.id, kind=kind,
            csrf_token=secrets.token_urlsafe(32), address=address[:64], created_at=now,
            last_seen_at=now, expires_at=now + lifetime))
        token = self.signer.sign(secret).decode()
        return token, Staff(user.id, user.username, user.role, row.id, row.csrf_token, kind,
                            address)

    def recognise(self, token: str, kind: str) -> Staff | None:
        """The user of a signed token; None when tampered, unknown, expired, revoked or off."""
        try:
            secret = self.signer.unsign(token.encode()).decode()
        except (BadSignature, UnicodeError):
            return None
        return with_retry(lambda: self._recognise(secret, kind))

    def _recognise(self, secret: str, kind: str) -> Staff | None:
        now = now_utc()
        with transaction(self.sessions) as session:
            found = repository.staff_session_by_hash(session, _token_hash(secret))
            if found is None:
                return None
            row, user = found
            if row.kind != kind or row.revoked_at or row.expires_at <= now or user.disabled_at:
                return None
            if kind == "web" and now - row.last_seen_at >= TOUCH_EVERY:
                row.last_seen_at = now
                row.expires_at = now + timedelta(hours=self.settings.staff_session_hours)
            return Staff(user.id, user.username, user.role, row.id, row.csrf_token, kind,
                         row.address)

    def logout(self, staff: Staff) -> None:
        """End one login."""
        def work() -> None:
            with transaction(self.sessions) as session:
                row = session.get_one(StaffSession, staff.session_id)
                row.revoked_at = row.revoked_at or now_utc()
                repository.add_audit(session, audit_event(staff, "logout"))
        with_retry(work)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def audit_event(staff: Staff, action: str, application: Application | None = None,
                **detail: Any) -> AuditEvent:
    """An audit log entry: who (and from where), when, what, on which application."""
    return AuditEvent(at=now_utc(), user_id=staff.user_id, username=staff.username,
                      action=action, address=staff.address,
                      application_id=application.id if application else None,
                      reference=application.reference if application else None,
                      detail=detail)
