"""How fast the translation worker translates, and what it costs a conversation running beside it.

    .venv/bin/python bench/translation.py [--sentences 96] [--filings 20] [--threads 1]

(a) Sentences per second: the translation worker (claim from SQLite, translate with the
    installed Argos package, record) against CTranslate2's raw `translate_batch` over the same
    sentences, on the same model, in the same run. The model is built here: a Transformer of
    the size of Argos's packages (6 encoder and 6 decoder layers, width 512, 8 heads, feed-forward
    2048, 32,000-piece vocabulary, int8) with random weights, packaged as an `.argosmodel` and
    installed with `gateway.translation.argos` like any package. Random weights never end a
    sentence, so both sides decode exactly --output-tokens pieces per sentence, with the beam
    argostranslate uses (4).
(b) Conversation-turn latency: `IntakeService.handle` on SQLite for every line of --filings
    complete applications, once with no translation worker and once with the worker busy
    translating a backlog in its thread (as `gateway serve` runs it).
Needs the `translation` extra. Takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from gateway.runtime import Runtime, open_runtime  # noqa: E402
from gateway.service import now_utc  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.translation import argos  # noqa: E402
from gateway.translation.worker import TranslationWorker  # noqa: E402
from intake.messages import InboundMessage  # noqa: E402
from storage import translations  # noqa: E402
from storage.db import transaction  # noqa: E402
from storage.models import FieldTranslation  # noqa: E402
from storage.repository import new_conversation  # noqa: E402
from tests.argos_models import REALISTIC, build_package  # noqa: E402
from tests.filings import ENGLISH_FILING  # noqa: E402

# Sentences as applicants write them, made distinct by place and date so that none is
# translated once for several jobs (the worker would skip the repeats; raw CTranslate2 cannot).
SENTENCES = [
    "Since {month} the river next to the mine at {place} is orange.",
    "Children who bathe in the river near {place} have rashes on their arms and legs.",
    "The company started blasting at {place} in {month} without telling the village.",
    "Our wells near {place} dried up after the new pit was dug.",
    "Trucks carrying ore pass through {place} day and night and the dust covers our fields.",
    "The guards at the {place} concession beat two young men who were collecting scrap.",
    "We were promised compensation for our land at {place} in {month}, but nobody was paid.",
    "The waste water from the smelter flows into the rice fields of {place}.",
    "Since {month} the fish in the lake near {place} have been dying.",
    "Workers at the {place} site are not given masks or gloves.",
    "A tailings dam above {place} cracked in {month} and the villagers are afraid.",
    "The company moved the graves of our ancestors at {place} without asking the families.",
]
PLACES = ["Kasulo", "Kolwezi", "Likasi", "Fungurume", "Mutoshi", "Kambove", "Tenke", "Luisha"]
MONTHS = ["March 2026", "April 2026", "May 2026", "June 2026", "July 2026", "August 2026"]


def sentences(count: int) -> list[str]:
    """`count` distinct sentences."""
    made = [template.format(place=place, month=month) for place in PLACES for month in MONTHS
            for template in SENTENCES]
    step = max(1, len(made) // count)
    return made[::step][:count]


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# -- (a) sentences per second ----------------------------------------------------------------


def raw_ctranslate2(package: argos.ArgosPackage, texts: list[str], threads: int,
                    output_tokens: int) -> float:
    """Sentences per second of one `translate_batch` over every sentence, model loaded."""
    import ctranslate2
    from argostranslate import settings

    model = ctranslate2.Translator(str(package.path / "model"), device="cpu",
                                   compute_type=settings.compute_type, intra_threads=threads)
    tokens = [package.package.tokenizer.encode(text) for text in texts]
    options = {"beam_size": settings.beam_size, "max_batch_size": 1024, "batch_type": "tokens",
               "min_decoding_length": 1, "max_decoding_length": output_tokens}
    model.translate_batch(tokens[:2], **options)  # warm-up
    started = time.perf_counter()
    model.translate_batch(tokens, **options)
    return len(texts) / (time.perf_counter() - started)


def queue_jobs(runtime: Runtime, texts: list[str]) -> None:
    """One English→Chinese job per text, as answers sent after submission would make."""
    with transaction(runtime.sessions) as session:
        conversation = new_conversation(session, "bench", uuid.uuid4().hex, now_utc())
        for text in texts:
            translations.queue_supplement(session, conversation.id, None, text, "en", now_utc())


def worker_throughput(runtime: Runtime, worker: TranslationWorker, texts: list[str]) -> float:
    """Sentences per second of the worker's rounds over `texts`, model loaded."""
    queue_jobs(runtime, ["Warm up the model."])
    worker.run_round(now_utc())
    queue_jobs(runtime, texts)
    started = time.perf_counter()
    translated = 0
    while translated < len(texts):
        done = worker.run_round(now_utc())
        if not done.busy:
            raise RuntimeError(f"the worker stopped after {translated} of {len(texts)}")
        translated += done.translated + done.reused
    return len(texts) / (time.perf_counter() - started)


# -- (b) conversation-turn latency ------------------------------------------------------------


def turn_latencies(runtime: Runtime, filings: int) -> list[float]:
    """Milliseconds of each `IntakeService.handle` over `filings` complete applications."""
    latencies = []
    for _ in range(filings):
        sender = uuid.uuid4().hex
        for line in ENGLISH_FILING:
            message = InboundMessage("bench", sender, uuid.uuid4().hex, line)
            started = time.perf_counter()
            runtime.intake.handle(message)
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def pending(runtime: Runtime) -> int:
    with transaction(runtime.sessions) as session:
        return sum(translations.pending_by_pair(session).values())


def done_count(runtime: Runtime) -> int:
    with transaction(runtime.sessions) as session:
        return int(session.scalar(select(func.count()).where(FieldTranslation.state == "done"))
                   or 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sentences", type=int, default=96)
    parser.add_argument("--filings", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1,
                        help="CTranslate2 threads (GATEWAY_TRANSLATION_THREADS)")
    parser.add_argument("--output-tokens", type=int, default=32)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        texts = sentences(args.sentences)
        started = time.perf_counter()
        lines = [template.format(place=p, month=m) for template in SENTENCES for p in PLACES
                 for m in MONTHS] + ENGLISH_FILING
        archive = build_package(folder / "files", "en", "zh", size=REALISTIC, lines=lines)
        settings = Settings(data_dir=folder / "data", translation_threads=args.threads,
                            worker_interval_seconds=0.2)
        argos.install_files(settings.argos_dir, [archive])
        print(f"model built and installed in {time.perf_counter() - started:.0f} s "
              f"({archive.stat().st_size / 2**20:.0f} MiB)", file=sys.stderr)

        runtime = open_runtime(settings)
        try:
            translator = argos.ArgosTranslator(settings.argos_dir, threads=args.threads,
                                               max_decoding_length=args.output_tokens)
            worker = TranslationWorker(runtime, translator)
            package = argos.installed_packages(settings.argos_dir)[0]
            tokens = statistics.mean(len(package.package.tokenizer.encode(t)) for t in texts)
            raw = raw_ctranslate2(package, texts, args.threads, args.output_tokens)
            through_worker = worker_throughput(runtime, worker, texts)

            turn_latencies(runtime, 1)  # loads the language detector, warms the caches
            quiet = turn_latencies(runtime, args.filings)
            queue_jobs(runtime, sentences(len(SENTENCES) * len(PLACES) * len(MONTHS)))
            before = done_count(runtime)
            stop = threading.Event()
            thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
            thread.start()
            time.sleep(1.0)  # the worker is translating
            loaded = turn_latencies(runtime, args.filings)
            stop.set()
            thread.join()
            during = done_count(runtime) - before
            left = pending(runtime)
        finally:
            runtime.close()

    print(f"\n(a) English→Chinese, {len(texts)} sentences of {tokens:.0f} pieces on average, "
          f"{args.output_tokens} pieces out, beam 4, {args.threads} thread(s)")
    print(f"{'path':<42}{'sentences/s':>12}")
    print(f"{'raw CTranslate2 translate_batch':<42}{raw:>12.1f}")
    print(f"{'translation worker (SQLite jobs)':<42}{through_worker:>12.1f}")
    print(f"{'worker / raw':<42}{through_worker / raw:>11.0%}")
    print(f"\n(b) conversation turns (IntakeService.handle, SQLite), {len(quiet)} turns each")
    print(f"{'':<34}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, values in (("no translation worker", quiet),
                         ("translation worker busy", loaded)):
        print(f"{name:<34}{percentile(values, 0.50):>9.1f}{percentile(values, 0.95):>9.1f}"
              f"{percentile(values, 0.99):>9.1f}{max(values):>9.1f}")
    print(f"(the worker translated {during} texts during the second run; {left} still waiting)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
