"""Resident memory of `gateway serve`: idle, and with 10,000 open drafts.

    .venv/bin/python bench/memory.py [--drafts 10000]

`gateway serve` runs with its defaults (SQLite, the default language detector, the default
translation backend) and WhatsApp configured, replying to a local fake of the Cloud API. Its
resident set size (VmRSS) is read: right after start with nothing received; after the first
message (which loads the language detector); and after --drafts people have each written a
first message, so that --drafts conversations are open drafts waiting for their language,
every message processed and the process idle again. The baseline, in the same run, is the bare
aiohttp handler of bench/load.py (SQLite insert), idle and after the same messages. Bounded:
the drafts are sent over 32 connections and waited for at most --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import (  # noqa: E402
    WHATSAPP_PATH,
    Server,
    campaign,
    machine_note,
    post_all,
    start_bare,
    start_gateway,
    start_providers,
)
from bench.processing import counter, wait_until  # noqa: E402

IDLE_SECONDS = 3.0


def settled_rss(server: Server) -> float:
    """Resident MiB after a few idle seconds (background rounds have run)."""
    time.sleep(IDLE_SECONDS)
    return server.rss_mib()


def measure(server: Server, processed: str | None, database: Path, drafts: int,
            seconds: float) -> list[float]:
    """RSS idle, after one message, after `drafts` first messages from as many people."""
    count = counter(database, processed) if processed else None
    figures = [settled_rss(server)]
    url = server.url + WHATSAPP_PATH
    asyncio.run(post_all(url, campaign(1, 1, "0"), 1, seconds))
    if count:
        wait_until(count, 1, time.perf_counter() + seconds)
    figures.append(settled_rss(server))
    started = time.perf_counter()
    result = asyncio.run(post_all(url, campaign(drafts, drafts, "1"), 32, seconds))
    if count:
        wait_until(count, 1 + result.statuses.get(200, 0), started + seconds)
    figures.append(settled_rss(server))
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--drafts", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=420.0)
    args = parser.parse_args(argv)
    note = machine_note()

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        bare = start_bare(folder)
        try:
            rows.append(("bare aiohttp + SQLite insert",
                         measure(bare, None, folder / "bare.sqlite3", args.drafts,
                                 args.seconds)))
        finally:
            bare.stop()
        providers = start_providers(folder)
        gateway = start_gateway("serve", folder, folder / "data", providers.url)
        try:
            database = folder / "data" / "gateway.sqlite3"
            rows.append(("gateway serve", measure(
                gateway, "SELECT count(*) FROM inbound_messages WHERE processed_at IS NOT NULL",
                database, args.drafts, args.seconds)))
            drafts = counter(database, "SELECT count(*) FROM conversations "
                                       "WHERE status = 'draft'")()
        finally:
            gateway.stop()
            providers.stop()

    print(f"\nbefore the run: {note}")
    print(f"Resident memory (VmRSS, MiB); the gateway ended with {drafts} open drafts")
    print(f"{'process':<32}{'idle':>8}{'1 message':>11}{f'{args.drafts} drafts':>14}")
    for name, (idle, first, loaded) in rows:
        print(f"{name:<32}{idle:>8.0f}{first:>11.0f}{loaded:>14.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
