"""Who is asking: the secretariat's signed cookie (pages) or bearer token (API), CSRF, address.

Pages use a cookie scoped to /secretariat (HttpOnly, SameSite=Strict, Secure behind https) and
a per-login CSRF token in every form. The API uses `Authorization: Bearer`, which a browser
never sends on its own, so it needs no CSRF token. Both are rows in `staff_sessions`.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.staff import Authenticator, Staff
from gateway.web import RUNTIME
from gateway.web.chat import same_origin

log = logging.getLogger(__name__)
AUTH = web.AppKey("authenticator", Authenticator)
COOKIE = "gateway_staff"
COOKIE_PATH = "/secretariat"
LOGIN_COOKIE = "gateway_login"
MAX_TOKEN_CHARS = 256


async def authenticator_context(app: web.Application) -> AsyncIterator[None]:
    """Make the authenticator once the runtime is open (its key comes from the settings)."""
    runtime = app[RUNTIME]
    settings = runtime.settings
    if not settings.secret_key and not settings.effective_database_url.startswith("sqlite"):
        log.warning("GATEWAY_SECRET_KEY is not set: secretariat logins are signed with the key "
                    "file in %s, so every instance must share that folder or the setting",
                    settings.data_dir)
    app[AUTH] = await asyncio.to_thread(Authenticator, runtime.sessions, settings)
    yield


def client_address(request: web.Request) -> str:
    """The caller's address; behind a trusted proxy, the last address it forwarded."""
    remote = request.remote or "unknown"
    trusted = {p.strip() for p in request.app[RUNTIME].settings.trusted_proxies.split(",")
               if p.strip()}
    forwarded = request.headers.get("X-Forwarded-For", "")
    if remote in trusted and forwarded:
        last = forwarded.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            return remote
    return remote[:64]


def secure_cookies(request: web.Request) -> bool:
    """Whether cookies must be Secure (the public URL is https)."""
    return request.app[RUNTIME].settings.public_url.startswith("https")


async def staff_from_cookie(request: web.Request) -> Staff | None:
    """The user of the page request's signed cookie, if any."""
    token = request.cookies.get(COOKIE, "")
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    staff = await asyncio.to_thread(request.app[AUTH].recognise, token, "web")
    return _with_address(staff, request)


async def staff_from_bearer(request: web.Request) -> Staff | None:
    """The user of the API request's bearer token, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        return None
    staff = await asyncio.to_thread(request.app[AUTH].recognise, token, "api")
    return _with_address(staff, request)


def _with_address(staff: Staff | None, request: web.Request) -> Staff | None:
    """The user with the address of this request (the audit log records where from)."""
    if staff is None:
        return None
    return Staff(staff.user_id, staff.username, staff.role, staff.session_id,
                 staff.csrf_token, staff.kind, client_address(request))


def set_login_cookie(response: web.StreamResponse, request: web.Request, token: str) -> None:
    """Remember the login in the browser."""
    response.set_cookie(COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="Strict",
                        secure=secure_cookies(request))


def forget_login_cookie(response: web.StreamResponse) -> None:
    """Drop the login cookie."""
    response.del_cookie(COOKIE, path=COOKIE_PATH)


def csrf_ok(request: web.Request, submitted: str, expected: str) -> bool:
    """A form's CSRF token matches and the form came from our own pages."""
    return bool(submitted) and hmac.compare_digest(submitted.encode(), expected.encode()) \
        and same_origin(request)
