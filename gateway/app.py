"""The aiohttp application factory: `create_app(settings)` builds everything `serve` runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from sqlalchemy import text

from gateway.messaging import MESSAGING, Messaging
from gateway.runtime import Runtime, open_runtime
from gateway.settings import Settings
from gateway.web import RUNTIME
from gateway.web.api import setup_api
from gateway.web.chat import setup_chat
from gateway.web.limits import body_limits, text_addresses
from gateway.web.needs_person import setup_needs_person
from gateway.web.secretariat import setup_secretariat
from gateway.webhooks import setup_webhooks
from gateway.workers import run_workers

log = logging.getLogger(__name__)
MAX_REQUEST_BYTES = 32 * 1024 * 1024
PAGES = Path(__file__).parent


def create_app(settings: Settings, workers: bool = True) -> web.Application:
    """The web application: health, metrics, web chat, queue pages; workers alongside."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES,
                          middlewares=[text_addresses, body_limits])
    app.cleanup_ctx.append(_runtime_context(settings, workers))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", to_chat)
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(PAGES / "templates"))
    app.router.add_static("/static/", PAGES / "static", name="static", append_version=True)
    setup_chat(app)
    setup_secretariat(app)
    setup_needs_person(app)
    setup_api(app)
    setup_webhooks(app)
    return app


def _runtime_context(settings: Settings, workers: bool):  # type: ignore[no-untyped-def]
    async def context(app: web.Application) -> AsyncIterator[None]:
        runtime = await asyncio.to_thread(open_runtime, settings)
        app[RUNTIME] = runtime
        messaging = Messaging(runtime)
        app[MESSAGING] = messaging
        await messaging.start()
        task = asyncio.create_task(run_workers(runtime, messaging)) if workers else None
        _announce_channels(runtime, messaging)
        yield
        if task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await messaging.close()
        runtime.close()
    return context


def _announce_channels(runtime: Runtime, messaging: Messaging) -> None:
    """Say once which ways in are open."""
    log.info("channels on: web chat (/chat), terminal (gateway chat)")
    messaging.announce()


async def to_chat(request: web.Request) -> web.Response:
    """The front page is the web chat."""
    raise web.HTTPFound("/chat")


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers, 503 otherwise."""
    runtime = request.app[RUNTIME]

    def ping() -> None:
        with runtime.database.connect() as connection:
            connection.execute(text("SELECT 1"))
    try:
        await asyncio.to_thread(ping)
    except Exception as error:  # noqa: BLE001 - any failure means unhealthy
        return web.json_response({"status": "unavailable", "error": type(error).__name__},
                                 status=503)
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    """Counts from the database in Prometheus text format."""
    from gateway.stats import prometheus_text

    body = await asyncio.to_thread(prometheus_text, request.app[RUNTIME])
    return web.Response(text=body, content_type="text/plain", charset="utf-8")
