"""The web chat through aiohttp's test client: what a browser gets (tests/test_secretariat.py
has the secretariat's pages)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from gateway.app import create_app
from gateway.queue import application_detail
from gateway.runtime import Runtime
from gateway.service import now_utc
from gateway.settings import Settings
from gateway.web import RUNTIME
from intake.messages import OutboundMessage
from storage import repository
from storage.db import transaction
from storage.models import Conversation, OutboxMessage
from tests.filings import ENGLISH_FILING

EVIDENCE_STEP = ENGLISH_FILING.index("Photos of the river; twelve neighbours saw the pipe.")
PHOTO = b"\x89PNG\r\n\x1a\n" + b"river photo " * 100


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    """A browser's view of a fresh gateway (no background workers)."""
    settings = Settings(data_dir=tmp_path, max_attachment_bytes=64 * 1024)
    return await aiohttp_client(create_app(settings, workers=False))


def runtime_of(client: TestClient) -> Runtime:
    return client.app[RUNTIME]


async def say(client: TestClient, text: str, client_id: str | None = None,
              **headers: str) -> dict[str, Any]:
    """Send a message the way chat.js does; the JSON answer."""
    response = await client.post("/chat/api/messages", headers=headers,
                                 json={"text": text, "client_id": client_id or str(uuid.uuid4())})
    assert response.status == 200, await response.text()
    return await response.json()


async def upload(client: TestClient, data: bytes, filename: str) -> Any:
    form = FormData()
    form.add_field("file", data, filename=filename, content_type="image/png")
    form.add_field("client_id", str(uuid.uuid4()))
    return await client.post("/chat/api/attachments", data=form)


def last_question(answer: dict[str, Any]) -> str | None:
    return answer["messages"][-1].get("awaiting")


def only_application(client: TestClient) -> dict[str, Any]:
    runtime = runtime_of(client)
    with transaction(runtime.sessions) as session:
        rows = repository.applications(session)
        assert len(rows) == 1
        return application_detail(session, runtime.engine, rows[0])


async def test_first_visit_greets_and_asks_the_language(client: TestClient) -> None:
    response = await client.get("/chat")
    page = await response.text()
    assert response.status == 200
    assert "Welcome" in page and "Which language do you want to use?" in page
    assert 'name="choice" value="en">English</button>' in page
    assert 'name="choice" value="zh">中文 (Chinese)</button>' in page
    assert 'aria-live="polite"' in page and '<label for="message"' in page
    cookie = response.cookies["gateway_chat"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    assert response.headers["Cache-Control"] == "no-store"


async def test_cookie_is_secure_behind_https(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, public_url="https://intake.example.org")
    client = await aiohttp_client(create_app(settings, workers=False))
    response = await client.get("/chat")
    assert response.cookies["gateway_chat"]["secure"]


async def test_browser_asking_for_chinese_gets_a_chinese_page(client: TestClient) -> None:
    page = await (await client.get("/chat", headers={"Accept-Language": "zh-CN,zh;q=0.9"})).text()
    assert '<html lang="zh" dir="ltr">' in page and "您的消息" in page


async def test_empty_message_gets_the_engines_answer(client: TestClient) -> None:
    await client.get("/chat")
    answer = await say(client, "")
    assert answer["messages"][0]["text"] == "Your message was empty."
    assert last_question(answer) == "language"


async def test_right_to_left_messages_render_right_to_left(client: TestClient) -> None:
    await client.get("/chat")
    runtime = runtime_of(client)
    with transaction(runtime.sessions) as session:
        conversation = session.scalars(select(Conversation)).one()
        conversation.language = "ar"
        repository.add_outbox(session, conversation, [OutboundMessage("مرحبا", direction="rtl")],
                              now_utc())
    page = await (await client.get("/chat")).text()
    assert '<html lang="ar" dir="rtl">' in page
    assert '<li class="msg bot" dir="rtl" id="latest"' in page


async def test_reload_shows_the_transcript_without_greeting_again(client: TestClient) -> None:
    await client.get("/chat")
    page = await (await client.get("/chat")).text()
    assert page.count("Which language do you want to use?") == 1


async def test_returning_later_is_welcomed_back_where_they_stopped(client: TestClient) -> None:
    await client.get("/chat")
    await say(client, "en")
    runtime = runtime_of(client)
    with transaction(runtime.sessions) as session:
        for conversation in session.scalars(select(Conversation)):
            conversation.updated_at = now_utc() - timedelta(days=2)
    page = await (await client.get("/chat")).text()
    assert "Welcome back" in page
    assert page.count("Are you applying for yourself") == 2


async def test_json_post_answers_and_advances(client: TestClient) -> None:
    await client.get("/chat")
    answer = await say(client, "en")
    assert last_question(answer) == "applicant.on_behalf"
    assert [c["id"] for c in answer["messages"][-1]["choices"]] == ["self", "agent"]
    assert all(isinstance(m["id"], int) and m["direction"] == "ltr" for m in answer["messages"])
    assert answer["lang"] == "en" and answer["duplicate"] is False
    assert last_question(await say(client, "self")) == "applicant.category"


async def test_choosing_chinese_switches_the_page_language(client: TestClient) -> None:
    await client.get("/chat")
    answer = await say(client, "zh")
    assert answer["lang"] == "zh" and answer["page_text"]["send"] == "发送"
    page = await (await client.get("/chat")).text()
    assert '<html lang="zh" dir="ltr">' in page and "您的消息" in page


async def test_writing_in_another_language_at_the_menu_answers_and_shows_the_page_in_it(
        client: TestClient) -> None:
    await client.get("/chat")
    answer = await say(client, "Здравствуйте, я хочу подать жалобу на рудник")
    assert answer["lang"] == "ru" and last_question(answer) == "language"
    assert "Пожалуйста" in answer["messages"][0]["text"]
    page = await (await client.get("/chat")).text()
    assert '<html lang="ru" dir="ltr">' in page
    assert last_question(await say(client, "да")) == "applicant.on_behalf"


async def test_duplicate_client_id_is_not_processed_twice(client: TestClient) -> None:
    await client.get("/chat")
    client_id = str(uuid.uuid4())
    first = await say(client, "en", client_id)
    again = await say(client, "en", client_id)
    assert last_question(first) == "applicant.on_behalf"
    assert again["messages"] == [] and again["duplicate"] is True
    assert last_question(await say(client, "self")) == "applicant.category"


async def test_form_post_without_javascript_redirects_and_shows_both_sides(
        client: TestClient) -> None:
    await client.get("/chat")
    pressed = await client.post("/chat", data={"choice": "en", "client_id": str(uuid.uuid4())},
                                allow_redirects=False)
    assert pressed.status == 303 and pressed.headers["Location"] == "/chat#latest"
    typed = await client.post("/chat", data={"text": "myself"}, allow_redirects=False)
    assert typed.status == 303
    page = await (await client.get("/chat")).text()
    assert '<p class="text">English</p>' in page          # the button's label, not "en"
    assert '<p class="text">myself</p>' in page           # typed text as typed
    assert "Who is the applicant?" in page
    assert 'value="individual">An individual</button>' in page
    assert 'value="en">English</button>' not in page      # old buttons are gone
    assert page.rindex("Who is the applicant?") > page.rindex("myself")


async def test_attachment_upload_is_evidence_in_the_final_application(
        client: TestClient) -> None:
    await client.get("/chat")
    for line in ENGLISH_FILING[1:EVIDENCE_STEP]:
        await say(client, line)
    uploaded = await upload(client, PHOTO, "river.png")
    answer = await uploaded.json()
    assert uploaded.status == 200, answer
    assert answer["attachment"]["filename"] == "river.png"
    assert "river.png" in answer["messages"][0]["text"]
    for line in ENGLISH_FILING[EVIDENCE_STEP:]:
        receipt = await say(client, line)
    reference = receipt["messages"][-1]["reference"]
    application = only_application(client)
    assert application["reference"] == reference
    sha256 = hashlib.sha256(PHOTO).hexdigest()
    assert {"kind": "attachment", "filename": "river.png", "media_type": "image/png",
            "size": len(PHOTO), "sha256": sha256} in application["fields"]["evidence"]
    assert sha256 in [item["sha256"] for item in application["evidence"]]
    assert all(application["completeness"].values())
    assert runtime_of(client).evidence.read(sha256) == PHOTO


async def test_file_sent_with_the_page_form_is_kept_as_evidence(client: TestClient) -> None:
    await client.get("/chat")
    form = FormData()
    form.add_field("text", "")
    form.add_field("file", PHOTO, filename="well.png", content_type="image/png")
    response = await client.post("/chat", data=form, allow_redirects=False)
    assert response.status == 303
    page = await (await client.get("/chat")).text()
    assert "📎 well.png" in page and "File received: well.png" in page


async def test_oversize_text_is_refused_with_413(client: TestClient) -> None:
    await client.get("/chat")
    response = await client.post("/chat/api/messages", json={"text": "x" * 300_000})
    assert response.status == 413
    assert "too long" in (await response.json())["error"]


async def test_half_an_emoji_becomes_a_replacement_and_the_words_are_kept(
        client: TestClient) -> None:
    await client.get("/chat")
    await say(client, "\ud83d the pipe is leaking")  # JSON.stringify of a broken emoji
    page = await (await client.get("/chat")).text()
    assert "\ufffd the pipe is leaking" in page


async def test_a_form_not_in_utf8_is_refused_with_400(client: TestClient) -> None:
    await client.get("/chat")
    for content_type in ("application/x-www-form-urlencoded",
                         "application/x-www-form-urlencoded; charset=no-such-charset"):
        response = await client.post("/chat", data=b"text=\xff\xfe the pipe",
                                     headers={"Content-Type": content_type},
                                     allow_redirects=False)
        assert response.status == 400 and "could not be read" in await response.text()


async def test_oversize_file_is_refused_clearly_and_nothing_is_stored(
        client: TestClient) -> None:
    await client.get("/chat")
    response = await upload(client, b"x" * (65 * 1024), "big.pdf")
    assert response.status == 413
    assert "The file is too large (the limit is 0.0625 MB)" in (await response.json())["error"]
    form = FormData()
    form.add_field("file", b"x" * (65 * 1024), filename="big.pdf")
    page = await client.post("/chat", data=form, allow_redirects=False)
    assert page.status == 413 and "The file is too large" in await page.text()
    assert not (runtime_of(client).settings.evidence_dir).exists()


async def test_cross_origin_post_is_refused(client: TestClient) -> None:
    await client.get("/chat")
    evil = {"Origin": "https://evil.example"}
    response = await client.post("/chat/api/messages", json={"text": "en"}, headers=evil)
    assert response.status == 403
    form = await client.post("/chat", data={"text": "en"}, headers=evil,
                             allow_redirects=False)
    assert form.status == 403
    referer = await client.post("/chat", data={"text": "en"}, allow_redirects=False,
                                headers={"Referer": "https://evil.example/chat"})
    assert referer.status == 403
    own = f"http://{client.server.host}:{client.server.port}"
    assert last_question(await say(client, "en", Origin=own)) == "applicant.on_behalf"


async def test_later_messages_reach_the_open_page(client: TestClient) -> None:
    await client.get("/chat")
    answer = await say(client, "en")
    seen = answer["messages"][-1]["id"]
    runtime = runtime_of(client)
    with transaction(runtime.sessions) as session:
        conversation = session.scalars(select(Conversation)).one()
        repository.add_outbox(session, conversation,
                              [OutboundMessage("The secretariat asks for a photo.")], now_utc())
    response = await client.get(f"/chat/api/messages?after={seen}")
    later = (await response.json())["messages"]
    assert [m["text"] for m in later] == ["The secretariat asks for a photo."]
    with transaction(runtime.sessions) as session:
        assert session.get_one(OutboxMessage, later[0]["id"]).state == "sent"


async def test_polling_after_an_id_no_message_can_have_is_refused_with_400(
        client: TestClient) -> None:
    await client.get("/chat")
    for after in ("99999999999999999999", "2147483648", "-1"):
        response = await client.get(f"/chat/api/messages?after={after}")
        assert response.status == 400, after
        assert "could not be read" in (await response.json())["error"]


async def test_healthz_is_ok(client: TestClient) -> None:
    response = await client.get("/healthz")
    assert response.status == 200 and (await response.json())["status"] == "ok"
