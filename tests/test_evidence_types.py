"""Evidence is typed by its content, on every way in: what a file claims to be (its name, the
browser's or the provider's type) never decides what is stored or whether it is accepted."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from sqlalchemy import select

from gateway.app import create_app
from gateway.evidence import AttachmentRefused
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.sniffing import sniff
from gateway.web import RUNTIME
from storage.db import transaction
from storage.models import InboundMessage


def office(*names: str, first: tuple[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        if first:
            archive.writestr(*first)
        for name in names:
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
PDF = b"%PDF-1.7\n1 0 obj\n"
HTML = b"<!DOCTYPE html><html><script>alert(1)</script></html>"


@pytest.mark.parametrize(("content", "claimed", "expected"), [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", None, "image/jpeg"),
    (PNG, "image/jpeg", "image/png"),
    (PDF, "text/plain", "application/pdf"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", None, "image/webp"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00", None, "image/heic"),
    (b"\x00\x00\x00\x18ftypisom\x00\x00", None, "video/mp4"),
    (b"\x00\x00\x00\x18ftypM4A \x00\x00", None, "audio/mp4"),
    (b"OggS\x00\x02" + b"\x00" * 20, "audio/ogg; codecs=opus", "audio/ogg"),
    (b"#!AMR\n", None, "audio/amr"),
    (b"ID3\x04\x00", None, "audio/mpeg"),
    (office("[Content_Types].xml", "word/document.xml"), "application/zip",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    (office("content.xml", first=("mimetype", b"application/vnd.oasis.opendocument.text")),
     None, "application/vnd.oasis.opendocument.text"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 8, "application/msword",
     "application/msword"),
    ("Témoignage du comité de la rivière\n".encode(), "image/png", "text/plain"),
    (HTML, "image/jpeg", "text/html"),
    (b"MZ\x90\x00\x03\x00\x00\x00", "application/pdf", "application/octet-stream"),
])
def test_the_content_decides_the_type(content: bytes, claimed: str | None,
                                      expected: str) -> None:
    assert sniff(content, claimed) == expected


def test_files_given_in_the_terminal_are_typed_and_checked(runtime: Runtime,
                                                           tmp_path: Path) -> None:
    disguised = tmp_path / "notes.txt"
    disguised.write_bytes(PDF)
    assert runtime.evidence.store_file(disguised).media_type == "application/pdf"
    program = tmp_path / "photo.jpg"
    program.write_bytes(b"MZ\x90\x00" + bytes(range(256)))
    with pytest.raises(AttachmentRefused) as refused:
        runtime.evidence.store_file(program)
    assert refused.value.kind == "type" and "application/octet-stream" in str(refused.value)


async def upload(client: Any, content: bytes, name: str, claimed: str) -> Any:
    form = FormData()
    form.add_field("file", content, filename=name, content_type=claimed)
    form.add_field("client_id", "upload-1")
    return await client.post("/chat/api/attachments", data=form)


async def test_the_web_chat_stores_the_sniffed_type_and_refuses_a_disguised_page(
        aiohttp_client: Any, settings: Settings) -> None:
    client = await aiohttp_client(create_app(settings, workers=False))
    await client.get("/chat")
    refused = await upload(client, HTML, "river.jpg", "image/jpeg")
    assert refused.status == 415
    assert "cannot be kept as evidence" in (await refused.json())["error"]
    accepted = await upload(client, PNG, "river", "application/octet-stream")
    assert accepted.status == 200
    runtime: Runtime = client.app[RUNTIME]
    with transaction(runtime.sessions) as session:
        files = [a for row in session.scalars(select(InboundMessage)) for a in row.attachments]
    assert [(f["filename"], f["media_type"]) for f in files] == [("river", "image/png")]
