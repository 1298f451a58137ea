"""Outlook's winmail.dat (TNEF, application/ms-tnef): the files and the body inside it.

Outlook and Exchange send rich-text mail with the attachments (and often the body) packed in
one winmail.dat that only Outlook opens. `unpack` reads it with tnefparse (pure Python): each
attachment with its long file name (PR_ATTACH_LONG_FILENAME, else the 8.3 title) and its type
(PR_ATTACH_MIME_TAG, else the name's), and the body as plain text or HTML. The files then go
through the gateway's sniffing and size limits like any other. What is not read is said, never
dropped silently: an Outlook item attached inside (an embedded message) and a body that is only
compressed RTF are noted, and stay in the raw message a person can download. A winmail.dat that
cannot be read whole (not TNEF, cut short, a checksum that does not match) raises `Corrupt`:
the caller keeps it as it is.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from typing import Any

from tnefparse import properties
from tnefparse.tnef import TNEF

TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
TNEF_NAMES = frozenset({"winmail.dat", "win.dat"})
UNKNOWN_TYPE = "application/octet-stream"
SIGNATURE = b"\x78\x9f\x3e\x22"


class Corrupt(ValueError):
    """A winmail.dat that cannot be unpacked whole."""


@dataclass(frozen=True)
class PackedFile:
    """A file that was inside winmail.dat ("" as name when it had none)."""

    name: str
    media_type: str
    data: bytes


@dataclass
class Unpacked:
    """What winmail.dat held: files, the body (plain text or HTML), and what was not read."""

    files: list[PackedFile] = field(default_factory=list)
    text: str = ""
    html: str = ""
    rtf_only: bool = False
    notes: list[str] = field(default_factory=list)


def is_tnef(media_type: str, filename: str) -> bool:
    """Whether a part is a winmail.dat, by its type or its name."""
    return media_type in TNEF_TYPES or filename.strip().lower() in TNEF_NAMES


def unpack(data: bytes) -> Unpacked:
    """The files and the body of a winmail.dat; Corrupt when it cannot be read whole."""
    if not data.startswith(SIGNATURE):
        raise Corrupt("not TNEF: no TNEF signature")
    try:
        packed = TNEF(data, do_checksum=True)
    except Exception as error:  # noqa: BLE001 - tnefparse raises whatever the bytes lead to
        # The error's type only: its text may quote the contents, and the note is kept in clear.
        raise Corrupt(f"unreadable: {type(error).__name__}") from error
    if not all(item.good_checksum for item in packed.objects):
        raise Corrupt("a checksum does not match: it was cut short or altered")
    unpacked = Unpacked()
    codepage = packed.codepage or "cp1252"
    try:
        for attachment in packed.attachments:
            if hasattr(attachment, "embed"):
                unpacked.notes.append("an Outlook item inside winmail.dat was not unpacked: "
                                      "see the raw message")
                continue
            name = _name(attachment)
            unpacked.files.append(PackedFile(name, _media_type(attachment, name),
                                             bytes(attachment.data or b"")))
        unpacked.text = _text(packed.body, codepage).strip()
        unpacked.html = _text(packed.htmlbody, "utf-8").strip()
    except Exception as error:  # noqa: BLE001 - a property of an unexpected type
        raise Corrupt(f"unreadable: {type(error).__name__}") from error
    unpacked.rtf_only = not (unpacked.text or unpacked.html) and packed.has_body()
    return unpacked


def _name(attachment: Any) -> str:
    """The long file name, else the 8.3 title; "" when neither can be read."""
    for prop in attachment.mapi_attrs:
        if prop.name == properties.MAPI_ATTACH_LONG_FILENAME and isinstance(prop.data, str) \
                and prop.data.strip("\x00").strip():
            return str(prop.data).strip("\x00").strip()
    try:
        return str(attachment.name or "").strip()
    except UnicodeDecodeError:
        return ""


def _media_type(attachment: Any, name: str) -> str:
    """The type Outlook recorded, else the one the name suggests."""
    for prop in attachment.mapi_attrs:
        if prop.name == properties.MAPI_ATTACH_MIME_TAG and isinstance(prop.data, str) \
                and "/" in prop.data:
            return prop.data.strip("\x00").strip().lower()
    return mimetypes.guess_type(name)[0] or UNKNOWN_TYPE


def _text(body: str | bytes | None, charset: str) -> str:
    """A body property as text (tnefparse gives str or bytes, depending on how it came)."""
    if body is None:
        return ""
    if isinstance(body, str):
        return body.replace("\x00", "")
    try:
        return body.decode(charset, errors="replace").replace("\x00", "")
    except LookupError:
        return body.decode("cp1252", errors="replace").replace("\x00", "")
