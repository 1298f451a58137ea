"""What the load benchmarks share: the processes they start, signed WhatsApp traffic from many
senders, and a load generator bounded in count and in time that sends only to 127.0.0.1.

Also runnable, to start the helper servers in processes of their own:

    python bench/load.py bare --port 9001 --database /tmp/bare.sqlite3 [--process]
    python bench/load.py providers --port 9002

`bare` is the baseline: an aiohttp handler that inserts the raw body into SQLite (WAL, the
gateway's own pragmas) and answers 200; with `--process` it also does, in a second transaction,
the rows the gateway's processing writes (read and update the sender's conversation state, add
an outbox row, mark the message processed), with plain sqlite3 and no conversation logic.
`providers` is the tests' fake provider APIs (tests/channels/fakes.py), where the gateway's
replies go.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from channels import whatsapp  # noqa: E402
from tests import processes  # noqa: E402
from tests.channels.fakes import WHATSAPP_PHONE_ID, WHATSAPP_TOKEN  # noqa: E402
from tests.filings import ENGLISH_FILING  # noqa: E402
from tests.processes import HOST, Server, free_port, start  # noqa: E402

APP_SECRET = "bench-app-secret"
WHATSAPP_PATH = "/webhooks/whatsapp"


# -- processes -------------------------------------------------------------------------------


def gateway_env(data_dir: Path, providers_url: str, database_url: str = "", **extra: str
                ) -> dict[str, str]:
    """Settings of a `gateway serve` or `gateway worker` with WhatsApp on, replying to the fake
    providers; everything else at its default."""
    return {
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_TRANSLATION_BACKEND": "none",
        "GATEWAY_WHATSAPP_APP_SECRET": APP_SECRET,
        "GATEWAY_WHATSAPP_VERIFY_TOKEN": "bench-verify-token",
        "GATEWAY_WHATSAPP_ACCESS_TOKEN": WHATSAPP_TOKEN,
        "GATEWAY_WHATSAPP_PHONE_NUMBER_ID": WHATSAPP_PHONE_ID,
        "GATEWAY_WHATSAPP_API_BASE": f"{providers_url}/whatsapp",
    } | {f"GATEWAY_{key.upper()}": value for key, value in extra.items()}


def start_gateway(command: str, folder: Path, data_dir: Path, providers_url: str,
                  database_url: str = "", name: str | None = None, **extra: str) -> Server:
    """`gateway serve` (waits for /healthz) or `gateway worker`."""
    return processes.start_gateway(command, folder, gateway_env(
        data_dir, providers_url, database_url, **extra), name)


def start_providers(folder: Path) -> Server:
    port = free_port()
    return start("providers", [sys.executable, __file__, "providers", "--port", str(port)], port,
                 folder, ready_path="/whatsapp/none")


def start_bare(folder: Path, process: bool = False) -> Server:
    port = free_port()
    args = [sys.executable, __file__, "bare", "--port", str(port), "--database",
            str(folder / "bare.sqlite3")]
    return start("bare", args + (["--process"] if process else []), port, folder,
                 ready_path="/healthz")


def load_arguments(description: str, messages: int, senders: int, warmup: int, seconds: float,
                   seconds_help: str = "time limit of one run") -> argparse.ArgumentParser:
    """The options every load benchmark takes (traffic, connections, time limit), with its
    own defaults; a benchmark adds its own options to the parser it gets back."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--messages", type=int, default=messages)
    parser.add_argument("--senders", type=int, default=senders)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=warmup)
    parser.add_argument("--seconds", type=float, default=seconds, help=seconds_help)
    return parser


def machine_note() -> str:
    """How busy the machine was (others' work shares the cores with the benchmark)."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.1f} (1 min), {five:.1f} (5 min)"


# -- traffic ---------------------------------------------------------------------------------


def whatsapp_webhook(sender: str, wamid: str, text: str, timestamp: int) -> bytes:
    """One WhatsApp Cloud API `messages` webhook carrying one text message."""
    payload = {"object": "whatsapp_business_account", "entry": [{
        "id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881",
                         "phone_number_id": WHATSAPP_PHONE_ID},
            "contacts": [{"profile": {"name": "Bench Sender"}, "wa_id": sender}],
            "messages": [{"from": sender, "id": wamid, "timestamp": str(timestamp),
                          "type": "text", "text": {"body": text}}]}}]}]}
    return json.dumps(payload).encode()


@dataclass(frozen=True)
class Delivery:
    """One signed webhook request."""

    sender: str
    body: bytes
    headers: dict[str, str]


def campaign(messages: int, senders: int, tag: str, lines: Sequence[str] = ENGLISH_FILING
             ) -> list[Delivery]:
    """`messages` signed webhooks: each of `senders` people files an application line by line,
    their messages interleaved (person 1 line 1, person 2 line 1, …, person 1 line 2, …)."""
    now = int(time.time())
    deliveries = []
    for n in range(messages):
        sender = f"2439{tag}{n % senders:06d}"
        line = lines[(n // senders) % len(lines)]
        body = whatsapp_webhook(sender, f"wamid.{tag}{n:09d}", line, now)
        deliveries.append(Delivery(sender, body, {
            "Content-Type": "application/json",
            whatsapp.SIGNATURE_HEADER: whatsapp.sign(body, APP_SECRET)}))
    return deliveries


@dataclass
class LoadResult:
    """What a load run measured."""

    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0  # connection errors
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.statuses.get(200, 0) / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        return percentile(self.latencies_ms, share)


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def post_all(url: str, deliveries: Sequence[Delivery], connections: int = 32,
                   time_limit: float = 60.0) -> LoadResult:
    """POST every delivery over `connections` concurrent connections, each connection one
    request at a time; stops early at `time_limit` seconds."""
    import aiohttp

    if not url.startswith(f"http://{HOST}:"):
        raise ValueError("the load goes to 127.0.0.1 only")
    result = LoadResult()
    pending = iter(deliveries)
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        deadline = started + time_limit

        async def connection() -> None:
            for delivery in pending:
                if time.perf_counter() > deadline:
                    return
                sent = time.perf_counter()
                try:
                    async with session.post(url, data=delivery.body,
                                            headers=delivery.headers) as answer:
                        await answer.read()
                        status = answer.status
                except aiohttp.ClientError:
                    result.failures += 1
                    continue
                result.latencies_ms.append((time.perf_counter() - sent) * 1000)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                result.requests += 1
        await asyncio.gather(*(connection() for _ in range(connections)))
        result.seconds = time.perf_counter() - started
    return result


# -- the helper servers ----------------------------------------------------------------------


def bare_app(database: Path, process: bool) -> Any:
    """The baseline handler (see the module's docstring)."""
    from aiohttp import web

    connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
        connection.execute(f"PRAGMA {pragma}")
    connection.executescript("""
        CREATE TABLE IF NOT EXISTS inbound (id INTEGER PRIMARY KEY, body BLOB NOT NULL,
            processed INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE IF NOT EXISTS conversation (sender TEXT PRIMARY KEY, state TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, recipient TEXT NOT NULL,
            body TEXT NOT NULL, state TEXT NOT NULL);
    """)

    def store(body: bytes) -> int:
        connection.execute("BEGIN IMMEDIATE")
        row = connection.execute("INSERT INTO inbound (body) VALUES (?)", (body,)).lastrowid
        connection.execute("COMMIT")
        return int(row or 0)

    def apply(inbound_id: int, body: bytes) -> None:
        message = json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]
        sender = message["from"]
        connection.execute("BEGIN IMMEDIATE")
        found = connection.execute("SELECT state FROM conversation WHERE sender = ?",
                                   (sender,)).fetchone()
        state = json.loads(found[0]) if found else {"answers": []}
        state["answers"].append(message["text"]["body"])
        connection.execute("INSERT OR REPLACE INTO conversation VALUES (?, ?)",
                           (sender, json.dumps(state)))
        connection.execute("INSERT INTO outbox (recipient, body, state) VALUES (?, ?, ?)",
                           (sender, json.dumps({"text": "next question"}), "pending"))
        connection.execute("UPDATE inbound SET processed = 1 WHERE id = ?", (inbound_id,))
        connection.execute("COMMIT")

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        inbound_id = store(body)
        if process:
            asyncio.get_running_loop().call_soon(apply, inbound_id, body)
        return web.Response(text="ok")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(WHATSAPP_PATH, receive)
    app.router.add_get("/healthz", healthz)
    return app


def providers_app() -> Any:
    from tests.channels.fakes import FakeProviders

    fake = FakeProviders()
    app = fake.app()
    fake.url = ""
    return app


def main(argv: Sequence[str] | None = None) -> int:
    from aiohttp import web

    parser = argparse.ArgumentParser(description="helper servers of the load benchmarks")
    parser.add_argument("server", choices=("bare", "providers"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", type=Path)
    parser.add_argument("--process", action="store_true")
    args = parser.parse_args(argv)
    app = bare_app(args.database, args.process) if args.server == "bare" else providers_app()
    web.run_app(app, host=HOST, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
