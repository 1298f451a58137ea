"""Scale-out on PostgreSQL: two `gateway serve` instances and a `gateway worker`, against one.

    .venv/bin/python bench/scale_out.py [--messages 3000] [--senders 300] [--connections 32]
                                        [--postgres postgresql://postgres@127.0.0.1:5432/test]

A scratch database is created on the PostgreSQL server (the user needs the right to create
databases; it is dropped at the end) and migrated once with `gateway db upgrade`. Then the same
traffic as bench/processing.py (signed WhatsApp webhooks from --senders people filing line by
line, over --connections connections) goes, in the same run:
  1. to one `gateway serve` (the baseline), then, on a fresh database,
  2. to two `gateway serve` instances, every other request to each (as a round-robin load
     balancer would send them, so one person's messages arrive at both), with a
     `gateway worker` beside them.
Replies go to a local fake of the Cloud API. Figures: acknowledgements per second and their
p50/p99, and messages per second from the first request until the last is processed (its
conversation step and outbox rows committed), read from the database every 50 ms. All
processes share this machine's two cores with the PostgreSQL server and the load generator.
Bounded: each run stops waiting after --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402

from bench.load import (  # noqa: E402
    WHATSAPP_PATH,
    Delivery,
    LoadResult,
    Server,
    campaign,
    load_arguments,
    machine_note,
    post_all,
    start,
    start_gateway,
    start_providers,
)
from bench.processing import wait_until  # noqa: E402

DEFAULT_POSTGRES = os.environ.get("GATEWAY_TEST_POSTGRES_URL",
                                  "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class ScratchDatabase:
    """A database of its own on the server, dropped at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.name = f"gateway_bench_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = admin_url.rsplit("/", 1)[0] + f"/{self.name}"

    def drop(self) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def processed_counter(url: str) -> Callable[[], int]:
    engine = create_engine(url, pool_size=1)

    def count() -> int:
        with engine.connect() as connection:
            return int(connection.execute(text(
                "SELECT count(*) FROM inbound_messages WHERE processed_at IS NOT NULL")
            ).scalar_one())
    return count


async def spread(urls: list[str], deliveries: Sequence[Delivery], connections: int,
                 seconds: float) -> LoadResult:
    """Every other delivery to each instance, as a round-robin load balancer would."""
    shares = [list(itertools.islice(deliveries, n, None, len(urls))) for n in range(len(urls))]
    results = await asyncio.gather(*(post_all(url, share, connections // len(urls), seconds)
                                     for url, share in zip(urls, shares, strict=True)))
    total = LoadResult(seconds=max(r.seconds for r in results))
    for result in results:
        total.requests += result.requests
        total.failures += result.failures
        total.latencies_ms += result.latencies_ms
        for status, count in result.statuses.items():
            total.statuses[status] = total.statuses.get(status, 0) + count
    return total


def run(urls: list[str], processed: Callable[[], int], args: argparse.Namespace, tag: str
        ) -> tuple[LoadResult, int, float]:
    warmup = campaign(args.warmup, min(args.warmup, args.senders), f"{tag}0")
    asyncio.run(spread(urls, warmup, args.connections, args.seconds))
    wait_until(processed, args.warmup, time.perf_counter() + args.seconds)
    before = processed()
    load = campaign(args.messages, args.senders, f"{tag}1")
    started = time.perf_counter()
    acknowledged = asyncio.run(spread(urls, load, args.connections, args.seconds))
    target = before + acknowledged.statuses.get(200, 0)
    finished = wait_until(processed, target, started + args.seconds)
    return acknowledged, processed() - before, finished - started


def layout(instances: int, worker: bool, folder: Path, providers_url: str, database: str,
           args: argparse.Namespace, tag: str) -> tuple[LoadResult, int, float]:
    """Start the instances (and the worker) on a migrated database, run the load, stop."""
    upgrade = start("upgrade", [sys.executable, "-m", "gateway.cli", "db", "upgrade"], 0,
                    folder, {"GATEWAY_DATABASE_URL": database,
                             "GATEWAY_DATA_DIR": str(folder / "shared")}, ready_path=None)
    if upgrade.process.wait(120) != 0:
        raise RuntimeError(upgrade.log.read_text())
    servers: list[Server] = []
    try:
        for n in range(instances):
            servers.append(start_gateway("serve", folder, folder / f"data{tag}{n}",
                                         providers_url, database, name=f"serve{tag}{n}"))
        if worker:
            servers.append(start_gateway("worker", folder, folder / f"data{tag}w",
                                         providers_url, database, name=f"worker{tag}"))
        urls = [server.url + WHATSAPP_PATH for server in servers[:instances]]
        return run(urls, processed_counter(database), args, tag)
    finally:
        for server in servers:
            server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = load_arguments(__doc__.split("\n", 1)[0], messages=3000, senders=300, warmup=200,
                            seconds=150.0)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES,
                        help="a server where a scratch database may be created")
    args = parser.parse_args(argv)
    note = machine_note()

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        providers = start_providers(folder)
        try:
            for name, instances, worker, tag in (
                    ("1 serve (baseline)", 1, False, "1"),
                    ("2 serve + 1 worker", 2, True, "2")):
                database = ScratchDatabase(args.postgres)
                try:
                    rows.append((name, *layout(instances, worker, folder, providers.url,
                                               database.url, args, tag)))
                finally:
                    database.drop()
        finally:
            providers.stop()

    print(f"\nbefore the run: {note}")
    print(f"PostgreSQL: {args.messages} WhatsApp messages from {args.senders} senders, "
          f"{args.connections} connections")
    print(f"{'layout':<22}{'acked':>7}{'ack/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'processed':>11}"
          f"{'seconds':>9}{'processed/s':>13}")
    for name, acknowledged, done, seconds in rows:
        print(f"{name:<22}{acknowledged.statuses.get(200, 0):>7}{acknowledged.rate:>8.0f}"
              f"{acknowledged.percentile(0.5):>8.1f}{acknowledged.percentile(0.99):>8.1f}"
              f"{done:>11}{seconds:>9.1f}{done / seconds:>13.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
