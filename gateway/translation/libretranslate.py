"""A self-hosted LibreTranslate server (or a pool behind one address) as the translation backend.

Its documented API: `GET /languages` lists each language with the targets it translates into;
`POST /translate` takes JSON `{"q": [texts], "source", "target", "format": "text", "api_key"}`
and answers `{"translatedText": [texts]}`, or `{"error": "..."}` with 400, 403, 429 or 500.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from intake.translation import Translation, TranslationUnavailable, base_language

log = logging.getLogger(__name__)
ENGINE = "libretranslate"
LANGUAGES_TTL_SECONDS = 300.0
UNREACHABLE_RETRY_SECONDS = 30.0
# Answers that say the server cannot take work now, whatever the text: the jobs wait.
UNAVAILABLE_STATUSES = frozenset({401, 402, 403, 404, 429, 502, 503, 504})


class LibreTranslateTranslator:
    """Translates through a LibreTranslate server's HTTP API."""

    engine = ENGINE

    def __init__(self, url: str, api_key: str = "", timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self._lock = threading.Lock()
        self._languages: dict[str, set[str]] = {}
        self._version = ""
        self._fresh_until = float("-inf")

    def supports(self, source: str, target: str) -> bool:
        """Whether the server lists the pair (languages are asked again every few minutes)."""
        languages = self._current_languages()
        code = _server_code(source, languages)
        return code is not None and _server_code(target, {t: set() for t in languages[code]}) \
            is not None

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[Translation]:
        """One request with every text of the batch."""
        languages = self._current_languages()
        source_code = _server_code(source, languages)
        if source_code is None:
            raise TranslationUnavailable(f"the LibreTranslate server has no {source}")
        target_code = _server_code(target, {t: set() for t in languages[source_code]})
        if target_code is None:
            raise TranslationUnavailable(f"the LibreTranslate server has no {source}→{target}")
        body: dict[str, Any] = {"q": list(texts), "source": source_code,
                                "target": target_code, "format": "text"}
        if self.api_key:
            body["api_key"] = self.api_key
        answer = self._request("POST", "/translate", body)
        translated = answer.get("translatedText") if isinstance(answer, dict) else None
        if not isinstance(translated, list) or len(translated) != len(texts) or \
                not all(isinstance(text, str) for text in translated):
            raise ValueError(f"unexpected answer from LibreTranslate: {str(answer)[:200]}")
        return [Translation(text, ENGINE, self._version, source, target) for text in translated]

    def _current_languages(self) -> dict[str, set[str]]:
        """{source code: target codes} as the server lists them; {} while it is unreachable."""
        with self._lock:
            now = time.monotonic()
            if now < self._fresh_until:
                return self._languages
            try:
                listed = self._request("GET", "/languages")
                self._languages = {str(entry["code"]): set(entry.get("targets") or [])
                                   for entry in listed}
                self._version = self._server_version()
                self._fresh_until = now + LANGUAGES_TTL_SECONDS
            except (TranslationUnavailable, RuntimeError, TimeoutError, ValueError, KeyError,
                    TypeError) as error:
                log.warning("LibreTranslate at %s: cannot list languages (%s)", self.url, error)
                self._languages = {}
                self._fresh_until = now + UNREACHABLE_RETRY_SECONDS
            return self._languages

    def _server_version(self) -> str:
        """"LibreTranslate 1.6.4" from the server's API description, if it has one."""
        try:
            spec = self._request("GET", "/spec")
            return f"LibreTranslate {spec['info']['version']}"
        except (TranslationUnavailable, RuntimeError, TimeoutError, ValueError, KeyError,
                TypeError):
            return ""

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """JSON in, JSON out; unreachable or refusing servers raise TranslationUnavailable."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            message = _error_message(error)
            if error.code in UNAVAILABLE_STATUSES:
                raise TranslationUnavailable(
                    f"LibreTranslate answered {error.code}: {message}") from error
            raise RuntimeError(f"LibreTranslate answered {error.code}: {message}") from error
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise TimeoutError(f"LibreTranslate did not answer in {self.timeout:g} s") \
                    from error
            raise TranslationUnavailable(f"LibreTranslate at {self.url} is unreachable: "
                                         f"{error.reason}") from error


def _server_code(code: str, languages: dict[str, Any]) -> str | None:
    """The server's code for ours: the same, or a regional variant ("zh" → "zh-Hans")."""
    if code in languages:
        return code
    variants = sorted(c for c in languages if base_language(c) == base_language(code))
    return variants[0] if variants else None


def _error_message(error: urllib.error.HTTPError) -> str:
    """The `error` field of an error answer, or its first bytes."""
    raw = error.read()[:500]
    try:
        return str(json.loads(raw)["error"])
    except (ValueError, KeyError, TypeError):
        return raw.decode("utf-8", errors="replace") or str(error.reason)
