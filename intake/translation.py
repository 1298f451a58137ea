"""Machine translation for the secretariat: what gets translated, and the translator interface.

The working languages of the mechanism are Chinese and English, and the Chinese text prevails
(Ch.6 §5.1, Ch.7 §2): every free-text answer is translated into both, unless it is already in
that language. A translation never replaces the original; it is kept beside it, labelled as
machine translation. Pure: the gateway chooses a backend (`gateway.translation`) and runs it
off the conversation path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

from intake.form import Form

# Chinese first: it prevails where the two working languages differ.
WORKING_LANGUAGES = ("zh", "en")
# Answers people type in their own words; choices, numbers and contacts are not translated.
FREE_TEXT_TYPES = frozenset({"text", "longtext", "names"})
# The evidence list: its descriptions are translated too, item by item (files are not).
EVIDENCE_TYPE = "evidence"
# Text sent after submission (more facts, an answer to a request for more material).
SUPPLEMENT = "supplement"


@dataclass(frozen=True)
class Translation:
    """One text in another language, with what produced it."""

    text: str
    engine: str
    package_version: str
    source_language: str
    target_language: str
    machine_translation: bool = True
    # The language a pivot went through ("en" for French → English → Chinese), if any.
    pivot: str | None = None


class TranslationUnavailable(Exception):
    """The translator cannot take this language pair now (no model, server unreachable).

    Not the text's fault: the job waits, and no attempt is counted against it.
    """


class Translator(Protocol):
    """A machine translation backend: one batch of texts of one language pair at a time."""

    engine: str

    def supports(self, source: str, target: str) -> bool:
        """Whether texts in `source` can be translated into `target` now."""
        ...

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[Translation]:
        """The translations of `texts`, in the same order."""
        ...


@dataclass(frozen=True)
class SourceText:
    """One text to translate: a field's answer, one name of a list, or one evidence item."""

    field_key: str
    item: int
    text: str


def targets_for(source_language: str) -> tuple[str, ...]:
    """The working languages a text in `source_language` is translated into."""
    base = base_language(source_language)
    return tuple(target for target in WORKING_LANGUAGES if target != base)


def base_language(code: str) -> str:
    """The ISO 639-1 part of a language tag ("zh-Hant" → "zh", "pt_BR" → "pt")."""
    return code.replace("_", "-").split("-")[0].lower()


def translatable_keys(form: Form) -> frozenset[str]:
    """The field keys whose answers are (or hold) free text."""
    return frozenset(step.key for step in form.steps
                     if step.type in FREE_TEXT_TYPES or step.type == EVIDENCE_TYPE)


def free_texts(form: Form, answers: dict[str, Any], keys: Iterable[str] | None = None
               ) -> list[SourceText]:
    """The free texts among the answers (only those under `keys`, when given), in form order."""
    wanted = translatable_keys(form) if keys is None else translatable_keys(form) & set(keys)
    texts: list[SourceText] = []
    for step in form.steps:
        if step.key not in wanted:
            continue
        value = answers.get(step.key)
        if step.type == EVIDENCE_TYPE and isinstance(value, list):
            texts += [SourceText(step.key, index, item["text"]) for index, item in enumerate(value)
                      if isinstance(item, dict) and item.get("kind") == "description"
                      and _has_text(item.get("text"))]
        elif isinstance(value, list):
            texts += [SourceText(step.key, index, name) for index, name in enumerate(value)
                      if _has_text(name)]
        elif _has_text(value):
            texts.append(SourceText(step.key, 0, value))
    return texts


def _has_text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())
