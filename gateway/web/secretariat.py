"""The secretariat's pages under /secretariat: login, queue, one application, statistics, audit.

Server-rendered, no build step; every page needs a login (a signed cookie) and every form
carries the login's CSRF token. What is shown and what is logged is decided in gateway.review;
what an action does, in gateway.decisions.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp_jinja2
from aiohttp import web

from gateway import review
from gateway.decisions import NotFound, decide
from gateway.staff import Staff
from gateway.web import RUNTIME
from gateway.web.chat import PAGE_HEADERS
from gateway.web.staff_auth import (
    AUTH,
    LOGIN_COOKIE,
    authenticator_context,
    client_address,
    csrf_ok,
    forget_login_cookie,
    secure_cookies,
    set_login_cookie,
    staff_from_cookie,
)
from intake import workflow
from intake.reference import normalise_reference
from storage import repository
from storage.db import transaction

PAGE_LANGUAGE = "en"
LOGIN_PATH = "/secretariat/login"
STATUS_OF = {"unknown": 400, "invalid": 400, "forbidden": 403, "conflict": 409}
ACTION_LABELS = {
    "start_review": "Start the formal review",
    "request_supplement": "Ask for more information",
    "accept": "Accept (受理)",
    "reject": "Reject (驳回)",
    "withdraw": "Record a withdrawal",
    "grant_confidentiality": "Grant the confidentiality request",
    "refuse_confidentiality": "Refuse the confidentiality request",
    "note": "Add an internal note",
    "supplement_answered": "The applicant answered",
    "confidentiality_requested": "The applicant asked for confidentiality",
}
STATUS_LABELS = {
    "submitted": "Submitted", "under_review": "Under formal review",
    "supplement_requested": "Supplement requested", "accepted": "Accepted",
    "rejected": "Rejected", "withdrawn": "Withdrawn",
}
StaffHandler = Callable[[web.Request, Staff], Awaitable[web.StreamResponse]]


def setup_secretariat(app: web.Application) -> None:
    """Register the secretariat's pages."""
    app.cleanup_ctx.append(authenticator_context)
    add = app.router.add_route
    add("GET", "/secretariat", queue_page, name="secretariat")
    add("GET", LOGIN_PATH, login_page)
    add("POST", LOGIN_PATH, login_form)
    add("POST", "/secretariat/logout", logout_form)
    add("GET", "/secretariat/queue.json", export_json)
    add("GET", "/secretariat/queue.csv", export_csv)
    add("GET", "/secretariat/statistics", statistics_page)
    add("GET", "/secretariat/audit", audit_page)
    add("GET", "/secretariat/applications/{reference}", application_page)
    add("POST", "/secretariat/applications/{reference}/actions", action_form)
    add("POST", "/secretariat/applications/{reference}/reveal", reveal_form)
    add("GET", "/secretariat/applications/{reference}/evidence/{sha256}", evidence_download)


# -- rendering ------------------------------------------------------------------------------


def render(request: web.Request, template: str, context: dict[str, Any], status: int = 200
           ) -> web.StreamResponse:
    """A page with the secretariat's layout and the headers every page gets."""
    response = aiohttp_jinja2.render_template(template, request, {
        "lang": PAGE_LANGUAGE, "dir": "ltr", "status_labels": STATUS_LABELS,
        "action_labels": ACTION_LABELS, **context}, status=status)
    response.headers.update(PAGE_HEADERS)
    return response


def error_page(request: web.Request, staff: Staff | None, status: int, message: str
               ) -> web.StreamResponse:
    """A refusal the person can read, with the way back."""
    return render(request, "secretariat_error.html", {"staff": staff, "message": message,
                                                      "code": status}, status)


def staff_page(handler: StaffHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Pages need a login (else the login page); forms need the login's CSRF token."""
    @wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        staff = await staff_from_cookie(request)
        if staff is None:
            if request.method != "GET":
                return error_page(request, None, 403, "Your login has ended. Log in again, "
                                                      "then repeat what you were doing.")
            target = request.path_qs
            raise web.HTTPSeeOther(f"{LOGIN_PATH}?{urlencode({'next': target})}")
        if request.method == "POST":
            try:
                form = await request.post()
            except UNREADABLE_FORM:
                return error_page(request, staff, 400, FORM_NOT_READ)
            if not csrf_ok(request, str(form.get("csrf", "")), staff.csrf_token):
                return error_page(request, staff, 403, "This form has expired or did not come "
                                  "from this site. Reload the page and try again.")
        try:
            return await handler(request, staff)
        except NotFound:
            return error_page(request, staff, 404, "There is no such application.")
        except review.BadFilter as error:
            return error_page(request, staff, 400, str(error))
        except workflow.NotAllowed as refused:
            return error_page(request, staff, STATUS_OF[refused.kind], refused.message)
    return wrapped


def reference_of(request: web.Request) -> str:
    """The application reference in the path, as it is stored."""
    return normalise_reference(request.match_info["reference"])[:32]


# -- login and logout -----------------------------------------------------------------------


def safe_next(target: str | None) -> str:
    """Where to go after login: only a path of the secretariat on this site, as a browser
    sends it (ASCII, no control characters: a line break in the Location would fail the
    login)."""
    if target and target.startswith("/secretariat") and not target.startswith("//") \
            and "\\" not in target and target.isascii() and target.isprintable():
        return target
    return "/secretariat"


def login_response(request: web.Request, message: str | None = None, status: int = 200,
                   username: str = "", next_page: str | None = None) -> web.StreamResponse:
    """The login page with a fresh CSRF nonce in a cookie and in the form; after login it
    goes to `next_page` (the page asked for), or to the `next` of the address."""
    nonce = secrets.token_urlsafe(32)
    response = render(request, "secretariat_login.html", {
        "staff": None, "csrf": nonce, "message": message, "username": username,
        "next": safe_next(next_page or request.query.get("next"))}, status)
    response.set_cookie(LOGIN_COOKIE, nonce, path="/secretariat/login", httponly=True,
                        samesite="Strict", secure=secure_cookies(request))
    return response


async def login_page(request: web.Request) -> web.StreamResponse:
    """The login form (a logged-in user goes to the queue)."""
    if await staff_from_cookie(request):
        raise web.HTTPSeeOther("/secretariat")
    return login_response(request)


# A form whose bytes are not in the charset it names, or that names no charset Python knows.
UNREADABLE_FORM = (ValueError, LookupError)
FORM_NOT_READ = ("This form could not be read (its characters are not in the encoding it "
                 "names). Reload the page and try again.")


async def login_form(request: web.Request) -> web.StreamResponse:
    """Check the password under the rate limits; on success, the cookie and the queue."""
    try:
        form = await request.post()
    except UNREADABLE_FORM:
        return login_response(request, FORM_NOT_READ, 400)
    username = str(form.get("username", ""))[:64]
    next_page = safe_next(str(form.get("next", "")))
    if not csrf_ok(request, str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE, "")):
        return login_response(request, "The login form expired. Please try again.", 403,
                              username, next_page)
    result = await asyncio.to_thread(request.app[AUTH].login, username,
                                     str(form.get("password", "")), client_address(request),
                                     "web")
    if result.refused == "throttled":
        response = login_response(
            request, f"Too many failed attempts. Try again in {result.retry_after // 60} "
                     f"minutes.", 429, username, next_page)
        response.headers["Retry-After"] = str(result.retry_after)
        return response
    if result.token is None:
        return login_response(request, "The user name or the password is wrong.", 401,
                              username, next_page)
    response = web.Response(status=303, headers={"Location": next_page})
    set_login_cookie(response, request, result.token)
    response.del_cookie(LOGIN_COOKIE, path="/secretariat/login")
    return response


@staff_page
async def logout_form(request: web.Request, staff: Staff) -> web.StreamResponse:
    """End the login here and on the server."""
    await asyncio.to_thread(request.app[AUTH].logout, staff)
    response = web.Response(status=303, headers={"Location": LOGIN_PATH})
    forget_login_cookie(response)
    return response


# -- the queue and its exports ----------------------------------------------------------------


@staff_page
async def queue_page(request: web.Request, staff: Staff) -> web.StreamResponse:
    """The queue, by formal-review deadline, with its filters."""
    runtime = request.app[RUNTIME]
    wanted = review.parse_filter(request.query, runtime.engine.form)
    rows = await asyncio.to_thread(review.queue_rows, runtime, staff, wanted)
    menus = review.facets(rows) if not wanted.active else await asyncio.to_thread(
        review.all_facets, runtime)
    catalogs = runtime.engine.catalogs
    return render(request, "secretariat.html", {
        "staff": staff, "nav": "queue", "rows": rows, "wanted": wanted, "facets": menus,
        "statuses": workflow.STATUSES,
        "minerals": [(c, catalogs.text(PAGE_LANGUAGE, f"choice.dispute.minerals.{c}"))
                     for c in review.choice_ids(runtime.engine.form, "dispute.minerals")],
        "issue_types": [(c, catalogs.text(PAGE_LANGUAGE, f"choice.dispute.issue_types.{c}"))
                        for c in review.choice_ids(runtime.engine.form, "dispute.issue_types")],
        "labels": {key: catalogs.text(PAGE_LANGUAGE, f"field.{key}.label")
                   for key in (rows[0]["completeness"] if rows else {})},
        "export_query": urlencode(wanted.as_query()),
        "may_reveal": workflow.may_reveal(staff.role),
    })


async def _export(request: web.Request, staff: Staff) -> list[dict[str, Any]]:
    runtime = request.app[RUNTIME]
    wanted = review.parse_filter(request.query, runtime.engine.form)
    reveal = request.query.get("reveal", "").lower() in review.YES
    audience = request.query.get("audience", "secretariat")
    return await asyncio.to_thread(review.export_rows, runtime, staff, wanted, audience, reveal)


@staff_page
async def export_json(request: web.Request, staff: Staff) -> web.StreamResponse:
    """The queue as JSON (identity masked where protected)."""
    rows = await _export(request, staff)
    return web.json_response(rows, headers={"Cache-Control": "no-store",
                                            "X-Content-Type-Options": "nosniff"})


@staff_page
async def export_csv(request: web.Request, staff: Staff) -> web.StreamResponse:
    """The queue as CSV for spreadsheets, defused against formula injection."""
    rows = await _export(request, staff)
    return web.Response(body=review.to_csv(rows).encode("utf-8"), headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="queue.csv"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


# -- one application --------------------------------------------------------------------------


async def _application(request: web.Request, staff: Staff, reveal: bool = False,
                       notice: str | None = None, status: int = 200,
                       typed: dict[str, str] | None = None) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    view = await asyncio.to_thread(review.application_view, runtime, staff,
                                   reference_of(request), reveal)
    return render(request, "secretariat_application.html", {
        "staff": staff, "nav": "queue", "application": view, "notice": notice, "typed": typed or {},
        "done": request.query.get("done") if status == 200 else None,
        "needs_message": {name for name, action in workflow.ACTIONS.items()
                          if action.message == "required"},
    }, status)


@staff_page
async def application_page(request: web.Request, staff: Staff) -> web.StreamResponse:
    """One application: deadlines, fields in three languages, evidence, transcript, history."""
    return await _application(request, staff)


@staff_page
async def reveal_form(request: web.Request, staff: Staff) -> web.StreamResponse:
    """Show identity data under a confidentiality request, once, for this page (logged)."""
    return await _application(request, staff, reveal=True)


@staff_page
async def action_form(request: web.Request, staff: Staff) -> web.StreamResponse:
    """Apply one action; a refusal shows the page again with the reason and the typed text."""
    form = await request.post()
    typed = {key: str(form.get(key, "")) for key in ("action", "message", "message_language",
                                                        "note")}
    decision = workflow.Request(action=typed["action"], message=typed["message"],
                                message_language=typed["message_language"] or "en",
                                note=typed["note"])
    try:
        version = int(str(form.get("version", "")))
    except ValueError:
        version = None
    reference = reference_of(request)
    try:
        await asyncio.to_thread(decide, request.app[RUNTIME], staff, reference, decision,
                                version)
    except workflow.NotAllowed as refused:
        return await _application(request, staff, notice=refused.message,
                                  status=STATUS_OF[refused.kind], typed=typed)
    raise web.HTTPSeeOther(f"/secretariat/applications/{quote(reference)}?"
                           f"{urlencode({'done': decision.action})}#history")


@staff_page
async def evidence_download(request: web.Request, staff: Staff) -> web.StreamResponse:
    """An evidence file, always as a download, never rendered or sniffed by the browser."""
    runtime = request.app[RUNTIME]
    sha256 = request.match_info["sha256"].lower()
    try:
        runtime.evidence.path_of(sha256)
    except ValueError as error:
        raise NotFound(sha256) from error
    filename, _ = await asyncio.to_thread(review.evidence_file, runtime, staff,
                                          reference_of(request), sha256)
    try:
        data = await asyncio.to_thread(runtime.evidence.read, sha256)
    except FileNotFoundError:
        return error_page(request, staff, 404, "The file is listed but missing from the "
                                               "evidence folder.")
    ascii_name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in " ._-()")
                         else "_" for ch in filename) or "evidence"
    return web.Response(body=data, headers={
        "Content-Type": "application/octet-stream",
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; "
                               f"filename*=UTF-8''{quote(filename, safe='')}",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; sandbox"})


# -- statistics and audit -------------------------------------------------------------------


@staff_page
async def statistics_page(request: web.Request, staff: Staff) -> web.StreamResponse:
    """Counts and medians for the published reports."""
    runtime = request.app[RUNTIME]
    figures = await asyncio.to_thread(review.statistics, runtime)
    catalogs = runtime.engine.catalogs
    names = {f"issue:{c}": catalogs.text(PAGE_LANGUAGE, f"choice.dispute.issue_types.{c}")
             for c in review.choice_ids(runtime.engine.form, "dispute.issue_types")}
    names |= {f"mineral:{c}": catalogs.text(PAGE_LANGUAGE, f"choice.dispute.minerals.{c}")
              for c in review.choice_ids(runtime.engine.form, "dispute.minerals")}
    return render(request, "secretariat_statistics.html", {
        "staff": staff, "nav": "statistics", "figures": figures, "names": names})


@staff_page
async def audit_page(request: web.Request, staff: Staff) -> web.StreamResponse:
    """The newest entries of the audit log (supervisors and admins)."""
    if not workflow.may_read_audit(staff.role):
        raise workflow.NotAllowed("forbidden", "Only a supervisor or an admin may read the "
                                               "audit log.")
    runtime = request.app[RUNTIME]

    def load() -> list[dict[str, Any]]:
        with transaction(runtime.sessions) as session:
            return [{"at": e.at.isoformat(timespec="seconds"), "username": e.username,
                     "action": e.action, "reference": e.reference, "address": e.address,
                     "detail": e.detail} for e in repository.audit_events(session)]
    return render(request, "secretariat_audit.html", {
        "staff": staff, "nav": "audit", "events": await asyncio.to_thread(load)})
