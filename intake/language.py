"""Which language a person writes in, as far as intake needs it before they confirm it.

The guess weighs three kinds of evidence, strongest first:
1. the script: Han characters are Chinese, Arabic script is Arabic, Cyrillic is Russian (when
   the deployment supports that language);
2. a detector's reading of the words, for Latin-script text; a few words of French, Spanish
   or Portuguese look alike, so the reading counts for more the more letters there are;
3. what the channel knows about the sender: the language their app is set to
   (`hints["language"]`, e.g. Telegram's language_code) and the country of their phone number
   (`hints["country"]`), as priors.
With no letters to read (empty, emoji, numbers) the priors decide, then the deployment's
default language. The guess is only ever a first guess: the person confirms the language.

The detectors themselves (fastText, langdetect, lingua) live in the gateway; intake only knows
the `LanguageDetector` protocol.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Protocol

_HAN = re.compile("[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff\U00020000-\U0002a6df]")
# The language each script gives away among those the form offers.
_SCRIPTS = {
    "zh": _HAN,
    "ar": re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]"),
    "ru": re.compile("[\u0400-\u052f]"),
}

# The languages people from a country most likely write in, the most likely first: the country
# of a phone number is a prior, never a decision. Countries of the mining regions and of the
# languages the form offers; a language the deployment does not support is skipped.
COUNTRY_LANGUAGES: dict[str, tuple[str, ...]] = {
    "CD": ("fr", "sw"), "CG": ("fr",), "CF": ("fr",), "CM": ("fr", "en"), "GA": ("fr",),
    "GN": ("fr",), "ML": ("fr",), "BF": ("fr",), "NE": ("fr",), "SN": ("fr",), "CI": ("fr",),
    "TG": ("fr",), "BJ": ("fr",), "TD": ("fr", "ar"), "MG": ("fr",), "BI": ("fr", "sw"),
    "RW": ("fr", "en", "sw"), "DJ": ("fr", "ar"), "FR": ("fr",), "BE": ("fr",), "CH": ("fr",),
    "CA": ("en", "fr"), "HT": ("fr",),
    "TZ": ("sw", "en"), "KE": ("sw", "en"), "UG": ("en", "sw"),
    "ZM": ("en",), "ZW": ("en",), "MW": ("en",), "NG": ("en",), "GH": ("en",), "SL": ("en",),
    "LR": ("en",), "ZA": ("en",), "NA": ("en",), "BW": ("en",), "GB": ("en",), "US": ("en",),
    "AU": ("en",), "PH": ("en",), "PG": ("en",),
    "MZ": ("pt",), "AO": ("pt",), "GW": ("pt",), "CV": ("pt",), "ST": ("pt",), "TL": ("pt",),
    "BR": ("pt",), "PT": ("pt",),
    "ES": ("es",), "MX": ("es",), "GT": ("es",), "HN": ("es",), "SV": ("es",), "NI": ("es",),
    "CR": ("es",), "PA": ("es",), "CU": ("es",), "DO": ("es",), "CO": ("es",), "VE": ("es",),
    "EC": ("es",), "PE": ("es",), "BO": ("es",), "CL": ("es",), "AR": ("es",), "PY": ("es",),
    "UY": ("es",), "GQ": ("es", "fr"),
    "ID": ("id",),
    "CN": ("zh",), "HK": ("zh", "en"), "MO": ("zh", "pt"), "TW": ("zh",), "SG": ("en", "zh"),
    "RU": ("ru",), "BY": ("ru",), "KZ": ("ru",), "KG": ("ru",), "TJ": ("ru",), "UZ": ("ru",),
    "TM": ("ru",),
    "EG": ("ar",), "SD": ("ar", "en"), "LY": ("ar",), "TN": ("ar", "fr"), "DZ": ("ar", "fr"),
    "MA": ("ar", "fr"), "MR": ("ar", "fr"), "SA": ("ar",), "AE": ("ar",), "OM": ("ar",),
    "YE": ("ar",), "JO": ("ar",), "IQ": ("ar",), "SY": ("ar",), "LB": ("ar", "fr"),
    "KW": ("ar",), "QA": ("ar",), "BH": ("ar",), "PS": ("ar",),
}

# How much more likely a language is, before reading the words, when the sender's app is set
# to it, and when it is the first (or another) language of their phone number's country.
APP_LANGUAGE_WEIGHT = 4.0
COUNTRY_WEIGHTS = (3.0, 2.0)
# At this many letters a detector's reading counts half; the rest is the priors.
HALF_RELIABLE_LETTERS = 8

Scores = Mapping[str, float]


class LanguageDetector(Protocol):
    """Reads the words of a text; restricted to the languages the deployment supports."""

    def detect(self, text: str) -> Scores:
        """A probability for each language the text may be in; empty when it cannot tell.

        The probabilities may add up to less than 1 when the text looks like none of them.
        """
        ...


class ScriptOnly:
    """No reading of the words: the script and the channel's hints decide."""

    def detect(self, text: str) -> Scores:
        """Nothing: this detector cannot tell Latin-script languages apart."""
        return {}


def has_han(text: str) -> bool:
    """Whether the text holds Chinese characters."""
    return _HAN.search(text) is not None


def script_language(text: str, supported: Sequence[str]) -> str | None:
    """The supported language the text's script gives away; the commonest script wins."""
    counts = {language: len(script.findall(text))
              for language, script in _SCRIPTS.items() if language in supported}
    language, count = max(counts.items(), key=lambda item: item[1], default=(None, 0))
    return language if count else None


def detect_language(text: str, supported: Sequence[str],
                    detector: LanguageDetector) -> str | None:
    """What the text alone says, without hints; None when it gives nothing away."""
    script = script_language(text, supported)
    if script:
        return script
    reading = _reading(text, supported, detector)
    if not reading:
        return None
    return max(supported, key=lambda language: reading.get(language, 0.0))


def guess_language(text: str, hints: Mapping[str, str], supported: Sequence[str],
                   detector: LanguageDetector | None = None, default: str = "en") -> str:
    """A first guess to confirm with the person: the script, the words, the channel's hints."""
    script = script_language(text, supported)
    if script:
        return script
    prior = language_priors(hints, supported)
    reading = _reading(text, supported, detector or ScriptOnly())
    letters = sum(ch.isalpha() for ch in text)
    weight = letters / (letters + HALF_RELIABLE_LETTERS) if reading else 0.0
    scores = {language: prior[language] * ((1 - weight) / len(supported)
                                           + weight * reading.get(language, 0.0))
              for language in supported}
    return max(supported, key=lambda language: (scores[language], language == default))


def language_priors(hints: Mapping[str, str], supported: Sequence[str]) -> dict[str, float]:
    """How likely each supported language is before reading the words (relative weights)."""
    prior = dict.fromkeys(supported, 1.0)
    app_language = _base_code(hints.get("language"))
    if app_language in prior:
        prior[app_language] *= APP_LANGUAGE_WEIGHT
    country = (hints.get("country") or "").strip().upper()
    for rank, language in enumerate(COUNTRY_LANGUAGES.get(country, ())):
        if language in prior:
            prior[language] *= COUNTRY_WEIGHTS[min(rank, len(COUNTRY_WEIGHTS) - 1)]
    return prior


def _reading(text: str, supported: Sequence[str], detector: LanguageDetector) -> dict[str, float]:
    """The detector's probabilities for the supported languages; empty without letters."""
    if not any(ch.isalpha() for ch in text):
        return {}
    return {language: float(probability) for language, probability in detector.detect(text).items()
            if language in supported and probability > 0}


def _base_code(code: str | None) -> str:
    """'pt' for 'pt-BR', 'zh' for 'zh_Hans'."""
    return (code or "").split("-")[0].split("_")[0].strip().lower()
