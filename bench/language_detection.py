"""How well each language detector guesses the language of a first message, and how fast.

    .venv/bin/python bench/language_detection.py [--lines bench/data/language_lines.tsv]

Every detector is run through the product's own path, `intake.language.guess_language` with
no channel hints (the script rules, then the detector, then the default, English), on short
messages written for this benchmark in the nine languages of the form. Accuracy is given per
length bucket and per language; the time is the mean per message once the detector is loaded.
The load (the first detection) and the memory the detector adds (growth of the peak resident
size) are measured in a fresh process each. "always en" is the baseline of no detection.

A last table shows what the channel's hints add: each message again, with the country of a
phone number from a place where its language is spoken (COUNTRY_OF), with the person's app
set to their language, and with the app set to English (French for English messages).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.language_detection import BACKENDS, build_detector  # noqa: E402
from intake.form import load_form  # noqa: E402
from intake.language import LanguageDetector, guess_language  # noqa: E402

LINES = ROOT / "bench" / "data" / "language_lines.tsv"
DETECTORS = (*BACKENDS, "lingua+fasttext")
BUCKETS = (("≤20", 0, 20), ("21–60", 21, 60), (">60", 61, 10**9))
TIMING_PASSES = 3
# A phone number's country for messages in each language; for English and Swahili one where
# another language comes first, so the prior is sometimes wrong.
COUNTRY_OF = {"en": "KE", "fr": "CD", "sw": "CD", "pt": "MZ", "es": "PE", "id": "ID", "zh": "CN",
              "ru": "KZ", "ar": "SD"}

Sample = tuple[str, str]
Guess = Callable[[str], str]


def read_samples(path: Path) -> list[Sample]:
    """(language, text) pairs from a lang<TAB>text file; '#' starts a comment line."""
    samples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            language, text = line.split("\t", 1)
            samples.append((language, text))
    return samples


def bucket_of(text: str) -> str:
    """The length bucket of a message, by characters."""
    return next(name for name, low, high in BUCKETS if low <= len(text) <= high)


def accuracy(guess: Guess, samples: Sequence[Sample]) -> dict[str, float]:
    """Accuracy in % per bucket, per language and in all, and microseconds per message."""
    guess(samples[0][1])  # load the detector outside the timing
    guesses: list[str] = []
    passes = []
    for _ in range(TIMING_PASSES):
        started = time.perf_counter()
        guesses = [guess(text) for _, text in samples]
        passes.append(time.perf_counter() - started)
    result = {"us": statistics.median(passes) / len(samples) * 1e6}
    groups = [name for name, _, _ in BUCKETS] + sorted({lang for lang, _ in samples}) + ["all"]
    for group in groups:
        hits = [g == lang for g, (lang, text) in zip(guesses, samples, strict=True)
                if group in ("all", lang, bucket_of(text))]
        result[group] = 100 * sum(hits) / len(hits)
    return result


def with_hints(detector: LanguageDetector, supported: Sequence[str], samples: Sequence[Sample],
               hints: Callable[[str], dict[str, str]]) -> float:
    """Accuracy in % when each message comes with these hints about its sender."""
    hits = sum(guess_language(text, hints(lang), supported, detector, "en") == lang
               for lang, text in samples)
    return 100 * hits / len(samples)


def cost_in_fresh_process(name: str, lines: Path) -> tuple[str, str]:
    """(first detection in ms, MB added) for a detector, measured in a new process."""
    child = subprocess.run([sys.executable, __file__, "--lines", str(lines), "--cost-of", name],
                           capture_output=True, text=True, check=True)
    first_ms, megabytes = child.stdout.split()
    return first_ms, megabytes


def print_cost(name: str, supported: Sequence[str], samples: Sequence[Sample]) -> int:
    """Print the first detection's milliseconds and the peak resident growth in MB."""
    before = peak_resident_kib()
    detector = build_detector(name, supported)
    started = time.perf_counter()
    detector.detect(samples[0][1])
    first_ms = (time.perf_counter() - started) * 1000
    for _, text in samples:
        detector.detect(text)
    print(f"{first_ms:.0f} {(peak_resident_kib() - before) / 1024:.0f}")
    return 0


def peak_resident_kib() -> int:
    """This process's peak resident size (VmHWM; getrusage would count the parent's too)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """A Markdown table, so the output can go into the README as it is."""
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=Path, default=LINES)
    parser.add_argument("--cost-of", choices=DETECTORS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    samples = read_samples(args.lines)
    supported = load_form().languages
    if args.cost_of:
        return print_cost(args.cost_of, supported, samples)

    detectors = {name: build_detector(name, supported) for name in DETECTORS}
    guesses: dict[str, Guess] = {"always en": lambda text: "en"}
    for name, detector in detectors.items():
        guesses[name] = partial(guess_language, hints={}, supported=supported,
                                detector=detector, default="en")
    results = {name: accuracy(guess, samples) for name, guess in guesses.items()}
    costs = {name: cost_in_fresh_process(name, args.lines) for name in detectors}

    counts = {name: sum(bucket_of(text) == name for _, text in samples) for name, _, _ in BUCKETS}
    print(f"{len(samples)} messages in {len(supported)} languages ({args.lines.name}); "
          "accuracy in %, by length in characters")
    print_table(
        ["detector", *(f"{name} ({counts[name]})" for name, _, _ in BUCKETS), "all",
         "µs/message", "first call ms", "MB"],
        [[name, *(f"{r[bucket]:.1f}" for bucket, _, _ in BUCKETS), f"{r['all']:.1f}",
          f"{r['us']:.0f}", *costs.get(name, ("0", "0"))] for name, r in results.items()])
    print()
    languages = sorted({lang for lang, _ in samples})
    print("accuracy in % by language")
    print_table(["detector", *languages],
                [[name, *(f"{r[lang]:.0f}" for lang in languages)] for name, r in results.items()])
    print()
    print("accuracy in % with the channel's hints")
    scenarios: dict[str, Callable[[str], dict[str, str]]] = {
        "no hints": lambda lang: {},
        "phone country": lambda lang: {"country": COUNTRY_OF[lang]},
        "app in their language": lambda lang: {"language": lang},
        "app in English": lambda lang: {"language": "fr" if lang == "en" else "en"},
    }
    print_table(["detector", *scenarios],
                [[name, *(f"{with_hints(detector, supported, samples, hints):.1f}"
                          for hints in scenarios.values())]
                 for name, detector in detectors.items()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
