"""End-to-end processing on SQLite: webhook in → stored → conversation step → outbox row.

    .venv/bin/python bench/processing.py [--messages 4000] [--senders 400] [--connections 32]

--messages signed WhatsApp webhooks from --senders people filing an application line by line
(interleaved) are posted to `gateway serve` (its defaults: SQLite in its data folder, the
default language detector, the outbox sender replying to a local fake of the Cloud API) over
--connections connections. The figure is messages per second from the first request to the
moment the last message is processed: its conversation step and its outbox rows are committed
in the same transaction that marks it processed, so a processed message has its replies queued.
The bench reads the gateway's SQLite file (read-only) every 50 ms to see that.

The baseline, in the same run and with the same traffic, is the bare handler of bench/load.py
with `--process`: raw body into SQLite, then in a second transaction the rows the gateway's
processing writes (the sender's conversation state read and rewritten as JSON, one outbox row,
the message marked processed), with plain sqlite3 and no conversation logic, so it shows what
the database and HTTP alone allow on this machine. Goal: 2,000 messages per second.
Bounded: each run stops waiting after --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import (  # noqa: E402
    WHATSAPP_PATH,
    LoadResult,
    campaign,
    load_arguments,
    machine_note,
    post_all,
    start_bare,
    start_gateway,
    start_providers,
)


def counter(database: Path, query: str) -> Callable[[], int]:
    """A function that runs one COUNT query on a database another process writes."""
    def count() -> int:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
        try:
            return int(connection.execute(query).fetchone()[0])
        finally:
            connection.close()
    return count


def wait_until(processed: Callable[[], int], target: int, deadline: float) -> float:
    """Poll until `processed()` reaches `target` or the deadline; the moment it was seen."""
    while time.perf_counter() < deadline:
        if processed() >= target:
            return time.perf_counter()
        time.sleep(0.05)
    return time.perf_counter()


def run(url: str, processed: Callable[[], int], args: argparse.Namespace, tag: str
        ) -> tuple[LoadResult, int, float]:
    """Warm up, then the measured load; (acknowledgements, processed, seconds until then)."""
    warmup = campaign(args.warmup, min(args.warmup, args.senders), f"{tag}0")
    asyncio.run(post_all(url, warmup, args.connections, args.seconds))
    wait_until(processed, args.warmup, time.perf_counter() + args.seconds)
    before = processed()
    load = campaign(args.messages, args.senders, f"{tag}1")
    started = time.perf_counter()
    acknowledged = asyncio.run(post_all(url, load, args.connections, args.seconds))
    target = before + acknowledged.statuses.get(200, 0)
    finished = wait_until(processed, target, started + args.seconds)
    return acknowledged, processed() - before, finished - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = load_arguments(__doc__.split("\n", 1)[0], messages=4000, senders=400, warmup=200,
                            seconds=120.0)
    args = parser.parse_args(argv)
    note = machine_note()

    rows: list[tuple[str, LoadResult, int, float]] = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        bare = start_bare(folder, process=True)
        try:
            processed = counter(folder / "bare.sqlite3",
                                "SELECT count(*) FROM inbound WHERE processed = 1")
            rows.append(("bare handler + raw row writes",
                         *run(bare.url + WHATSAPP_PATH, processed, args, "1")))
        finally:
            bare.stop()
        providers = start_providers(folder)
        gateway = start_gateway("serve", folder, folder / "data", providers.url)
        try:
            processed = counter(folder / "data" / "gateway.sqlite3",
                                "SELECT count(*) FROM inbound_messages "
                                "WHERE processed_at IS NOT NULL")
            rows.append(("gateway serve (SQLite)",
                         *run(gateway.url + WHATSAPP_PATH, processed, args, "2")))
        finally:
            gateway.stop()
            providers.stop()

    print(f"\nbefore the run: {note}")
    print(f"End to end on SQLite: {args.messages} WhatsApp messages from {args.senders} "
          f"senders, {args.connections} connections")
    print(f"{'server':<32}{'acked':>7}{'ack/s':>8}{'processed':>11}{'seconds':>9}"
          f"{'processed/s':>13}")
    for name, acknowledged, done, seconds in rows:
        print(f"{name:<32}{acknowledged.statuses.get(200, 0):>7}{acknowledged.rate:>8.0f}"
              f"{done:>11}{seconds:>9.1f}{done / seconds:>13.0f}")
    rate = rows[-1][2] / rows[-1][3]
    print(f"gateway: {rate:.0f} messages/s end to end (goal 2,000/s: "
          f"{'met' if rate >= 2000 else 'missed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
