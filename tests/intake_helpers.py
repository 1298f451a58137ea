"""Driving the intake conversation in tests: an applicant who types one line at a time."""

from __future__ import annotations

import hashlib
import itertools
from functools import lru_cache

from intake.catalog import load_catalogs
from intake.engine import Context, Engine, State, Turn
from intake.form import load_form
from intake.messages import Attachment, InboundMessage

CHANNEL_CONTACT = "+243 970 000 111"

FACTS = "Since March 2024 the tailings dam leaks into the Kasulo river; our wells are red."
CLAIMS = "Stop the leak and clean the wells."
REASONS = "The mine's tailings reach the river; the company's own policy promises clean water."

# A complete English filing for oneself by an individual, from greeting to declaration.
FILING_FOR_ONESELF = (
    "hello", "1",                                   # greeting; English
    "1", "1",                                       # for myself; an individual
    "Ngozi Okafor", "1", "Kasulo, Kolwezi, Lualaba, DR Congo", "ngozi@example.org",
    "Kolwezi Cobalt Mining SA", "Kolwezi mine site, Lualaba, DR Congo", "skip",
    "Kasulo, Kolwezi, DR Congo", "skip", "skip", "skip", "skip",
    FACTS, "done", CLAIMS, "done", REASONS, "done", "skip", "skip",
    "Photos of the red well water", "done",
    "2",                                            # no confidentiality request
    "1", "2",                                       # letters in this language; no interpreter
    "1",                                            # everything is correct
    "1",                                            # I agree, submit
)


@lru_cache(maxsize=1)
def engine() -> Engine:
    """The engine with the real form and catalogs (loaded once: reading .po files is slow)."""
    return Engine(load_form(), load_catalogs())


def photo(name: str = "well.jpg") -> Attachment:
    """A photo the applicant sent, as the gateway stores it."""
    return Attachment(name, "image/jpeg", 48_213, hashlib.sha256(name.encode()).hexdigest())


class Conversation:
    """One applicant talking to the engine; keeps the state and the last turn."""

    def __init__(self, hints: dict[str, str] | None = None, state: State | None = None) -> None:
        self.engine = engine()
        self.state = state or State()
        self.context = Context(hints=dict(hints or {}))
        self.turn = Turn()
        self._ids = itertools.count(1)

    def send(self, *lines: str, attachments: tuple[Attachment, ...] = ()) -> Turn:
        """Send each line as one message (attachments go with the last); the last turn."""
        lines = lines or ("",)
        for line in lines[:-1]:
            self._deliver(line, ())
        return self._deliver(lines[-1], attachments)

    def _deliver(self, text: str, attachments: tuple[Attachment, ...]) -> Turn:
        message = InboundMessage(channel="terminal", sender="t",
                                 provider_message_id=f"m{next(self._ids)}", text=text,
                                 attachments=attachments)
        self.turn = self.engine.handle(self.state, message, self.context)
        return self.turn

    def follow(self, script: tuple[str, ...], until: str) -> Conversation:
        """Send the script's lines until the conversation awaits `until`."""
        for line in script:
            if self.awaiting == until:
                return self
            self.send(line)
        if self.awaiting != until:
            raise AssertionError(f"the script never reached {until!r}; at {self.awaiting!r}")
        return self

    @property
    def awaiting(self) -> str | None:
        """The field key the last turn waits for (None before the first or after submission)."""
        return self.turn.messages[-1].awaiting if self.turn.messages else None

    @property
    def text(self) -> str:
        """Everything the last turn said, as one string."""
        return "\n".join(message.text for message in self.turn.messages)

    @property
    def choices(self) -> list[str]:
        """The ids of the choices offered with the last message."""
        return [choice.id for choice in self.turn.messages[-1].choices]

    @property
    def answers(self) -> dict[str, object]:
        """The answers stored so far, by stable field key."""
        return self.state.answers


def at(key: str, hints: dict[str, str] | None = None,
       script: tuple[str, ...] = FILING_FOR_ONESELF) -> Conversation:
    """A conversation that followed the English filing up to the question `key`."""
    return Conversation(hints).follow(script, until=key)
