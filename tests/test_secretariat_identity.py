"""What the secretariat's staff can learn about an applicant whose confidentiality request
protects their identity, and about any web-chat applicant, on SQLite and on PostgreSQL:
every version of an answer is masked, file names are masked in downloads too, a failed message
of such an applicant is masked on "Messages that need a person", and nobody is shown the
web chat's cookie."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from intake.messages import InboundMessage
from tests.filings import ENGLISH_FILING
from tests.test_secretariat import (
    CONFIDENTIAL_FILING,
    client,
    file_application,
    log_in,
    runtime_of,
    token_for,
)

__all__ = ["client"]

PHOTO = b"\x89PNG\r\n\x1a\n" + b"river photo " * 100
EVIDENCE_LINE = "Photos of the river; twelve neighbours saw the pipe."


def _fail_next_message(runtime: Any, monkeypatch: pytest.MonkeyPatch, sender: str,
                       text: str) -> None:
    """The applicant writes again and processing that message fails (an engine bug whose
    error quotes what the applicant wrote)."""
    def broken(state: Any, message: InboundMessage, *args: Any) -> Any:
        raise RuntimeError(f"could not read {message.text!r}")
    with monkeypatch.context() as patched:
        patched.setattr(runtime.intake.engine, "handle", broken)
        runtime.intake.handle(InboundMessage(channel="whatsapp", sender=sender,
                                             provider_message_id=str(uuid.uuid4()), text=text))


async def test_an_earlier_answer_and_any_case_of_a_name_are_masked_in_the_transcript(
        client: TestClient) -> None:
    mentioned = CONFIDENTIAL_FILING.index("Children who bathe in it have rashes.")
    lines = [*CONFIDENTIAL_FILING]
    lines[mentioned] = "JANE MWAMBA's children who bathe in it have rashes."
    lines[-2:-2] = ["edit applicant.name", "Jane K. Mwamba"]   # corrected at the summary
    reference, _ = file_application(runtime_of(client), lines)

    officer = await token_for(client, "olivia")
    detail = await (await client.get(f"/api/applications/{reference}", headers=officer)).json()
    shown = json.dumps(detail, ensure_ascii=False).casefold()
    assert "mwamba" not in shown
    assert "[confidential]'s children" in shown
    transcript = [line["text"] for line in detail["transcript"]]
    assert transcript.count("[confidential]") >= 2             # both names as typed
    assert any("Please check your application" in text for text in transcript)
    await log_in(client, "olivia")
    page = await (await client.get(f"/secretariat/applications/{reference}")).text()
    assert "mwamba" not in page.casefold()


async def test_an_evidence_file_downloads_under_the_name_the_page_shows(
        client: TestClient) -> None:
    runtime = runtime_of(client)
    photo = runtime.evidence.accept(PHOTO, "Jane Mwamba at the river.png", "image/png")
    sender = "243970000002"
    at = CONFIDENTIAL_FILING.index(EVIDENCE_LINE)
    for line in CONFIDENTIAL_FILING[:at]:
        runtime.intake.handle(InboundMessage(channel="whatsapp", sender=sender,
                                             provider_message_id=str(uuid.uuid4()), text=line))
    runtime.intake.handle(InboundMessage(channel="whatsapp", sender=sender,
                                         provider_message_id=str(uuid.uuid4()),
                                         attachments=(photo,)))
    reference, _ = file_application(runtime, CONFIDENTIAL_FILING[at:], channel="whatsapp",
                                    sender=sender)

    await log_in(client, "olivia")
    page = await (await client.get(f"/secretariat/applications/{reference}")).text()
    link = re.search(r'href="([^"]+/evidence/[0-9a-f]{64})"[^>]*>([^<]*)<', page)
    assert link and link.group(2) == "[confidential] at the river.png"
    download = await client.get(link.group(1))
    assert download.status == 200 and await download.read() == PHOTO
    assert "Jane" not in download.headers["Content-Disposition"]
    assert "at%20the%20river.png" in download.headers["Content-Disposition"]


async def test_a_failed_message_of_an_applicant_under_a_request_is_masked_for_staff(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = runtime_of(client)
    protected = "243970000001"
    file_application(runtime, CONFIDENTIAL_FILING, channel="whatsapp", sender=protected)
    _fail_next_message(runtime, monkeypatch, protected, "The guards came to my house again")
    drafting = "243970000003"       # asked for confidentiality, not yet submitted
    for line in CONFIDENTIAL_FILING[:CONFIDENTIAL_FILING.index(EVIDENCE_LINE) + 7]:
        runtime.intake.handle(InboundMessage(channel="whatsapp", sender=drafting,
                                             provider_message_id=str(uuid.uuid4()), text=line))
    _fail_next_message(runtime, monkeypatch, drafting, "They know where the meeting is")
    ordinary = "243970000004"
    file_application(runtime, ENGLISH_FILING, channel="whatsapp", sender=ordinary)
    _fail_next_message(runtime, monkeypatch, ordinary, "Any news about the river?")

    await log_in(client, "olivia")
    page = await (await client.get("/secretariat/messages")).text()
    for hidden in (protected, "guards came", drafting, "meeting is"):
        assert hidden not in page
    assert page.count("processing failed: [confidential]") == 2
    assert ordinary in page and "Any news about the river?" in page
    assert "processing failed: RuntimeError: could not read" in page


async def test_nobody_is_shown_the_cookie_that_opens_a_web_chat(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = runtime_of(client)
    reference, cookie = file_application(runtime)
    with monkeypatch.context() as patched:
        patched.setattr(runtime.intake.engine, "handle", lambda *a, **k: 1 / 0)
        runtime.intake.handle(InboundMessage(channel="web", sender=cookie,
                                             provider_message_id=str(uuid.uuid4()), text="hi"))

    for user in ("olivia", "ada"):
        staff = await token_for(client, user)
        detail = await (await client.get(f"/api/applications/{reference}",
                                          headers=staff)).json()
        assert detail["sender"] == "web chat"
        listed = await (await client.get("/api/applications", headers=staff)).text()
        assert cookie not in json.dumps(detail) and cookie not in listed
        client.session.cookie_jar.clear()
        await log_in(client, user)
        for path in (f"/secretariat/applications/{reference}", "/secretariat/messages",
                     "/secretariat/queue.csv", "/secretariat/queue.json"):
            assert cookie not in await (await client.get(path)).text(), path
        assert "web chat" in await (await client.get("/secretariat/messages")).text()


async def test_a_message_id_out_of_range_is_not_found(client: TestClient) -> None:
    await log_in(client, "olivia")
    for path in ("/secretariat/messages/99999999999999999999/raw",
                 "/secretariat/messages/2147483648/raw"):
        response = await client.get(path)
        assert response.status == 404, path
        assert "no such message" in await response.text()
