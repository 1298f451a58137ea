"""What a file really is, read from its first bytes, whatever its name or sender claims.

Evidence is stored with the type its content shows (a web page saved as `photo.jpg` is
`text/html`, not a photo), and the type decides whether it is accepted
(GATEWAY_MEDIA_ALLOWED_TYPES). The signatures cover what people send as evidence: photos,
documents, voice notes and videos from phones, PDFs and office files. Content that shows no
known signature is `text/plain` when it is readable UTF-8 text, else
`application/octet-stream` (not accepted by default).
"""

from __future__ import annotations

import io
import zipfile

UNKNOWN = "application/octet-stream"
# (offset, magic bytes, media type), checked in order.
SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"{\\rtf", "application/rtf"),
    (0, b"OggS", "audio/ogg"),
    (0, b"#!AMR", "audio/amr"),
    (0, b"fLaC", "audio/flac"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"\x1aE\xdf\xa3", "video/webm"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
)
RIFF_TYPES = {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}
# ISO base media (MP4, 3GP, QuickTime, HEIF): the brand after `ftyp`.
BRANDS = {b"heic": "image/heic", b"heix": "image/heic", b"mif1": "image/heif",
          b"M4A ": "audio/mp4", b"3gp4": "video/3gpp", b"3gp5": "video/3gpp",
          b"3gp6": "video/3gpp", b"3g2a": "video/3gpp2", b"qt  ": "video/quicktime"}
# Office formats are zip files; what is inside says which (OOXML part names, ODF `mimetype`).
OOXML_PARTS = {"word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
               "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation"}
# Old Word, Excel and PowerPoint files are all OLE2 containers: the claim says which.
OLE_TYPES = ("application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint")
HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<script", b"<body", b"<?xml", b"<svg")


def sniff(data: bytes, claimed: str | None = None) -> str:
    """The media type the content shows (the claim only tells apart what bytes cannot)."""
    for offset, magic, media_type in SIGNATURES:
        if data[offset:offset + len(magic)] == magic:
            if media_type == "application/x-ole-storage" and _base(claimed) in OLE_TYPES:
                return _base(claimed)
            return media_type
    if data[:4] == b"RIFF" and data[8:12] in RIFF_TYPES:
        return RIFF_TYPES[data[8:12]]
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        return BRANDS.get(brand, "audio/mp4" if _base(claimed).startswith("audio/")
                          else "video/mp4")
    if data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if data[:2] in (b"\xff\xf1", b"\xff\xf9"):
        return "audio/aac"
    if data[:4] == b"PK\x03\x04":
        return _zip_type(data)
    return _text_type(data)


def _base(media_type: str | None) -> str:
    return (media_type or "").split(";")[0].strip().lower()


def _zip_type(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if names and names[0] == "mimetype":
                declared = archive.read("mimetype").decode("ascii", "replace").strip()
                if declared.startswith("application/vnd.oasis.opendocument."):
                    return declared
            if "[Content_Types].xml" in names:
                for prefix, media_type in OOXML_PARTS.items():
                    if any(name.startswith(prefix) for name in names):
                        return media_type
    except (zipfile.BadZipFile, OSError, ValueError):
        return UNKNOWN
    return "application/zip"


def _text_type(data: bytes) -> str:
    sample = data[:4096]
    start = sample.lstrip().lower()
    if start.startswith(HTML_STARTS):
        return "text/html"
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut at the end of the sample is still text.
        if error.start < len(sample) - 3:
            return UNKNOWN
        text = sample[:error.start].decode("utf-8")
    if any(ord(ch) < 32 and ch not in "\t\n\r\f" for ch in text):
        return UNKNOWN
    return "text/plain"
