"""Machine translation backends, chosen by GATEWAY_TRANSLATION_BACKEND.

`argos` (the default) runs installed Argos Translate packages in this process; `libretranslate`
asks a LibreTranslate server; `none` translates nothing. Without a backend, or without a
package for a language pair, jobs wait: the application is complete and in the queue, marked
"translation pending", and is filled in when a package is installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from gateway.settings import Settings
from intake.translation import Translation, TranslationUnavailable, Translator


class NoTranslator:
    """No backend: every job waits; `reason` says why, once, in the log."""

    engine = "none"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def supports(self, source: str, target: str) -> bool:
        """Nothing is supported."""
        return False

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[Translation]:
        """Never translates."""
        raise TranslationUnavailable(self.reason)


def build_translator(settings: Settings) -> Translator:
    """The configured backend, or a NoTranslator saying why there is none."""
    if settings.translation_backend == "none":
        return NoTranslator("machine translation is off (GATEWAY_TRANSLATION_BACKEND=none)")
    if settings.translation_backend == "libretranslate":
        from gateway.translation.libretranslate import LibreTranslateTranslator

        if not settings.libretranslate_url:
            return NoTranslator("GATEWAY_TRANSLATION_BACKEND=libretranslate needs "
                                "GATEWAY_LIBRETRANSLATE_URL")
        return LibreTranslateTranslator(settings.libretranslate_url,
                                        settings.libretranslate_api_key.get_secret_value(),
                                        settings.translation_timeout_seconds)
    if not argos_installed():
        return NoTranslator("argostranslate is not installed; see the README, "
                            "\"Machine translation\"")
    from gateway.translation.argos import ArgosTranslator

    return ArgosTranslator(settings.argos_dir, threads=settings.translation_threads)


def argos_installed() -> bool:
    """Whether the optional `translation` extra (argostranslate, CTranslate2) is installed."""
    return all(importlib.util.find_spec(name) is not None
               for name in ("argostranslate", "ctranslate2", "sentencepiece"))
