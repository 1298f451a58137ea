"""Evidence files on disk, sealed, named by the sha256 of their contents so a sender's file
name never becomes a path and the same file is kept once.

Each file is sealed (AES-256-GCM, storage.crypto) under the current key and bound to its
sha256, so a copied evidence folder shows no photo or document, and two files cannot be
swapped. The type recorded is the one the content shows (gateway.sniffing), not the one the
sender or the file name claims; `accept` also refuses what GATEWAY_MEDIA_ALLOWED_TYPES leaves out.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
import unicodedata
from pathlib import Path

from gateway.providers import media_type_allowed
from gateway.sniffing import sniff
from intake.messages import Attachment
from storage.crypto import Keyring, SealBroken, file_key_id

log = logging.getLogger(__name__)
# A file stored or found again this recently is never deleted by retention: a message that
# carries it may be on its way into the database.
RECENT_SECONDS = 3600


class AttachmentRefused(ValueError):
    """A file that cannot be kept; `kind` says why (`too_large`, `type`), the message how."""

    def __init__(self, message: str, kind: str = "too_large") -> None:
        super().__init__(message)
        self.kind = kind


def safe_filename(name: str) -> str:
    """The last part of a sender's file name, without control characters or path tricks."""
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip(" .")
    return base[:200] or "attachment"


class EvidenceStore:
    """Content-addressed, sealed files under one folder."""

    def __init__(self, root: Path, max_bytes: int, keyring: Keyring,
                 allowed_types: str = "*") -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.keyring = keyring
        self.allowed_types = allowed_types

    def path_of(self, sha256: str) -> Path:
        """Where a stored file lives."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError("not a sha256")
        return self.root / sha256[:2] / sha256

    def accept(self, data: bytes, filename: str, claimed: str | None = None) -> Attachment:
        """Keep a file a person sent as evidence: refused when too large or of a type that is
        not accepted, by what its content shows."""
        self._check_size(len(data))
        media_type = sniff(data, claimed)
        if not media_type_allowed(media_type, self.allowed_types):
            raise AttachmentRefused(f"the content is {media_type}, which is not accepted",
                                    kind="type")
        return self.store(data, filename, claimed)

    def store(self, data: bytes, filename: str, media_type: str | None = None) -> Attachment:
        """Keep the bytes sealed (written atomically) and describe them as an attachment, with
        the type the content shows (`media_type`, the claim, only tells apart what the
        content cannot)."""
        self._check_size(len(data))
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_of(digest)
        if not _touch(target):
            self._write(target, self.keyring.seal_file(data, _context(digest)))
        return Attachment(filename=safe_filename(filename), media_type=sniff(data, media_type),
                          size=len(data), sha256=digest)

    def store_file(self, path: Path) -> Attachment:
        """Keep a file from the local disk (`/attach PATH` in the terminal chat)."""
        self._check_size(path.stat().st_size)
        return self.accept(path.read_bytes(), path.name)

    def read(self, sha256: str) -> bytes:
        """A stored file's contents; SealBroken when it was altered or swapped."""
        data = self.keyring.unseal_file(self.path_of(sha256).read_bytes(), _context(sha256))
        if hashlib.sha256(data).hexdigest() != sha256:
            raise SealBroken(f"evidence {sha256}: the contents do not match the name")
        return data

    def delete(self, sha256: str) -> bool:
        """Remove a stored file unless it was stored or found again lately; whether it went."""
        target = self.path_of(sha256)
        try:
            if time.time() - target.stat().st_mtime < RECENT_SECONDS:
                return False
            target.unlink()
        except FileNotFoundError:
            return False
        return True

    def files(self) -> list[Path]:
        """Every stored file."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob("??/*") if re.fullmatch(r"[0-9a-f]{64}", p.name))

    def key_ids(self) -> dict[str, int]:
        """How many files each key seals ("clear": kept from before encryption)."""
        counts: dict[str, int] = {}
        for path in self.files():
            with path.open("rb") as handle:
                key_id = file_key_id(handle.read(64)) or "clear"
            counts[key_id] = counts.get(key_id, 0) + 1
        return counts

    def reseal_all(self) -> int:
        """Seal again under the current key every file sealed under another key, and seal the
        files kept in clear from before encryption; how many were rewritten. Each keeps its
        times: retention goes by when a file was last stored, not sealed again."""
        current = self.keyring.current_id
        done = 0
        for path in self.files():
            blob = path.read_bytes()
            key_id = file_key_id(blob)
            if key_id == current:
                continue
            data = blob if key_id is None else self.keyring.unseal_file(
                blob, _context(path.name))
            if hashlib.sha256(data).hexdigest() != path.name:
                log.warning("evidence file %s does not match its name; left as it is", path)
                continue
            self._write(path, self.keyring.seal_file(data, _context(path.name)),
                        keep_times=True)
            done += 1
        return done

    def _check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise AttachmentRefused(f"{size} bytes; the limit is {self.max_bytes} bytes")

    @staticmethod
    def _write(target: Path, sealed: bytes, keep_times: bool = False) -> None:
        """Replace `target` atomically; with `keep_times`, the new file has the old one's access
        and modification times (set before it replaces it, so a `_touch` after stays)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as handle:
            handle.write(sealed)
            handle.flush()
            os.fsync(handle.fileno())
        if keep_times:
            old = target.stat()
            os.utime(handle.name, ns=(old.st_atime_ns, old.st_mtime_ns))
        os.replace(handle.name, target)


def _context(sha256: str) -> str:
    return f"evidence:{sha256}"


def _touch(target: Path) -> bool:
    """Mark a stored file as just used (retention keeps it); False when it is not there."""
    try:
        os.utime(target)
    except FileNotFoundError:
        return False
    return True
