"""The encryption keys: where they come from, and `gateway keys status|rotate|prune|generate`.

Keys come from GATEWAY_ENCRYPTION_KEY (base64; several separated by commas, the first current)
or from a key file (GATEWAY_ENCRYPTION_KEY_FILE; one base64 key a line, the first current).
With neither, a key file is made once in the data folder (mode 0600) and the log warns that a
copy of the data folder then carries the key that opens it (docs/security.md: keep it elsewhere).

Rotation seals every value and every evidence file again under a new current key, a batch of
rows per transaction, so it can be stopped and run again: each run takes up what is still under
an older key. With a key file, `rotate` writes the new key into the file itself (instances that
use the file see it within seconds); with the setting, put a new key first in every instance's
setting, restart them, then run `rotate`. When `status` shows nothing left under an old key,
that key is no longer needed (`prune` removes it from the key file).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, not_, or_, select
from sqlalchemy.orm import Session

from gateway.settings import Settings
from storage.crypto import KeyConfigError, Keyring, key_id_of, new_key, parse_key
from storage.db import transaction
from storage.models import Base, Conversation, FieldTranslation, NoticeTranslation
from storage.sealing import sealed_attributes
from storage.translations import text_index

log = logging.getLogger(__name__)
KEY_FILE = "encryption.key"
BATCH = 200
TOKEN_HEAD = len("gw1:") + 8 + 1  # "gw1:<key id>:"


def key_file_of(settings: Settings) -> Path | None:
    """The key file in use: the setting's, else the one in the data folder; None when the keys
    come from GATEWAY_ENCRYPTION_KEY."""
    if settings.encryption_key.get_secret_value():
        return None
    return settings.encryption_key_file or settings.data_dir / KEY_FILE


def read_key_file(path: Path) -> list[bytes]:
    """The keys of a key file, the current one first."""
    lines = [line.strip() for line in path.read_text(encoding="ascii").splitlines()]
    keys = [parse_key(line, f"{path}, line {number}")
            for number, line in enumerate(lines, 1) if line and not line.startswith("#")]
    if not keys:
        raise KeyConfigError(f"{path}: no key in the file")
    return keys


def open_keyring(settings: Settings) -> Keyring:
    """The keyring the settings describe (a key file made in the data folder if need be)."""
    configured = settings.encryption_key.get_secret_value()
    if configured:
        return Keyring([parse_key(part, f"GATEWAY_ENCRYPTION_KEY, key {number}")
                        for number, part in enumerate(configured.split(","), 1)])
    path = key_file_of(settings)
    assert path is not None
    if settings.encryption_key_file is None and not path.exists():
        _make_key_file(path)
    elif not path.exists():
        raise KeyConfigError(f"GATEWAY_ENCRYPTION_KEY_FILE names {path}, which does not exist")
    return Keyring(read_key_file(path), source=lambda: read_key_file(path))


def _make_key_file(path: Path) -> None:
    """A new key file, readable by this user only (never overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(new_key() + "\n")
    log.warning("made a new encryption key in %s: a copy of the data folder now carries the key "
                "that opens it; keep the key elsewhere (GATEWAY_ENCRYPTION_KEY or "
                "GATEWAY_ENCRYPTION_KEY_FILE, see docs/security.md)", path)


def write_key_file(path: Path, keys: list[str]) -> None:
    """Replace a key file atomically, mode 0600, the current key first."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="ascii",
                                     prefix=".keys-") as handle:
        os.chmod(handle.name, 0o600)
        handle.write("".join(key + "\n" for key in keys))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)


def check_keys(sessions: Any, keyring: Keyring) -> None:
    """Refuse to start with keys that cannot open what the database holds (a key file lost and
    made anew, or the wrong key configured), before anything is written under them."""
    with transaction(sessions) as session:
        token = session.scalar(select(Conversation.sender_sealed).order_by(
            Conversation.id.desc()).limit(1))
    key_id = key_id_of(token) if token else None
    if key_id is not None and key_id not in keyring.key_ids:
        raise KeyConfigError(
            f"the database is sealed under key {key_id}, which is not configured (configured: "
            f"{', '.join(keyring.key_ids)}); configure that key (docs/security.md)")


# -- status ---------------------------------------------------------------------------------


def sealed_models() -> list[type[Any]]:
    """Every model with sealed columns."""
    return sorted((mapper.class_ for mapper in Base.registry.mappers
                   if sealed_attributes(mapper.class_)), key=lambda model: model.__tablename__)


def _sealed_columns(model: type[Any]) -> list[Any]:
    return [getattr(model, attribute.column) for attribute in sealed_attributes(model).values()]


@dataclass
class KeyStatus:
    """Which keys seal what: values by table and key id, files by key id."""

    current: str
    configured: list[str]
    key_file: str | None
    values: dict[str, dict[str, int]] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)

    @property
    def in_use(self) -> set[str]:
        """The key ids something is still sealed under ("clear" for a value or file that is
        not sealed at all)."""
        used = {key for counts in self.values.values() for key in counts}
        return used | set(self.files)

    @property
    def unfinished(self) -> bool:
        """Whether anything is sealed under another key than the current one, or not at all."""
        return bool(self.in_use - {self.current})

    def as_dict(self) -> dict[str, Any]:
        return {"current": self.current, "configured": self.configured,
                "key_file": self.key_file, "values": self.values, "files": self.files,
                "no_longer_needed": [k for k in self.configured
                                     if k != self.current and k not in self.in_use],
                "rotation_unfinished": self.unfinished}


def status(runtime: Any) -> KeyStatus:
    """What every key seals now."""
    keyring: Keyring = runtime.keyring
    path = key_file_of(runtime.settings)
    found = KeyStatus(keyring.current_id, keyring.key_ids, str(path) if path else None)
    with transaction(runtime.sessions) as session:
        for model in sealed_models():
            counts: dict[str, int] = {}
            for column in _sealed_columns(model):
                head = func.substr(column, 1, TOKEN_HEAD)
                for prefix, count in session.execute(select(head, func.count()).where(
                        column.is_not(None)).group_by(head)):
                    key_id = key_id_of(prefix + "x") or "clear"
                    counts[key_id] = counts.get(key_id, 0) + int(count)
            found.values[model.__tablename__] = counts
    found.files = runtime.evidence.key_ids()
    return found


# -- rotation -------------------------------------------------------------------------------


@dataclass
class Rotation:
    """What a run of `rotate` did."""

    new_key: str | None = None
    values: dict[str, int] = field(default_factory=dict)
    files: int = 0


class RotationRefused(Exception):
    """Rotation cannot start as asked; the message says what to do."""


def rotate(runtime: Any) -> Rotation:
    """Seal everything under a new current key, or finish a rotation that was interrupted."""
    keyring: Keyring = runtime.keyring
    done = Rotation()
    if not status(runtime).unfinished:
        done.new_key = _add_key(runtime)
    current = keyring.current_id
    for model in sealed_models():
        done.values[model.__tablename__] = _reseal(runtime, model, current)
    done.files = runtime.evidence.reseal_all()
    return done


def _add_key(runtime: Any) -> str:
    """A new current key at the head of the key file; its id."""
    path = key_file_of(runtime.settings)
    if path is None:
        raise RotationRefused(
            "the keys come from GATEWAY_ENCRYPTION_KEY: put a new key first in it on every "
            "instance (`gateway keys generate` makes one), keep the old one after it, restart "
            "the instances, then run `gateway keys rotate` again")
    keys = [line.strip() for line in path.read_text(encoding="ascii").splitlines()
            if line.strip() and not line.strip().startswith("#")]
    write_key_file(path, [new_key(), *keys])
    runtime.keyring.refresh(force=True)
    key_id: str = runtime.keyring.current_id
    log.info("new current encryption key %s in %s", key_id, path)
    return key_id


def _reseal(runtime: Any, model: type[Any], current: str) -> int:
    """Seal again, a batch per transaction, the rows with a value under another key."""
    columns = _sealed_columns(model)
    prefix = f"gw1:{current}:"
    stale = or_(*(and_(column.is_not(None), not_(column.startswith(prefix)))
                  for column in columns))
    total = 0
    while True:
        with transaction(runtime.sessions) as session:
            rows = list(session.scalars(select(model).where(stale).order_by(model.id)
                                        .limit(BATCH)))
            for row in rows:
                _reseal_row(session, runtime.keyring, row)
        total += len(rows)
        if len(rows) < BATCH:
            return total


def _reseal_row(session: Session, keyring: Keyring, row: Any) -> None:
    for name in sealed_attributes(type(row)):
        setattr(row, name, getattr(row, name))
    if isinstance(row, FieldTranslation | NoticeTranslation):
        row.source_sha256 = text_index(keyring, row.source_text)


def prune(runtime: Any) -> list[str]:
    """Remove from the key file the keys nothing is sealed under any more; their ids."""
    path = key_file_of(runtime.settings)
    if path is None:
        raise RotationRefused("the keys come from GATEWAY_ENCRYPTION_KEY: remove the old keys "
                              "from that setting yourself (`gateway keys status` lists them)")
    runtime.keyring.refresh(force=True)
    found = status(runtime)
    masters = [line.strip() for line in path.read_text(encoding="ascii").splitlines()
               if line.strip() and not line.strip().startswith("#")]
    keep, removed = [], []
    for text, key_id in zip(masters, runtime.keyring.key_ids, strict=True):
        if key_id == found.current or key_id in found.in_use:
            keep.append(text)
        else:
            removed.append(key_id)
    if removed:
        write_key_file(path, keep)
        runtime.keyring.refresh(force=True)
    return removed
