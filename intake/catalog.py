"""Message catalogs: every word the gateway says, per language, in gettext .po files.

Message ids are symbolic (`field.applicant.name.prompt`), so the English wording can be
edited like any other language. Placeholders use Python's `{name}` format syntax.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.pofile import read_po

DEFAULT_LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "intake"
SOURCE_LANGUAGE = "en"
RIGHT_TO_LEFT = frozenset({"ar", "fa", "he", "ur"})


@dataclass
class Catalogs:
    """All loaded catalogs, with the fallback order person's language, default, English."""

    messages: dict[str, dict[str, str]] = field(default_factory=dict)
    default_language: str = SOURCE_LANGUAGE

    @property
    def languages(self) -> list[str]:
        """The languages that have a catalog."""
        return sorted(self.messages)

    def has(self, language: str, msgid: str) -> bool:
        """Whether this language's own catalog has the message."""
        return msgid in self.messages.get(language, {})

    def text(self, language: str, msgid: str, **values: object) -> str:
        """The message in the language, falling back to the default and then English."""
        for lang in (language, self.default_language, SOURCE_LANGUAGE):
            template = self.messages.get(lang, {}).get(msgid)
            if template:
                return template.format(**values) if values else template
        return msgid

    def all_texts(self, msgid: str) -> list[str]:
        """The message in every language; used to recognise words typed in any of them."""
        return [msgs[msgid] for msgs in self.messages.values() if msgs.get(msgid)]


def load_catalogs(
    dirs: Iterable[Path | str] = (DEFAULT_LOCALE_DIR,), default_language: str = SOURCE_LANGUAGE
) -> Catalogs:
    """Load `<dir>/<lang>/LC_MESSAGES/intake.po` from each dir; later dirs override earlier."""
    catalogs = Catalogs(default_language=default_language)
    for directory in dirs:
        for po_path in sorted(Path(directory).glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
            language = po_path.parent.parent.name
            catalogs.messages.setdefault(language, {}).update(read_catalog(po_path))
    return catalogs


def read_catalog(path: Path) -> dict[str, str]:
    """The translated, non-fuzzy messages of one .po file."""
    with open(path, "rb") as handle:
        catalog = read_po(handle)
    return {
        str(message.id): str(message.string)
        for message in catalog
        if message.id and message.string and not message.fuzzy
    }
