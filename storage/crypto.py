"""Encryption at rest: AES-256-GCM for values and files, keyed HMAC blind indexes for lookups.

A sealed value is text: `gw1:<key id>:<base64url of nonce + ciphertext + tag>`. The nonce is
96 random bits, new for every value. The associated data is the header and a context naming
where the value belongs (`conversations.sender#17`: table, column, row), so a value copied to
another row or column, or altered in any way, is refused (`SealBroken`), never returned. The key
id in every value says which key opens it, so keys can be rotated value by value.

A file is sealed the same way in binary: `GWE1`, the 4-byte key id, the nonce, then the
ciphertext and tag; its context is its sha256, so two files cannot be swapped.

A blind index is an HMAC-SHA256 of a value (a channel and a sender, a provider's message id):
equal values give equal indexes, so the database can find a conversation by its sender without
holding the sender, while nobody without the key can test a guess (a phone number) against it.

Each configured key is 32 random bytes; the encryption key, the index key and the key id are
derived from it with HKDF, so one secret serves all three. The first key of a keyring is the
current one: it seals new values; the others only open what they sealed (rotation). A keyring
read from a key file reads it again before it seals, indexes or looks up once REFRESH_SECONDS
have passed since it last did, so another process's rotation reaches it within that time;
`pinned` holds one set of keys for the values and indexes of one row, which must agree.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TOKEN_PREFIX = "gw1:"
FILE_MAGIC = b"GWE1"
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_BYTES = 4
FILE_HEADER_BYTES = len(FILE_MAGIC) + KEY_ID_BYTES + NONCE_BYTES
# How often a keyring with a source (a key file) looks whether the file changed: a key written
# into the file is in use everywhere this long after (gateway.keys waits for it).
REFRESH_SECONDS = 10.0


class SealBroken(Exception):
    """A sealed value or file that cannot be opened: altered, moved, truncated, or sealed
    under a key this keyring does not hold. Never answered with a guess or the raw bytes."""


class UnknownKey(SealBroken):
    """The value names a key id that is not configured (a key removed too early)."""


class KeyConfigError(ValueError):
    """A configured key is not 32 bytes of base64; the message says which."""


def parse_key(text: str, where: str) -> bytes:
    """One key from its base64 form (standard or URL-safe alphabet)."""
    cleaned = text.strip()
    try:
        raw = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4),
                               altchars=b"-_" if ("-" in cleaned or "_" in cleaned) else None,
                               validate=True)
    except (binascii.Error, ValueError) as error:
        raise KeyConfigError(f"{where}: not base64 ({error})") from None
    if len(raw) != KEY_BYTES:
        raise KeyConfigError(f"{where}: a key is {KEY_BYTES} bytes, this one is {len(raw)}")
    return raw


def new_key() -> str:
    """A fresh random key in its base64 form."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                info=b"mcm-gateway/" + purpose).derive(master)


@dataclass(frozen=True)
class DataKey:
    """One configured key and what is derived from it."""

    key_id: str  # 8 hex digits
    cipher: AESGCM
    index_key: bytes

    @classmethod
    def from_master(cls, master: bytes) -> DataKey:
        key_id = hashlib.sha256(b"mcm-gateway/key-id\x00" + master).hexdigest()[:2 * KEY_ID_BYTES]
        return cls(key_id, AESGCM(_derive(master, b"aes-256-gcm")),
                   _derive(master, b"blind-index"))


class Keyring:
    """The configured keys: the first seals, all of them open; `source` re-reads them (a key
    file another process rotated) when a value names an unknown key, and every few seconds."""

    def __init__(self, masters: Sequence[bytes],
                 source: Callable[[], Sequence[bytes]] | None = None) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        self._keys: list[DataKey] = []
        self._load(masters)

    def _load(self, masters: Sequence[bytes]) -> None:
        if not masters:
            raise KeyConfigError("no encryption key is configured")
        keys = [DataKey.from_master(master) for master in masters]
        if len({key.key_id for key in keys}) != len(keys):
            raise KeyConfigError("the same key is configured twice")
        self._keys = keys

    def refresh(self, force: bool = False) -> None:
        """Re-read the keys from the source when it is time (or now, with `force`)."""
        if self._source is None:
            return
        with self._lock:
            now = time.monotonic()
            if not force and now - self._checked < REFRESH_SECONDS:
                return
            self._checked = now
            self._load(self._source())

    @property
    def current_id(self) -> str:
        """The id of the key that seals new values."""
        self.refresh()
        return self._keys[0].key_id

    @property
    def key_ids(self) -> list[str]:
        """Every configured key id, the current one first."""
        return [key.key_id for key in self._keys]

    def _key(self, key_id: str) -> DataKey:
        for key in self._keys:
            if key.key_id == key_id:
                return key
        self.refresh(force=True)
        for key in self._keys:
            if key.key_id == key_id:
                return key
        raise UnknownKey(f"sealed under key {key_id}, which is not configured "
                         f"(configured: {', '.join(self.key_ids)})")

    # -- values -------------------------------------------------------------------------------

    def seal(self, plaintext: bytes, context: str) -> str:
        """The value sealed under the current key, bound to `context`."""
        self.refresh()
        key = self._keys[0]
        header = f"{TOKEN_PREFIX}{key.key_id}:"
        nonce = os.urandom(NONCE_BYTES)
        sealed = key.cipher.encrypt(nonce, plaintext, (header + context).encode("utf-8"))
        return header + base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def unseal(self, token: str, context: str) -> bytes:
        """The value, if `token` was sealed for `context` by a configured key."""
        key_id = key_id_of(token)
        if key_id is None:
            raise SealBroken(f"{context}: not a sealed value")
        header = f"{TOKEN_PREFIX}{key_id}:"
        body = token[len(header):]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise SealBroken(f"{context}: the sealed value is damaged") from None
        key = self._key(key_id)
        try:
            return key.cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                      (header + context).encode("utf-8"))
        except (InvalidTag, ValueError):
            raise SealBroken(f"{context}: the sealed value was altered or belongs elsewhere"
                             ) from None

    # -- files --------------------------------------------------------------------------------

    def seal_file(self, data: bytes, context: str) -> bytes:
        """File contents sealed under the current key, bound to `context`."""
        self.refresh()
        key = self._keys[0]
        header = FILE_MAGIC + bytes.fromhex(key.key_id) + os.urandom(NONCE_BYTES)
        return header + key.cipher.encrypt(header[-NONCE_BYTES:], data,
                                           header + context.encode("utf-8"))

    def unseal_file(self, blob: bytes, context: str) -> bytes:
        """The file's contents, if it was sealed for `context` by a configured key."""
        key_id = file_key_id(blob)
        if key_id is None:
            raise SealBroken(f"{context}: the file is not sealed (`gateway keys rotate` seals "
                             f"files kept from before encryption)")
        header = blob[:FILE_HEADER_BYTES]
        try:
            return self._key(key_id).cipher.decrypt(header[-NONCE_BYTES:],
                                                    blob[FILE_HEADER_BYTES:],
                                                    header + context.encode("utf-8"))
        except (InvalidTag, ValueError):
            raise SealBroken(f"{context}: the sealed file was altered or belongs elsewhere"
                             ) from None

    # -- blind indexes ------------------------------------------------------------------------

    def index(self, purpose: str, value: str) -> str:
        """The blind index of a value under the current key."""
        self.refresh()
        return _index(self._keys[0], purpose, value)

    def indexes(self, purpose: str, value: str) -> list[str]:
        """The value's blind index under every configured key, the current one first (lookups
        during a rotation)."""
        self.refresh()
        return [_index(key, purpose, value) for key in self._keys]

    def pinned(self) -> Keyring:
        """These keys as they are now, never re-read: what one row is sealed and indexed with,
        so that its values and its blind indexes are all under the same current key (a row
        indexed under a key it is not sealed under looks done to a rotation, which then lets
        that key be pruned while the row still depends on it)."""
        self.refresh()
        pinned = copy.copy(self)
        pinned._source = None
        return pinned


def _index(key: DataKey, purpose: str, value: str) -> str:
    message = f"{purpose}\x00{value}".encode()
    return hmac.new(key.index_key, message, hashlib.sha256).hexdigest()


def key_id_of(token: str) -> str | None:
    """The key id a sealed value names, or None when it is not a sealed value."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    key_id, colon, _ = token[len(TOKEN_PREFIX):].partition(":")
    if not colon or len(key_id) != 2 * KEY_ID_BYTES:
        return None
    return key_id


def file_key_id(blob: bytes) -> str | None:
    """The key id a sealed file names, or None when the bytes are not a sealed file."""
    if len(blob) < FILE_HEADER_BYTES or not blob.startswith(FILE_MAGIC):
        return None
    return blob[len(FILE_MAGIC):len(FILE_MAGIC) + KEY_ID_BYTES].hex()
