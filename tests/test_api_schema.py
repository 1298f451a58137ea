"""The secretariat's JSON API against its own OpenAPI description (schemathesis): requests
generated from `/api/openapi.json`, valid and not, authenticated with a token from
`POST /api/session` for a user added as `gateway users add` adds one, never get a 5xx.

The gateway runs on 127.0.0.1 in a thread of this process, on SQLite, with one application
in the queue under the reference the description gives as its example, so that generated
calls reach a real application (and its actions) as well as missing ones.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from sqlalchemy import update

from gateway.app import create_app
from gateway.runtime import open_runtime
from gateway.settings import Settings
from gateway.staff import add_user
from gateway.web.openapi import openapi_document
from intake.messages import InboundMessage
from storage.db import transaction
from storage.models import Application
from tests.filings import ENGLISH_FILING
from tests.processes import HOST, free_port

EXAMPLE_REFERENCE = "MCM-2026-7K3Q9X"
PASSWORD = "a-long-enough-password-42"


class LiveGateway:
    """`create_app` served on 127.0.0.1 by an event loop in a thread of its own."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(create_app(settings, workers=False))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LiveGateway:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, HOST, self.port).start()

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def token(self, username: str = "chen") -> str:
        answer = requests.post(f"{self.url}/api/session", timeout=30,
                               json={"username": username, "password": PASSWORD})
        answer.raise_for_status()
        return str(answer.json()["token"])


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    folder: Path = tmp_path_factory.mktemp("api")
    # Generated logins fail by the hundred: the limits on failures would soon refuse the
    # logins this test needs itself (they are tested in tests/test_secretariat.py).
    settings = Settings(data_dir=folder, language_detector="script",
                        translation_backend="none", login_max_failures_per_user=100_000,
                        login_max_failures_per_address=100_000)
    runtime = open_runtime(settings)
    try:
        add_user(runtime.sessions, "chen", "supervisor", PASSWORD)
        for number, line in enumerate(ENGLISH_FILING):
            runtime.intake.handle(InboundMessage("terminal", "jane", f"line-{number}", line))
        with transaction(runtime.sessions) as session:
            session.execute(update(Application).values(reference=EXAMPLE_REFERENCE))
    finally:
        runtime.close()
    with LiveGateway(settings) as live:
        yield live


@pytest.fixture(scope="module")
def token(gateway: LiveGateway) -> str:
    return gateway.token()


schema = schemathesis.openapi.from_dict(openapi_document())  # what /api/openapi.json serves


@schema.parametrize()
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_no_api_call_gets_a_server_error(case: Any, gateway: LiveGateway, token: str) -> None:
    # Logging out ends the token: that call gets a login of its own.
    own = case.method == "DELETE" and case.path == "/api/session"
    response = case.call(base_url=gateway.url, timeout=30, headers={
        "Authorization": f"Bearer {gateway.token() if own else token}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: " \
                                       f"{response.status_code} {response.text[:300]}"


def test_the_description_tested_is_the_one_served(gateway: LiveGateway) -> None:
    served = requests.get(f"{gateway.url}/api/openapi.json", timeout=30).json()
    assert served == openapi_document()
