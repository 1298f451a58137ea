"""The encryption keys: where they come from, and `gateway keys status|rotate|prune|generate`.

Keys come from GATEWAY_ENCRYPTION_KEY (base64; several separated by commas, the first current)
or from a key file (GATEWAY_ENCRYPTION_KEY_FILE; one base64 key a line, the first current).
With neither, a key file is made once in the data folder (mode 0600) and the log warns that a
copy of the data folder then carries the key that opens it (docs/security.md: keep it elsewhere).

Rotation seals every value and every evidence file again under a new current key, a batch of
rows per transaction (each locked, so a turn committed meanwhile is never written back over),
so it can be stopped and run again: each run takes up what is still under an older key. With a
key file, `rotate` writes the new key into the file itself, first after the others, then first,
and after each change waits until every instance must have read the file again (they do every
REFRESH_SECONDS): until then an instance still seals only under, and looks up only by, the keys
it read before, so it would miss the rows already sealed again, and could seal under a key
that `prune` then removes. With the setting, put a new key first in every instance's
setting, restart them, then run `rotate`. When `status` shows nothing left under an old key,
that key is no longer needed (`prune` removes it from the key file, not sooner than that wait
after the file last changed). `rotate` and `prune` hold `<key file>.lock`, so two of them never
run at once (the second would drop the key the first one added).
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, not_, or_, select
from sqlalchemy.orm import Session

from gateway.settings import Settings
from storage.crypto import REFRESH_SECONDS, KeyConfigError, Keyring, key_id_of, new_key, parse_key
from storage.db import transaction, with_retry
from storage.models import Base, Conversation, FieldTranslation, NoticeTranslation
from storage.sealing import sealed_attributes
from storage.translations import text_index

log = logging.getLogger(__name__)
KEY_FILE = "encryption.key"
BATCH = 200
TOKEN_HEAD = len("gw1:") + 8 + 1  # "gw1:<key id>:"
# How long after the key file changed every instance has surely read it again: they do every
# REFRESH_SECONDS, and the margin covers a slow read and clocks that differ a little.
RELOAD_SECONDS = REFRESH_SECONDS + 5.0


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


def rotate(runtime: Any, wait: float = RELOAD_SECONDS) -> Rotation:
    """Seal everything under a new current key, or finish a rotation that was interrupted.
    `wait`: how long a change of the key file takes to reach every instance (0 only where no
    other process uses the keys)."""
    path = key_file_of(runtime.settings)
    with _exclusive(path):
        done = Rotation()
        if not status(runtime).unfinished:
            done.new_key = _add_key(runtime, wait)
        if path is not None:
            _wait_for_instances(path, wait, "seals under the new key and finds by it")
        current = runtime.keyring.current_id
        for model in sealed_models():
            done.values[model.__tablename__] = _reseal(runtime, model, current)
        done.files = runtime.evidence.reseal_all()
    return done


def _add_key(runtime: Any, wait: float) -> str:
    """A new current key in the key file; its id. It goes in after the others first, so that
    every instance opens and finds by it before any seals under it."""
    path = key_file_of(runtime.settings)
    if path is None:
        raise RotationRefused(
            "the keys come from GATEWAY_ENCRYPTION_KEY: put a new key first in it on every "
            "instance (`gateway keys generate` makes one), keep the old one after it, restart "
            "the instances, then run `gateway keys rotate` again")
    keys = _key_lines(path)
    added = new_key()
    write_key_file(path, [*keys, added])
    _wait_for_instances(path, wait, "opens and finds by the new key")
    write_key_file(path, [added, *keys])
    runtime.keyring.refresh(force=True)
    key_id: str = runtime.keyring.current_id
    log.info("new current encryption key %s in %s", key_id, path)
    return key_id


def _key_lines(path: Path) -> list[str]:
    """The keys of a key file as written, the current one first."""
    return [line.strip() for line in path.read_text(encoding="ascii").splitlines()
            if line.strip() and not line.strip().startswith("#")]


def _wait_for_instances(path: Path, wait: float, until: str) -> None:
    """Sleep until `wait` seconds have passed since the key file last changed."""
    left = path.stat().st_mtime + wait - time.time()
    if left <= 0:
        return
    log.info("waiting %d s until every instance %s: instances read %s again every %d s, and "
             "until they have, one still uses only the keys it read before",
             math.ceil(left), until, path, REFRESH_SECONDS)
    time.sleep(left)


@contextmanager
def _exclusive(path: Path | None) -> Iterator[None]:
    """Hold `<key file>.lock` (nothing with GATEWAY_ENCRYPTION_KEY); RotationRefused at once
    when another rotate or prune holds it."""
    if path is None:
        yield
        return
    lock = path.with_name(path.name + ".lock")
    descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RotationRefused(
                f"another `gateway keys rotate` or `gateway keys prune` is running (it holds "
                f"{lock}); run this again when it has finished") from None
        yield
    finally:
        os.close(descriptor)


def _reseal(runtime: Any, model: type[Any], current: str) -> int:
    """Seal again, a batch of locked rows per transaction, the rows with a value under another
    key: a row an instance changes meanwhile is read as it committed it, never written back
    over."""
    columns = _sealed_columns(model)
    prefix = f"gw1:{current}:"
    stale = or_(*(and_(column.is_not(None), not_(column.startswith(prefix)))
                  for column in columns))
    batch = select(model).where(stale).order_by(model.id).limit(BATCH).with_for_update()

    def reseal_batch() -> list[int]:
        with transaction(runtime.sessions) as session:
            rows = list(session.scalars(batch))
            for row in rows:
                _reseal_row(session, runtime.keyring, row)
        return [row.id for row in rows]

    total, last = 0, None
    while resealed := with_retry(reseal_batch):
        if resealed == last:  # sealed again, yet still not under `current`: never loop on it
            raise RotationRefused(f"{model.__tablename__} rows {resealed[:5]} stay sealed "
                                  f"under another key than {current}; was the key file "
                                  "changed by hand during the rotation?")
        total, last = total + len(resealed), resealed
    return total


def _reseal_row(session: Session, keyring: Keyring, row: Any) -> None:
    for name in sealed_attributes(type(row)):
        setattr(row, name, getattr(row, name))
    if isinstance(row, FieldTranslation | NoticeTranslation):
        row.source_sha256 = text_index(keyring, row.source_text)


def prune(runtime: Any, wait: float = RELOAD_SECONDS) -> list[str]:
    """Remove from the key file the keys nothing is sealed under any more; their ids. Refused
    within `wait` seconds of a change of the key file: an instance may still seal under a key
    that looks unused."""
    path = key_file_of(runtime.settings)
    if path is None:
        raise RotationRefused("the keys come from GATEWAY_ENCRYPTION_KEY: remove the old keys "
                              "from that setting yourself (`gateway keys status` lists them)")
    with _exclusive(path):
        age = time.time() - path.stat().st_mtime
        if age < wait:
            raise RotationRefused(
                f"{path} changed {math.floor(age)} s ago, and instances read it again only "
                f"every {REFRESH_SECONDS:.0f} s: one may still seal under a key this would "
                f"remove; run `gateway keys prune` again in {math.ceil(wait - age)} s")
        runtime.keyring.refresh(force=True)
        found = status(runtime)
        keep, removed = [], []
        for text, key_id in zip(_key_lines(path), runtime.keyring.key_ids, strict=True):
            if key_id == found.current or key_id in found.in_use:
                keep.append(text)
            else:
                removed.append(key_id)
        if removed:
            write_key_file(path, keep)
            runtime.keyring.refresh(force=True)
    return removed
