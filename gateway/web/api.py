"""The secretariat's JSON API under /api/, described by OpenAPI 3 at /api/openapi.json.

`POST /api/session` trades a user name and password for a bearer token; every other call sends
`Authorization: Bearer <token>`. Anonymous or tampered: 401; the wrong role: 403; an action in
the wrong status or on an application changed meanwhile: 409; nothing is half-applied.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from aiohttp import web

from gateway import review
from gateway.decisions import NotFound, decide
from gateway.staff import Staff
from gateway.web import RUNTIME
from gateway.web.chat import LONE_SURROGATE
from gateway.web.openapi import openapi_document
from gateway.web.secretariat import STATUS_OF, reference_of
from gateway.web.staff_auth import AUTH, client_address, staff_from_bearer
from intake import workflow

# The largest action the rules allow: a message and a note of 20,000 characters each, every
# character JSON-escaped at worst (one outside the BMP is a pair "\ud83d\ude00": 12 bytes),
# with room for the other fields.
MAX_BODY_BYTES = (workflow.MAX_MESSAGE_CHARS + workflow.MAX_NOTE_CHARS) * 12 + 64 * 1024
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
ApiHandler = Callable[[web.Request, Staff], Awaitable[Any]]


def setup_api(app: web.Application) -> None:
    """Register the API's routes."""
    app.router.add_get("/api/openapi.json", openapi_json)
    app.router.add_post("/api/session", open_session)
    app.router.add_delete("/api/session", close_session)
    app.router.add_get("/api/applications", list_applications)
    app.router.add_get("/api/applications/{reference}", get_application)
    app.router.add_post("/api/applications/{reference}/actions", post_action)
    app.router.add_post("/api/applications/{reference}/reveal", reveal_application)
    app.router.add_get("/api/statistics", get_statistics)


def problem(status: int, code: str, message: str, **headers: str) -> web.Response:
    """An error as JSON: {"error": the reason in words, "code": a stable word}."""
    return web.json_response({"error": message, "code": code}, status=status,
                             headers=HEADERS | headers)


def unauthorised() -> web.Response:
    return problem(401, "unauthorised", "Log in first: POST /api/session, then send "
                   "'Authorization: Bearer <token>'.",
                   **{"WWW-Authenticate": 'Bearer realm="secretariat"'})


class BodyTooLarge(ValueError):
    """A request body over MAX_BODY_BYTES (answered 413)."""

    def __init__(self) -> None:
        super().__init__(f"The request body is too large (at most {MAX_BODY_BYTES} bytes).")


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; ValueError when it is missing, too large (BodyTooLarge),
    not an object or holds text that is not Unicode."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise BodyTooLarge
    try:
        body = await request.read()  # the whole body, however many packets it came in
    except web.HTTPRequestEntityTooLarge as error:
        raise BodyTooLarge from error
    if len(body) > MAX_BODY_BYTES:
        raise BodyTooLarge
    try:
        payload = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError("The request body is not valid JSON.") from error
    if not isinstance(payload, dict):
        raise ValueError("The request body must be a JSON object.")
    if LONE_SURROGATE.search(json.dumps(payload, ensure_ascii=False)):
        raise ValueError("The request body holds a lone surrogate (an escape \\ud800 to "
                         "\\udfff without its pair), which is not text.")
    return payload


def api_endpoint(handler: ApiHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Bearer token first; errors become JSON answers with the right status."""
    @wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        staff = await staff_from_bearer(request)
        if staff is None:
            return unauthorised()
        try:
            return web.json_response(await handler(request, staff), headers=HEADERS)
        except NotFound:
            return problem(404, "not_found", "There is no such application.")
        except review.BadFilter as error:
            return problem(400, "bad_filter", str(error))
        except BodyTooLarge as error:
            return problem(413, "too_large", str(error))
        except ValueError as error:
            return problem(400, "bad_request", str(error))
        except workflow.NotAllowed as refused:
            return problem(STATUS_OF[refused.kind], refused.kind, refused.message)
    return wrapped


async def openapi_json(request: web.Request) -> web.StreamResponse:
    """The OpenAPI 3 description of this API."""
    return web.json_response(openapi_document(), headers={"Cache-Control": "no-cache"})


async def open_session(request: web.Request) -> web.StreamResponse:
    """{"username", "password"} → {"token"}; refused: 401, too many failures: 429."""
    try:
        payload = await read_json(request)
    except BodyTooLarge as error:
        return problem(413, "too_large", str(error))
    except ValueError as error:
        return problem(400, "bad_request", str(error))
    username, password = payload.get("username"), payload.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return problem(400, "bad_request", "Send a JSON object with username and password.")
    result = await asyncio.to_thread(request.app[AUTH].login, username, password,
                                     client_address(request), "api")
    if result.refused == "throttled":
        return problem(429, "throttled", "Too many failed attempts. Try again later.",
                       **{"Retry-After": str(result.retry_after)})
    if result.token is None or result.staff is None:
        return problem(401, "bad_credentials", "The user name or the password is wrong.")
    hours = request.app[RUNTIME].settings.api_token_hours
    return web.json_response({"token": result.token, "token_type": "Bearer",
                              "expires_in": int(hours * 3600),
                              "username": result.staff.username, "role": result.staff.role},
                             headers=HEADERS)


async def close_session(request: web.Request) -> web.StreamResponse:
    """End the token's login."""
    staff = await staff_from_bearer(request)
    if staff is None:
        return unauthorised()
    await asyncio.to_thread(request.app[AUTH].logout, staff)
    return web.Response(status=204, headers=HEADERS)


@api_endpoint
async def list_applications(request: web.Request, staff: Staff) -> Any:
    """The queue with the same filters as the page."""
    runtime = request.app[RUNTIME]
    wanted = review.parse_filter(request.query, runtime.engine.form)
    rows = await asyncio.to_thread(review.queue_rows, runtime, staff, wanted, "api")
    return {"applications": rows, "count": len(rows)}


@api_endpoint
async def get_application(request: web.Request, staff: Staff) -> Any:
    """One application (identity masked where a confidentiality request protects it)."""
    return await asyncio.to_thread(review.application_view, request.app[RUNTIME], staff,
                                   reference_of(request))


@api_endpoint
async def reveal_application(request: web.Request, staff: Staff) -> Any:
    """One application with identity data revealed (supervisor, admin; logged)."""
    return await asyncio.to_thread(review.application_view, request.app[RUNTIME], staff,
                                   reference_of(request), True)


@api_endpoint
async def post_action(request: web.Request, staff: Staff) -> Any:
    """Apply one action: {"action", "message"?, "message_language"?, "note"?, "version"?}."""
    payload = await read_json(request)
    texts = {key: payload.get(key, default) for key, default in
             (("action", ""), ("message", ""), ("message_language", "en"), ("note", ""))}
    if not all(isinstance(value, str) for value in texts.values()):
        raise ValueError("action, message, message_language and note must be strings.")
    version = payload.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise ValueError("version must be an integer.")
    outcome = await asyncio.to_thread(decide, request.app[RUNTIME], staff,
                                      reference_of(request), workflow.Request(**texts), version)
    return {"reference": outcome.reference, "action": outcome.action, "status": outcome.status,
            "version": outcome.version, "notice_outbox_id": outcome.outbox_id}


@api_endpoint
async def get_statistics(request: web.Request, staff: Staff) -> Any:
    """Counts and medians for the published reports."""
    return await asyncio.to_thread(review.statistics, request.app[RUNTIME])
