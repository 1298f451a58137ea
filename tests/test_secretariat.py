"""The secretariat's pages and JSON API as officers use them, on SQLite and on PostgreSQL.

Applications are filed through the intake pipeline like any applicant's; users log in through
the login form or POST /api/session. Each test states what an officer or applicant would notice.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import secrets
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from gateway import decisions
from gateway.app import create_app
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.staff import Authenticator, Staff, add_user, disable_user
from gateway.web import RUNTIME
from gateway.web.api import MAX_BODY_BYTES
from intake import workflow
from intake.messages import InboundMessage
from storage import repository
from storage.db import transaction
from storage.models import Application, ApplicationAction, AuditEvent, OutboxMessage
from tests.filings import CHINESE_FILING, ENGLISH_FILING

PASSWORD = "correct horse battery"
USERS = {"olivia": "officer", "sam": "supervisor", "ada": "admin"}
IDENTITY = ("Jane Mwamba", "Kasulo, Kolwezi, Lualaba, DR Congo", "+243 970 000 001")
_NO_CONFIDENTIALITY = ENGLISH_FILING.index("done", ENGLISH_FILING.index(
    "Photos of the river; twelve neighbours saw the pipe.")) + 1
CONFIDENTIAL_FILING = [
    *ENGLISH_FILING[:_NO_CONFIDENTIALITY],
    "1",                                            # yes, a confidentiality request
    "My name, my address and my phone number",
    "1",                                            # kept from the respondent
    "Until the mediation starts",
    "The mine's guards threatened people who complained",
    *ENGLISH_FILING[_NO_CONFIDENTIALITY + 1:],
]


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient:
    """The gateway on each database, with the three users and tight login limits."""
    tuned = settings.model_copy(update={"login_max_failures_per_user": 3,
                                        "login_max_failures_per_address": 6})
    app = create_app(tuned, workers=False)
    test_client = await aiohttp_client(app)
    for name, role in USERS.items():
        add_user(runtime_of(test_client).sessions, name, role, PASSWORD)
    return test_client


def runtime_of(client: TestClient) -> Runtime:
    return client.app[RUNTIME]


def file_application(runtime: Runtime, lines: list[str] = ENGLISH_FILING, channel: str = "web",
                     sender: str | None = None) -> tuple[str, str]:
    """File through the pipeline like an applicant; (reference, sender)."""
    sender = sender or secrets.token_urlsafe(32)
    delivered: Any = []
    for line in lines:
        delivered = runtime.intake.handle(InboundMessage(
            channel=channel, sender=sender, provider_message_id=str(uuid.uuid4()), text=line))
    reference = delivered[-1].message.reference
    assert reference, delivered[-1].message.text
    return reference, sender


def csrf_in(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


async def log_in(client: TestClient, username: str, password: str = PASSWORD,
                 next_page: str = "/secretariat") -> Any:
    page = await (await client.get("/secretariat/login")).text()
    return await client.post("/secretariat/login", allow_redirects=False, data={
        "csrf": csrf_in(page), "username": username, "password": password, "next": next_page})


async def token_for(client: TestClient, username: str) -> dict[str, str]:
    response = await client.post("/api/session", json={"username": username,
                                                       "password": PASSWORD})
    assert response.status == 200, await response.text()
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def act(client: TestClient, headers: dict[str, str], reference: str, action: str,
              **body: Any) -> Any:
    return await client.post(f"/api/applications/{reference}/actions", headers=headers,
                             json={"action": action, **body})


async def page_action(client: TestClient, reference: str, **form: str) -> Any:
    page = await (await client.get(f"/secretariat/applications/{reference}")).text()
    version = re.search(r'name="version" value="(\d+)"', page)
    return await client.post(f"/secretariat/applications/{reference}/actions",
                             allow_redirects=False,
                             data={"csrf": csrf_in(page),
                                   "version": version.group(1) if version else "", **form})


def status_of(runtime: Runtime, reference: str) -> str:
    with transaction(runtime.sessions) as session:
        application = repository.application_by_reference(session, reference)
        assert application
        return application.status


def notices(runtime: Runtime, reference: str) -> list[OutboxMessage]:
    with transaction(runtime.sessions) as session:
        rows = session.scalars(select(OutboxMessage).join(
            Application, Application.id == OutboxMessage.application_id).where(
            Application.reference == reference).order_by(OutboxMessage.id))
        return [row for row in rows if "notice" in row.body]


def audit(runtime: Runtime) -> list[AuditEvent]:
    with transaction(runtime.sessions) as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


# -- access -----------------------------------------------------------------------------------


async def test_anonymous_callers_are_sent_to_login_or_get_401(client: TestClient) -> None:
    reference, _ = file_application(runtime_of(client))
    for path in ("/secretariat", "/secretariat/queue.csv", f"/secretariat/applications/{reference}",
                 "/secretariat/statistics"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].startswith(
            "/secretariat/login?next="), path
    for method, path in (("GET", "/api/applications"), ("GET", f"/api/applications/{reference}"),
                         ("POST", f"/api/applications/{reference}/actions"),
                         ("GET", "/api/statistics")):
        response = await client.request(method, path, json={"action": "accept"})
        assert response.status == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "POST /api/session" in (await response.json())["error"]
    assert status_of(runtime_of(client), reference) == "submitted"


async def test_login_sets_a_signed_httponly_strict_cookie_and_returns_to_the_page(
        client: TestClient) -> None:
    reference, _ = file_application(runtime_of(client))
    response = await log_in(client, "olivia", next_page=f"/secretariat/applications/{reference}")
    assert response.status == 303
    assert response.headers["Location"] == f"/secretariat/applications/{reference}"
    cookie = response.cookies["gateway_staff"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert cookie["path"] == "/secretariat" and "." in cookie.value
    page = await client.get("/secretariat")
    assert page.status == 200 and reference in await page.text()
    assert "olivia" in await page.text()
    assert [e.action for e in audit(runtime_of(client))][-2:] == ["login", "identity.view"]


async def test_login_refuses_other_sites_and_offsite_redirects(client: TestClient) -> None:
    response = await log_in(client, "olivia", next_page="https://evil.example/secretariat")
    assert response.headers["Location"] == "/secretariat"
    await client.post("/secretariat/logout", data={"csrf": "x"})
    no_nonce = await client.post("/secretariat/login", allow_redirects=False, data={
        "username": "olivia", "password": PASSWORD})
    assert no_nonce.status == 403 and "expired" in await no_nonce.text()


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=bogus"], ids=["not-utf8", "unknown-charset"])
async def test_a_login_form_that_cannot_be_read_is_refused_with_400(
        client: TestClient, content_type: str) -> None:
    response = await client.post("/secretariat/login", data=b"username=\xff\xfe&password=x",
                                 headers={"Content-Type": content_type})
    assert response.status == 400
    assert "could not be read" in await response.text()


async def test_a_mistyped_password_still_returns_to_the_page_asked_for(
        client: TestClient) -> None:
    reference, _ = file_application(runtime_of(client))
    asked = f"/secretariat/applications/{reference}"
    page = await (await client.get(asked)).text()               # sent to the login form
    form = {"csrf": csrf_in(page), "username": "olivia", "password": "not the password",
            "next": asked}
    wrong = await client.post("/secretariat/login", data=form)
    assert wrong.status == 401
    again = await wrong.text()
    kept = re.search(r'name="next" value="([^"]*)"', again)
    assert kept and kept.group(1) == asked
    right = await client.post("/secretariat/login", allow_redirects=False, data=form | {
        "csrf": csrf_in(again), "password": PASSWORD, "next": kept.group(1)})
    assert right.status == 303 and right.headers["Location"] == asked


async def test_a_line_break_in_the_page_asked_for_does_not_break_the_login(
        client: TestClient) -> None:
    page = await (await client.get("/secretariat/login?next=/secretariat%0d%0aX-Evil:%201"
                                   )).text()
    assert re.search(r'name="next" value="/secretariat"', page)
    response = await log_in(client, "olivia", next_page="/secretariat\r\nX-Evil: 1")
    assert response.status == 303 and response.headers["Location"] == "/secretariat"
    assert "X-Evil" not in response.headers
    assert (await client.get("/secretariat")).status == 200


async def test_wrong_passwords_are_throttled_per_user_even_after_a_restart(
        client: TestClient, aiohttp_client: Any) -> None:
    for _ in range(3):
        wrong = await log_in(client, "olivia", "not the password!")
        assert wrong.status == 401 and "wrong" in await wrong.text()
    blocked = await log_in(client, "olivia")
    assert blocked.status == 429 and "Too many failed attempts" in await blocked.text()
    assert int(blocked.headers["Retry-After"]) > 0
    api = await client.post("/api/session", json={"username": "olivia", "password": PASSWORD})
    assert api.status == 429 and api.headers["Retry-After"]
    restarted = await aiohttp_client(create_app(runtime_of(client).settings, workers=False))
    assert (await log_in(restarted, "olivia")).status == 429
    assert (await log_in(restarted, "sam")).status == 303


async def test_wrong_passwords_are_throttled_per_address(client: TestClient) -> None:
    for name in ("olivia", "sam", "ada", "nobody", "olivia", "sam"):
        await client.post("/api/session", json={"username": name, "password": "wrong wrong"})
    response = await client.post("/api/session", json={"username": "ada",
                                                       "password": PASSWORD})
    assert response.status == 429


async def test_tampered_cookies_and_tokens_are_refused(client: TestClient) -> None:
    await log_in(client, "olivia")
    cookie = next(c for c in client.session.cookie_jar if c.key == "gateway_staff")
    value = cookie.value
    client.session.cookie_jar.clear()
    for tampered in (value[:-2] + ("AA" if not value.endswith("AA") else "BB"),
                     value.split(".")[0], "x" * 300):
        response = await client.get("/secretariat", allow_redirects=False,
                                    headers={"Cookie": f"gateway_staff={tampered}"})
        assert response.status == 303
    assert (await client.get("/secretariat", allow_redirects=False,
                             headers={"Cookie": f"gateway_staff={value}"})).status == 200
    headers = await token_for(client, "sam")
    forged = {"Authorization": headers["Authorization"][:-3] + "xyz"}
    unsigned = {"Authorization": "Bearer " + headers["Authorization"].split()[1].split(".")[0]}
    for bad in (forged, unsigned, {"Authorization": "Bearer "}, {"Authorization": "Basic eDp5"}):
        assert (await client.get("/api/applications", headers=bad)).status == 401
    assert (await client.get("/api/applications", headers=headers)).status == 200


async def test_logout_and_disabling_end_logins_everywhere(client: TestClient) -> None:
    await log_in(client, "olivia")
    page = await (await client.get("/secretariat")).text()
    await client.post("/secretariat/logout", data={"csrf": csrf_in(page)})
    assert (await client.get("/secretariat", allow_redirects=False)).status == 303
    headers = await token_for(client, "sam")
    assert (await client.delete("/api/session", headers=headers)).status == 204
    assert (await client.get("/api/applications", headers=headers)).status == 401
    headers = await token_for(client, "ada")
    disable_user(runtime_of(client).sessions, "ada")
    assert (await client.get("/api/applications", headers=headers)).status == 401
    assert (await log_in(client, "ada")).status == 401


async def test_forms_without_the_csrf_token_change_nothing(client: TestClient) -> None:
    runtime = runtime_of(client)
    reference, _ = file_application(runtime)
    await log_in(client, "olivia")
    path = f"/secretariat/applications/{reference}/actions"
    for form in ({"action": "start_review"}, {"action": "start_review", "csrf": "forged"}):
        response = await client.post(path, data=form)
        assert response.status == 403 and "expired" in await response.text()
    page = await (await client.get(f"/secretariat/applications/{reference}")).text()
    cross = await client.post(path, data={"action": "start_review", "csrf": csrf_in(page)},
                              headers={"Origin": "https://evil.example"})
    assert cross.status == 403
    assert status_of(runtime, reference) == "submitted"
    assert notices(runtime, reference) == []


# -- the workflow ---------------------------------------------------------------------------


async def test_supplement_round_trip_through_the_web_chat(client: TestClient) -> None:
    runtime = runtime_of(client)
    reference, sender = file_application(runtime)
    client.session.cookie_jar.update_cookies({"gateway_chat": sender})
    seen = (await (await client.get("/chat/api/messages?after=0")).json())["messages"]
    last_seen = max(m["id"] for m in seen) if seen else 0
    await log_in(client, "olivia")
    assert (await page_action(client, reference, action="start_review")).status == 303
    response = await page_action(
        client, reference, action="request_supplement", message_language="en",
        message="Please send the date when the pipe was built.",
        note="Check with the provincial mining office first.")
    assert response.status == 303 and "done=request_supplement" in response.headers["Location"]
    assert status_of(runtime, reference) == "supplement_requested"

    polled = await (await client.get(f"/chat/api/messages?after={last_seen}")).json()
    texts = [m["text"] for m in polled["messages"]]
    assert any(f"more information about your application {reference}" in t
               and "Please send the date when the pipe was built." in t for t in texts)
    assert not any("provincial mining office" in t for t in texts)
    answer = await client.post("/chat/api/messages", json={
        "text": "The pipe was built in January 2026.", "client_id": str(uuid.uuid4())})
    replies = [m["text"] for m in (await answer.json())["messages"]]
    assert any("again under formal review" in t for t in replies)
    assert status_of(runtime, reference) == "under_review"

    page = await (await client.get(f"/secretariat/applications/{reference}")).text()
    assert "The pipe was built in January 2026." in page
    assert "The applicant answered" in page and "Internal note" in page
    status = await client.post("/chat/api/messages", json={"text": "status",
                                                           "client_id": str(uuid.uuid4())})
    assert "under formal review" in (await status.json())["messages"][0]["text"]
    chat_page = await (await client.get("/chat")).text()
    assert "provincial mining office" not in chat_page
    assert (await page_action(client, reference, action="accept")).status == 303
    assert status_of(runtime, reference) == "accepted"
    kinds = [n.body["notice"]["action"] for n in notices(runtime, reference)]
    assert kinds == ["start_review", "request_supplement", "accept"]


async def test_every_transition_and_role_through_the_api(client: TestClient) -> None:
    runtime = runtime_of(client)
    officer, supervisor = await token_for(client, "olivia"), await token_for(client, "sam")
    reference, _ = file_application(runtime, CONFIDENTIAL_FILING)

    wrong = await act(client, officer, reference, "accept")
    assert wrong.status == 409 and "submitted" in (await wrong.json())["error"]
    forbidden = await act(client, officer, reference, "grant_confidentiality")
    assert forbidden.status == 403 and (await forbidden.json())["code"] == "forbidden"
    empty = await act(client, officer, reference, "reject")
    assert empty.status == 400 and "message" in (await empty.json())["error"]
    unknown = await act(client, officer, reference, "delete")
    assert unknown.status == 400
    assert (await act(client, officer, reference, "start_review")).status == 200
    again = await act(client, officer, reference, "start_review")
    assert again.status == 409
    asked = await act(client, officer, reference, "request_supplement",
                      message="请补充照片的拍摄日期。", message_language="zh")
    body = await asked.json()
    assert asked.status == 200 and body["status"] == "supplement_requested"
    assert (await act(client, officer, reference, "accept")).status == 409
    refused = await act(client, supervisor, reference, "refuse_confidentiality",
                        message="Your name is needed to contact the respondent.")
    assert refused.status == 200
    assert (await act(client, supervisor, reference, "grant_confidentiality")).status == 409
    assert (await act(client, officer, reference, "note", note="Called the applicant.")
            ).status == 200
    rejected = await act(client, officer, reference, "reject",
                         message="The matter is outside the mechanism's scope.")
    assert (await rejected.json())["status"] == "rejected"
    for action in ("withdraw", "accept", "start_review", "request_supplement"):
        assert (await act(client, officer, reference, action, message="x")).status == 409

    second, _ = file_application(runtime)
    admin = await token_for(client, "ada")
    assert (await act(client, admin, second, "withdraw")).status == 200
    assert (await act(client, admin, second, "reject", message="x")).status == 409
    no_request = await act(client, admin, second, "grant_confidentiality")
    assert no_request.status == 409 and "no pending" in (await no_request.json())["error"]
    missing = await act(client, admin, "MCM-2026-ZZZZZZ", "accept")
    assert missing.status == 404

    with transaction(runtime.sessions) as session:
        history = [a.action for a in session.scalars(select(ApplicationAction).order_by(
            ApplicationAction.id))]
    assert history == ["start_review", "request_supplement", "refuse_confidentiality", "note",
                       "reject", "withdraw"]
    chinese_notice = notices(runtime, reference)[1].body
    assert chinese_notice["notice"]["original"] == {"language": "zh",
                                                    "text": "请补充照片的拍摄日期。"}
    assert chinese_notice["notice"]["translation"] == {"language": "en", "text": None,
                                                       "status": "pending"}
    assert "请补充照片的拍摄日期。" in chinese_notice["text"]
    assert "A translation into your language will follow." in chinese_notice["text"]
    decisions_logged = [e for e in audit(runtime) if e.action.startswith("decision.")]
    assert len(decisions_logged) == 6
    assert {e.username for e in decisions_logged} == {"olivia", "sam", "ada"}


async def test_a_question_on_an_earlier_application_reaches_the_chat_after_new(
        client: TestClient) -> None:
    runtime = runtime_of(client)
    reference, sender = file_application(runtime)
    client.session.cookie_jar.update_cookies({"gateway_chat": sender})
    started = await client.post("/chat/api/messages", json={"text": "new",
                                                            "client_id": str(uuid.uuid4())})
    last_seen = max(m["id"] for m in (await started.json())["messages"])
    await log_in(client, "olivia")
    await page_action(client, reference, action="start_review")
    await page_action(client, reference, action="request_supplement", message_language="en",
                      message="Please send the date when the pipe was built.")
    polled = await (await client.get(f"/chat/api/messages?after={last_seen}")).json()
    assert any("Please send the date when the pipe was built." in m["text"]
               for m in polled["messages"])
    # The new draft is not begun and the question is the last thing they were sent: their
    # message answers it, and the new draft waits where it was.
    answer = await client.post("/chat/api/messages", json={
        "text": "The pipe was built in January 2026.", "client_id": str(uuid.uuid4())})
    assert any("again under formal review" in m["text"]
               for m in (await answer.json())["messages"])
    assert status_of(runtime, reference) == "under_review"
    page = await (await client.get(f"/secretariat/applications/{reference}")).text()
    assert "The pipe was built in January 2026." in page
    language = await client.post("/chat/api/messages", json={"text": "1",
                                                             "client_id": str(uuid.uuid4())})
    assert status_of(runtime, reference) == "under_review"
    assert not any("again under formal review" in m["text"]
                   for m in (await language.json())["messages"])


async def test_a_person_who_began_a_new_draft_goes_on_with_it_after_a_question(
        client: TestClient) -> None:
    runtime = runtime_of(client)
    reference, sender = file_application(runtime)
    client.session.cookie_jar.update_cookies({"gateway_chat": sender})
    for line in ("new", "1"):  # a new application, its language chosen
        await client.post("/chat/api/messages", json={"text": line,
                                                      "client_id": str(uuid.uuid4())})
    await log_in(client, "olivia")
    await page_action(client, reference, action="start_review")
    await page_action(client, reference, action="request_supplement", message_language="en",
                      message="Please send the date when the pipe was built.")
    await client.post("/chat/api/messages", json={"text": "Myself",
                                                  "client_id": str(uuid.uuid4())})
    assert status_of(runtime, reference) == "supplement_requested"  # it went to the draft


async def test_notice_in_the_applicants_language_needs_no_translation(
        client: TestClient) -> None:
    runtime = runtime_of(client)
    reference, _ = file_application(runtime, CHINESE_FILING)
    officer = await token_for(client, "olivia")
    await act(client, officer, reference, "request_supplement",
              message="请提供村民证言的书面材料。", message_language="zh")
    body = notices(runtime, reference)[0].body
    assert body["text"].startswith(f"秘书处请您为申请 {reference} 补充以下材料或信息：")
    assert body["notice"]["translation"]["status"] == "not_needed"
    assert "翻译" not in body["text"]


async def test_two_officers_deciding_at_once_one_wins_nothing_half_applied(
        client: TestClient) -> None:
    runtime = runtime_of(client)
    reference, _ = file_application(runtime)
    auth = Authenticator(runtime.sessions, runtime.settings)
    officer = auth.login("olivia", PASSWORD, "127.0.0.1", "api").staff
    supervisor = auth.login("sam", PASSWORD, "127.0.0.1", "api").staff
    assert officer and supervisor
    decisions.decide(runtime, officer, reference, workflow.Request("start_review"))
    version = runtime_version(runtime, reference)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def decide(staff: Staff, request: workflow.Request) -> None:
        barrier.wait()
        try:
            results.append(decisions.decide(runtime, staff, reference, request, version).status)
        except workflow.NotAllowed as refused:
            results.append(f"refused {refused.kind}")

    threads = [threading.Thread(target=decide, args=(officer, workflow.Request("accept"))),
               threading.Thread(target=decide, args=(supervisor, workflow.Request(
                   "reject", message="Not in scope.")))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    final = status_of(runtime, reference)
    assert final in ("accepted", "rejected")
    assert sorted(results) == sorted([final, "refused conflict"])
    kinds = [n.body["notice"]["action"] for n in notices(runtime, reference)]
    assert kinds == ["start_review", "accept" if final == "accepted" else "reject"]
    stale = await act(client, await token_for(client, "ada"), reference, "note", note="late",
                      version=version)
    assert stale.status == 409 and "changed" in (await stale.json())["error"]


def runtime_version(runtime: Runtime, reference: str) -> int:
    with transaction(runtime.sessions) as session:
        application = repository.application_by_reference(session, reference)
        assert application
        return application.version


async def test_refused_action_on_the_page_keeps_what_was_typed(client: TestClient) -> None:
    reference, _ = file_application(runtime_of(client))
    await log_in(client, "olivia")
    response = await page_action(client, reference, action="accept",
                                 message="Welcome <b>aboard</b>", note="n")
    page = await response.text()
    assert response.status == 409 and "cannot accept now" in page
    assert "Welcome &lt;b&gt;aboard&lt;/b&gt;" in page


# -- confidentiality and identity -------------------------------------------------------------


async def test_identity_under_a_confidentiality_request_is_masked_and_reveal_is_logged(
        client: TestClient) -> None:
    runtime = runtime_of(client)
    reference, sender = file_application(runtime, CONFIDENTIAL_FILING)
    officer = await token_for(client, "olivia")
    listed = await (await client.get("/api/applications", headers=officer)).json()
    assert listed["applications"][0]["applicant"] == "[confidential]"
    detail = await (await client.get(f"/api/applications/{reference}", headers=officer)).json()
    assert detail["identity_masked"] and detail["fields"]["applicant.name"] == "[confidential]"
    assert detail["confidentiality_pending"] and detail["confidentiality_working_days_left"]
    assert not any(value in str(detail) for value in (*IDENTITY, sender))
    assert (await client.post(f"/api/applications/{reference}/reveal", headers=officer)
            ).status == 403

    await log_in(client, "olivia")
    page = await (await client.get(f"/secretariat/applications/{reference}")).text()
    assert not any(value in page for value in IDENTITY)
    assert "Identity data is masked" in page and "Only a supervisor" in page
    exported = await (await client.get("/secretariat/queue.csv")).text()
    assert not any(value in exported for value in IDENTITY)
    assert (await client.get("/secretariat/queue.csv?reveal=yes")).status == 403
    assert not [e for e in audit(runtime) if e.action.startswith("identity.")]

    supervisor = await token_for(client, "sam")
    revealed = await (await client.post(f"/api/applications/{reference}/reveal",
                                        headers=supervisor)).json()
    assert revealed["fields"]["applicant.name"] == "Jane Mwamba"
    event = audit(runtime)[-1]
    assert (event.action, event.username, event.reference) == ("identity.reveal", "sam",
                                                               reference)
    granted = await act(client, supervisor, reference, "grant_confidentiality")
    assert granted.status == 200
    assert (await (await client.get(f"/api/applications/{reference}", headers=supervisor)
                   ).json())["fields"]["applicant.name"] == "[confidential]"


async def test_every_view_of_identity_data_is_in_the_audit_log(client: TestClient) -> None:
    runtime = runtime_of(client)
    reference, _ = file_application(runtime)
    officer = await token_for(client, "olivia")
    detail = await (await client.get(f"/api/applications/{reference}", headers=officer)).json()
    assert detail["fields"]["applicant.name"] == "Jane Mwamba"
    await log_in(client, "olivia")
    assert "Jane Mwamba" in await (await client.get("/secretariat")).text()
    exported = await (await client.get("/secretariat/queue.json")).json()
    assert exported[0]["applicant.name"] == "Jane Mwamba"
    views = [(e.action, e.username, e.detail.get("where"), e.reference) for e in audit(runtime)
             if e.action.startswith("identity.")]
    assert views[0] == ("identity.view", "olivia", "application", reference)
    assert views[1][0] == "identity.view" and views[1][2] == "queue"
    assert views[2][0] == "identity.export"


async def test_exports_for_a_named_audience_leave_out_what_is_under_request(
        client: TestClient) -> None:
    runtime = runtime_of(client)
    protected, _ = file_application(runtime, CONFIDENTIAL_FILING)
    open_one, _ = file_application(runtime)
    await log_in(client, "olivia")
    for audience in ("respondent", "public"):
        rows = await (await client.get(f"/secretariat/queue.json?audience={audience}")).json()
        assert all("applicant.name" not in row for row in rows)
        assert not any(value in str(rows) for value in IDENTITY)
    respondent = await (await client.get("/secretariat/queue.json?audience=respondent")).json()
    assert [row["reference"] for row in respondent] == [open_one]
    public = await (await client.get("/secretariat/queue.json?audience=public")).json()
    assert sorted(row["reference"] for row in public) == sorted([protected, open_one])
    assert (await client.get("/secretariat/queue.json?audience=press")).status == 400


async def test_audit_log_is_append_only(client: TestClient) -> None:
    runtime = runtime_of(client)
    await token_for(client, "olivia")
    for statement in ("UPDATE audit_log SET username = 'nobody'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), \
                transaction(runtime.sessions) as session:
            session.execute(text(statement))
    assert [e.username for e in audit(runtime)][-1] == "olivia"


# -- what is shown, and how ------------------------------------------------------------------


async def test_queue_filters_sort_and_flags_overdue_in_words(client: TestClient) -> None:
    runtime = runtime_of(client)
    english, _ = file_application(runtime)
    chinese, _ = file_application(runtime, CHINESE_FILING)
    with transaction(runtime.sessions) as session:
        application = repository.application_by_reference(session, chinese)
        assert application
        application.formal_review_deadline = application.submitted_at.date().replace(
            year=application.submitted_at.year - 1)
    await log_in(client, "olivia")
    page = await (await client.get("/secretariat")).text()
    assert page.index(chinese) < page.index(english)
    assert "<strong>OVERDUE</strong> by" in page and 'class="overdue"' in page
    cases = {"language=zh": [chinese], "country=DR+Congo": [english], "country=China": [chinese],
             "mineral=tin": [chinese], "mineral=cobalt": [english],
             "issue_type=environmental": [english, chinese][::-1], "overdue=yes": [chinese],
             "confidentiality=yes": [], "status=submitted": [chinese, english],
             "channel=web&sort=-deadline": [english, chinese]}
    headers = await token_for(client, "olivia")
    for query, expected in cases.items():
        listed = await (await client.get(f"/api/applications?{query}", headers=headers)).json()
        assert [e["reference"] for e in listed["applications"]] == expected, query
    entry = listed["applications"][0]
    assert {"reference", "status", "completeness", "formal_review_deadline",
            "formal_review_working_days_left", "confidentiality_decision_deadline"} <= set(entry)
    filtered = await (await client.get("/secretariat?mineral=tin&overdue=yes")).text()
    assert chinese in filtered and english not in filtered and "(filtered)" in filtered
    bad = await client.get("/api/applications?status=lost", headers=headers)
    assert bad.status == 400 and "status must be one of" in (await bad.json())["error"]
    assert (await client.get("/secretariat?mineral=kryptonite")).status == 400


async def test_application_page_shows_fields_side_by_side_and_the_transcript(
        client: TestClient) -> None:
    runtime = runtime_of(client)
    reference, _ = file_application(runtime, CHINESE_FILING)
    await log_in(client, "olivia")
    page = await (await client.get(f"/secretariat/applications/{reference}")).text()
    assert '<th scope="col" lang="zh">中文</th>' in page
    assert "冶炼厂的废水流进了村里的水田。" in page
    assert "translation pending" in page
    assert "Smelting or refining" in page and "冶炼或精炼" in page
    assert "Conversation" in page and "您的申请已经收到" in page
    assert "Formal review by" in page and "working days left" in page


async def test_script_laden_text_is_escaped_everywhere_and_csv_defused(
        client: TestClient) -> None:
    runtime = runtime_of(client)
    hostile = ENGLISH_FILING.copy()
    hostile[hostile.index("Jane Mwamba")] = "=HYPERLINK(\"http://evil.example\",\"x\")"
    hostile[hostile.index("Kolwezi Mining SARL")] = "<script>alert('respondent')</script>"
    reference, sender = file_application(runtime, hostile)
    await log_in(client, "olivia")
    page = await (await client.get(f"/secretariat/applications/{reference}")).text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(" in page
    queue_page = await (await client.get("/secretariat")).text()
    assert "<script>alert" not in queue_page
    exported = await (await client.get("/secretariat/queue.csv")).text()
    row = next(csv.DictReader(io.StringIO(exported.lstrip("\ufeff"))))
    assert row["applicant.name"].startswith("'=HYPERLINK(")
    await page_action(client, reference, action="request_supplement",
                      message="<img src=x onerror=alert(1)> +SUM(1)")
    client.session.cookie_jar.update_cookies({"gateway_chat": sender})
    chat = await (await client.get("/chat")).text()
    assert "<img src=x" not in chat and "&lt;img src=x onerror=alert(1)&gt;" in chat


async def test_huge_action_text_is_refused_clearly(client: TestClient) -> None:
    reference, _ = file_application(runtime_of(client))
    headers = await token_for(client, "olivia")
    response = await act(client, headers, reference, "request_supplement", message="x" * 30_000)
    assert response.status == 400 and "too long" in (await response.json())["error"]
    huge = await client.post(f"/api/applications/{reference}/actions", headers=headers,
                             data=b"{" + b" " * MAX_BODY_BYTES + b"}")
    assert huge.status == 413 and "too large" in (await huge.json())["error"]
    assert status_of(runtime_of(client), reference) == "submitted"


async def test_the_longest_message_and_note_the_rules_allow_pass_the_api(
        client: TestClient) -> None:
    reference, _ = file_application(runtime_of(client))
    headers = await token_for(client, "olivia")
    wave = "\N{WATER WAVE}"  # outside the BMP: JSON-escaped as a pair, 12 bytes
    response = await act(client, headers, reference, "request_supplement",
                         message=wave * workflow.MAX_MESSAGE_CHARS,
                         note=wave * workflow.MAX_NOTE_CHARS)
    assert response.status == 200, await response.text()
    assert status_of(runtime_of(client), reference) == "supplement_requested"


async def post_in_two_packets(client: TestClient, path: str, body: bytes,
                              headers: dict[str, str]) -> tuple[str, str]:
    """POST over a raw connection, the body's second half 0.3 s after the first, as a slow
    network delivers it; (status line, body of the answer)."""
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}"
                 f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                 f"Connection: close\r\n\r\n".encode() + body[:len(body) // 2])
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.write(body[len(body) // 2:])
    await writer.drain()
    answer = (await reader.read()).decode()
    writer.close()
    status_line, _, rest = answer.partition("\r\n")
    return status_line, rest.partition("\r\n\r\n")[2]


async def test_an_action_arriving_in_two_packets_is_read_whole(client: TestClient) -> None:
    reference, _ = file_application(runtime_of(client))
    headers = await token_for(client, "olivia")
    body = json.dumps({"action": "request_supplement",
                       "message": "Please send the photos of the pipe. " * 60}).encode()
    status_line, answer = await post_in_two_packets(
        client, f"/api/applications/{reference}/actions", body, headers)
    assert " 200 " in status_line, answer
    assert status_of(runtime_of(client), reference) == "supplement_requested"


async def test_half_an_emoji_in_the_api_is_refused_clearly_and_changes_nothing(
        client: TestClient) -> None:
    reference, _ = file_application(runtime_of(client))
    headers = await token_for(client, "olivia")
    response = await act(client, headers, reference, "request_supplement",
                         message="Please send the photos \ud83d of the pipe.")
    assert response.status == 400 and "lone surrogate" in (await response.json())["error"]
    assert status_of(runtime_of(client), reference) == "submitted"
    login = await client.post("/api/session", json={"username": "olivia\ud800",
                                                    "password": PASSWORD})
    assert login.status == 400 and "lone surrogate" in (await login.json())["error"]


async def test_a_nul_in_an_address_or_a_user_name_is_refused_clearly(
        client: TestClient) -> None:
    reference, _ = file_application(runtime_of(client))
    wrong = await log_in(client, "olivia\u0000")
    assert wrong.status == 401 and "wrong" in await wrong.text()
    api = await client.post("/api/session", json={"username": "olivia\u0000",
                                                  "password": PASSWORD})
    assert api.status == 401 and (await api.json())["code"] == "bad_credentials"
    headers = await token_for(client, "olivia")
    for path in (f"/api/applications/{reference}%00", "/api/applications?channel=web%00",
                 "/api/applications?language=%00"):
        response = await client.get(path, headers=headers)
        assert response.status == 400 and "not text" in (await response.json())["error"], path
    await log_in(client, "olivia")
    for path in (f"/secretariat/applications/{reference}%00", "/secretariat?channel=%00"):
        response = await client.get(path)
        assert response.status == 400 and "not text" in await response.text(), path


async def test_evidence_downloads_as_an_attachment_never_rendered(client: TestClient) -> None:
    runtime = runtime_of(client)
    stored = runtime.evidence.store(b"<html><script>alert(1)</script></html>", "report<1>.html",
                                    "text/html")
    sender = secrets.token_urlsafe(32)
    at = ENGLISH_FILING.index("Photos of the river; twelve neighbours saw the pipe.")
    for index, line in enumerate(ENGLISH_FILING[:at]):
        runtime.intake.handle(InboundMessage(channel="web", sender=sender,
                                             provider_message_id=f"{sender}-{index}", text=line))
    runtime.intake.handle(InboundMessage(channel="web", sender=sender,
                                         provider_message_id=str(uuid.uuid4()),
                                         attachments=(stored,)))
    reference, _ = file_application(runtime, ENGLISH_FILING[at:], sender=sender)
    await log_in(client, "olivia")
    response = await client.get(
        f"/secretariat/applications/{reference}/evidence/{stored.sha256}")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="report_1_')
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert await response.read() == b"<html><script>alert(1)</script></html>"
    assert audit(runtime)[-1].action == "evidence.download"
    other = "0" * 64
    assert (await client.get(f"/secretariat/applications/{reference}/evidence/{other}")
            ).status == 404
    assert (await client.get(f"/secretariat/applications/{reference}/evidence/..%2Fx")
            ).status == 404


async def test_statistics_for_the_published_reports(client: TestClient) -> None:
    runtime = runtime_of(client)
    reference, _ = file_application(runtime)
    file_application(runtime, CHINESE_FILING)
    headers = await token_for(client, "olivia")
    await act(client, headers, reference, "start_review")
    await act(client, headers, reference, "accept")
    figures = await (await client.get("/api/statistics", headers=headers)).json()
    assert figures["total"] == 2
    assert figures["by_status"] == {"accepted": 1, "submitted": 1}
    assert figures["by_language"] == {"en": 1, "zh": 1}
    assert figures["by_country"] == {"China": 1, "DR Congo": 1}
    assert figures["by_issue_type"] == {"environmental": 2}
    assert figures["median_days_to_decide"] == 0.0 and figures["decided"] == 1
    assert figures["median_days_to_complete"] is not None
    await log_in(client, "olivia")
    page = await (await client.get("/secretariat/statistics")).text()
    assert "By country" in page and "DR Congo" in page and "Jane" not in page


async def test_audit_page_is_for_supervisors(client: TestClient) -> None:
    await log_in(client, "olivia")
    assert (await client.get("/secretariat/audit")).status == 403
    client.session.cookie_jar.clear()
    await log_in(client, "sam")
    page = await (await client.get("/secretariat/audit")).text()
    assert "Audit log" in page and "login" in page


async def test_openapi_describes_every_route(client: TestClient) -> None:
    document = await (await client.get("/api/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    assert {"/api/session", "/api/applications", "/api/applications/{reference}",
            "/api/applications/{reference}/actions"} <= set(document["paths"])
    routes = {(r.method, r.resource.canonical) for r in client.app.router.routes()
              if r.resource and r.resource.canonical.startswith("/api/")
              and r.method != "HEAD" and r.resource.canonical != "/api/openapi.json"}
    described = {(method.upper(), path) for path, item in document["paths"].items()
                 for method in item}
    assert routes == described
    actions = document["components"]["schemas"]["ActionRequest"]["properties"]["action"]
    assert set(actions["enum"]) == set(workflow.ACTIONS)


# -- the terminal -------------------------------------------------------------------------


def test_supplement_round_trip_through_the_terminal(tmp_path: Path) -> None:
    from tests.test_cli import chat, gateway

    chat(tmp_path, ENGLISH_FILING, sender="jane")
    added = gateway(tmp_path, "users", "add", "olivia", "--role", "officer", "--password-stdin",
                    stdin=(PASSWORD + "\n").encode())
    assert added.returncode == 0, added.stderr.decode()
    listing = gateway(tmp_path, "users", "list")
    assert b"olivia" in listing.stdout and b"officer" in listing.stdout
    from gateway.runtime import open_runtime

    runtime = open_runtime(Settings(data_dir=tmp_path))
    try:
        staff = Authenticator(runtime.sessions, runtime.settings).login(
            "olivia", PASSWORD, "local", "api").staff
        assert staff
        with transaction(runtime.sessions) as session:
            reference = repository.applications(session)[0].reference
        decisions.decide(runtime, staff, reference, workflow.Request(
            "request_supplement", message="Which village is downstream of the pipe?"))
    finally:
        runtime.close()
    shown = chat(tmp_path, ["Mupanja is downstream."], sender="jane")
    assert "Which village is downstream of the pipe?" in shown[0]["text"]
    assert any("again under formal review" in m["text"] for m in shown)
    assert chat(tmp_path, ["status"], sender="jane")[-1]["text"].count("under formal review")
    again = chat(tmp_path, [], sender="jane")
    assert not any("Which village" in m["text"] for m in again)
    duplicate = gateway(tmp_path, "users", "add", "olivia", "--role", "officer",
                        "--password-stdin", stdin=(PASSWORD + "\n").encode())
    assert duplicate.returncode == 1 and b"exists already" in duplicate.stderr
    short = gateway(tmp_path, "users", "add", "bob", "--role", "officer", "--password-stdin",
                    stdin=b"short\n")
    assert short.returncode == 1 and b"at least 12" in short.stderr
    assert gateway(tmp_path, "users", "disable", "olivia").returncode == 0
    assert b"disabled" in gateway(tmp_path, "users", "list").stdout


def test_secret_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    from gateway.staff import secret_key

    first = secret_key(Settings(data_dir=tmp_path))
    assert secret_key(Settings(data_dir=tmp_path)) == first and len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert secret_key(Settings(data_dir=tmp_path, secret_key="k" * 40)) == b"k" * 40



async def test_notice_waits_in_the_outbox_of_a_messaging_channel_and_the_answer_returns(
        client: TestClient) -> None:
    runtime = runtime_of(client)
    reference, sender = file_application(runtime, channel="telegram", sender="731000001")
    officer = await token_for(client, "olivia")
    await act(client, officer, reference, "request_supplement",
              message="Please send the name of the village chief.")
    notice = notices(runtime, reference)[-1]
    assert (notice.channel, notice.recipient, notice.state) == ("telegram", sender, "pending")
    assert "Please send the name of the village chief." in notice.body["text"]
    runtime.intake.handle(InboundMessage(channel="telegram", sender=sender,
                                         provider_message_id="tg-answer-1",
                                         text="Chief Mwenda of Kasulo."))
    assert status_of(runtime, reference) == "under_review"
    detail = await (await client.get(f"/api/applications/{reference}", headers=officer)).json()
    answered = detail["history"][-1]
    assert (answered["actor"], answered["action"]) == ("applicant", "supplement_answered")
    assert answered["message"] == "Chief Mwenda of Kasulo."


async def test_a_message_that_could_not_be_delivered_shows_in_the_queue_and_on_the_page(
        client: TestClient) -> None:
    runtime = runtime_of(client)
    reference, _ = file_application(runtime, channel="telegram")
    with transaction(runtime.sessions) as session:
        receipt = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
        receipt.state, receipt.last_error = "failed", "Forbidden: bot was blocked by the user"
    await log_in(client, "olivia")
    queue = await (await client.get("/secretariat")).text()
    assert "1 message not delivered" in queue
    page = await (await client.get(f"/secretariat/applications/{reference}")).text()
    assert "Not delivered:</strong> Forbidden: bot was blocked by the user" in page
