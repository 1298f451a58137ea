"""How fast `gateway serve` acknowledges signed WhatsApp webhooks, against a bare handler.

    .venv/bin/python bench/webhook_ack.py [--messages 6000] [--senders 1000] [--connections 32]

Both servers run in processes of their own on 127.0.0.1 and get the same traffic: text messages
from --senders people filing an application line by line (interleaved, so consecutive requests
come from different people), each a `messages` webhook signed with X-Hub-Signature-256, over
--connections concurrent connections, each connection sending its next request when the answer
to the last one came. The baseline is a bare aiohttp handler that inserts the raw body into
SQLite (WAL, the gateway's pragmas) and answers 200 (bench/load.py). The gateway runs with its
defaults (SQLite under its data folder, the default language detector), WhatsApp configured and
its replies going to a local fake of the Cloud API; after each answer it processes the message
and sends the replies, as in production, on the same two cores.

A warm-up of --warmup messages goes first to each server (the gateway loads its language
detector at the first message). The load stops after --messages requests or --seconds,
whichever comes first. Goal: the gateway acknowledges at least half as many messages per second
as the bare handler, with p99 under 25 ms.
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
    LoadResult,
    campaign,
    load_arguments,
    machine_note,
    post_all,
    start_bare,
    start_gateway,
    start_providers,
)


def run_load(url: str, args: argparse.Namespace, tag: str) -> LoadResult:
    warmup = campaign(args.warmup, min(args.warmup, args.senders), f"{tag}0")
    asyncio.run(post_all(url, warmup, args.connections, args.seconds))
    time.sleep(args.settle)
    load = campaign(args.messages, args.senders, f"{tag}1")
    return asyncio.run(post_all(url, load, args.connections, args.seconds))


def main(argv: Sequence[str] | None = None) -> int:
    parser = load_arguments(__doc__.split("\n", 1)[0], messages=6000, senders=1000, warmup=300,
                            seconds=60.0, seconds_help="time limit of one load")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="pause after the warm-up (the gateway processes it)")
    args = parser.parse_args(argv)
    note = machine_note()

    results: dict[str, LoadResult] = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        bare = start_bare(folder)
        try:
            results["bare aiohttp + SQLite insert"] = run_load(bare.url + WHATSAPP_PATH, args,
                                                               "1")
        finally:
            bare.stop()
        providers = start_providers(folder)
        gateway = start_gateway("serve", folder, folder / "data", providers.url)
        try:
            results["gateway serve"] = run_load(gateway.url + WHATSAPP_PATH, args, "2")
        finally:
            gateway.stop()
            providers.stop()

    print(f"\nbefore the run: {note}")
    print(f"WhatsApp webhooks, {args.connections} connections, {args.senders} senders")
    print(f"{'server':<32}{'answered':>9}{'non-200':>9}{'msg/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for name, result in results.items():
        other = result.requests - result.statuses.get(200, 0) + result.failures
        print(f"{name:<32}{result.requests:>9}{other:>9}{result.rate:>9.0f}"
              f"{result.percentile(0.50):>9.1f}{result.percentile(0.99):>9.1f}")
    bare_rate = results["bare aiohttp + SQLite insert"].rate
    gateway_result = results["gateway serve"]
    share = gateway_result.rate / bare_rate if bare_rate else 0.0
    p99 = gateway_result.percentile(0.99)
    print(f"gateway / bare: {share:.0%} (goal ≥ 50 %: {'met' if share >= 0.5 else 'missed'}); "
          f"gateway p99 {p99:.1f} ms (goal < 25 ms: {'met' if p99 < 25 else 'missed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
