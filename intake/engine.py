"""The conversation engine: applies one message to a draft application and says what to send.

Pure: no I/O. The gateway loads the state, calls `Engine.handle`, and stores what comes back
(the new state, the outgoing messages and, on submission, the application) in one transaction.

How the next question is chosen: the first step of the current section that applies and has
no answer yet, else the first such step of the whole form; with none left, the review summary.
So an answer that opens a branch (filing as an agent, more than three applicants, a
confidentiality request) asks the new questions next, and `back`, `edit` and the detour from a
refused name into a confidentiality request all return to where the person was.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from babel.dates import format_date

from intake.catalog import RIGHT_TO_LEFT, Catalogs
from intake.deadlines import Deadline
from intake.form import REQUIRED_ITEMS, Form, Step
from intake.language import LanguageDetector, ScriptOnly, guess_language
from intake.messages import Attachment, Choice, InboundMessage, OutboundMessage
from intake.text import (
    clean,
    fold,
    has_words,
    is_refusal,
    is_unknown,
    parse_count,
    split_names,
)

REVIEW = "review"
DECLARATION = "declaration.accepted"
CONFIRM_RESTART = "restart"
COMMANDS = ("help", "back", "edit", "restart", "status", "language", "skip", "done", "new")
SUMMARY_VALUE_CHARS = 160
# Fewer letters than this ("ok", "xyz") say too little to change the language spoken.
MIN_LETTERS_TO_GUESS = 4


@dataclass
class State:
    """Everything the engine remembers about one conversation; stored as JSON."""

    status: str = "new"  # new | filling | review | declaration | submitted
    language: str | None = None
    # The language the person seems to write in, spoken until they choose one.
    guessed_language: str | None = None
    current: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    buffer: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    anonymity_offered: str | None = None
    return_to: str | None = None
    channel_contact_for: list[str] = field(default_factory=list)
    confirming_restart: bool = False
    reference: str | None = None
    formal_review_deadline: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form stored in the database (a copy: later changes do not leak)."""
        return copy.deepcopy(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> State:
        """Rebuild a stored state; unknown keys from newer versions are ignored."""
        known = cls.__dataclass_fields__
        return cls(**{k: copy.deepcopy(v) for k, v in (data or {}).items() if k in known})


@dataclass(frozen=True)
class Receipt:
    """What the gateway assigned on submission."""

    reference: str
    formal_review: Deadline
    confidentiality_decision: Deadline | None = None


@dataclass
class Turn:
    """The result of one message: what to send, and what the gateway must do besides."""

    messages: list[OutboundMessage] = field(default_factory=list)
    submit: bool = False
    start_new: bool = False
    supplement_text: str | None = None
    supplement_attachments: list[Attachment] = field(default_factory=list)
    confidentiality_request: bool = False
    changed_fields: list[str] = field(default_factory=list)


class Invalid(Exception):
    """An answer that cannot be used; `msgid` names the reason told to the person."""

    def __init__(self, msgid: str, **values: object) -> None:
        super().__init__(msgid)
        self.msgid = msgid
        self.values = values


@dataclass
class Context:
    """What the gateway knows about the sender and the application, for one turn."""

    hints: dict[str, str] = field(default_factory=dict)
    application_status: str | None = None


class Engine:
    """The application conversation, driven by a form definition and message catalogs."""

    def __init__(self, form: Form, catalogs: Catalogs,
                 detector: LanguageDetector | None = None) -> None:
        self.form = form
        self.catalogs = catalogs
        self.detector = detector or ScriptOnly()
        self._command_words = {
            name: {fold(w) for text in catalogs.all_texts(f"command.{name}") for w in
                   text.split(",") if w.strip()} | {name}
            for name in COMMANDS
        }
        # Looked up at every message, several times: which command a whole message names
        # (the first in COMMANDS order), and the words that open "edit N", longest first.
        self._exact_commands: dict[str, tuple[int, str]] = {}
        for position, (name, words) in enumerate(self._command_words.items()):
            for word in words:
                self._exact_commands.setdefault(word, (position, name))
        self._edit_position = list(self._command_words).index("edit")
        self._edit_words = sorted(self._command_words["edit"], key=len, reverse=True)

    # -- entry points ---------------------------------------------------------------

    def handle(self, state: State, message: InboundMessage, context: Context | None = None
               ) -> Turn:
        """Apply one inbound message to the state (changed in place) and return the turn."""
        ctx = context or Context(hints=message.hints)
        text = clean(message.text)
        turn = Turn()
        if state.status == "new":
            return self._greet(state, text, ctx, turn, list(message.attachments))
        if state.status == "submitted":
            return self._after_submission(state, text, message.attachments, ctx, turn)
        attachments = list(message.attachments)
        if attachments and (state.confirming_restart
                            or state.current not in ("evidence", "agent.authorisation")):
            self._add_evidence(state, turn, attachments)
            attachments = []
        if state.confirming_restart:
            return self._confirm_restart(state, text, ctx, turn)
        if not text and not attachments:
            if not turn.messages:
                self._say(state, turn, "error.empty")
            return self._ask(state, turn, ctx)
        command, argument = self._command(text)
        if command == "edit" and argument and self._find_item(state, argument) is None:
            command = None  # "change of plans…" is an answer, not `edit`
        if command and not (command in ("done", "skip") and self._plain_word(state)):
            return self._run_command(state, command, argument, ctx, turn)
        return self._answer(state, text, attachments, ctx, turn)

    def resume(self, state: State, context: Context | None = None) -> Turn:
        """What to say to a person who comes back to an unfinished conversation."""
        ctx = context or Context()
        turn = Turn()
        if state.status == "new":
            return self._greet(state, "", ctx, turn)
        if state.status == "submitted":
            self._say(state, turn, "submitted.welcome_back", reference=state.reference)
            return self._end_turn(state, turn, None)
        self._say(state, turn, "resume.welcome_back")
        return self._ask(state, turn, ctx)

    def receipt(self, state: State, receipt: Receipt) -> list[OutboundMessage]:
        """Mark the state submitted and compose the applicant's receipt."""
        state.status = "submitted"
        state.current = None
        state.reference = receipt.reference
        state.formal_review_deadline = receipt.formal_review.due.isoformat()
        lang = self._lang(state)
        parts = [self._t(state, "receipt.body", reference=receipt.reference,
                         deadline=self._date(lang, receipt.formal_review.due))]
        if receipt.formal_review.provisional:
            parts.append(self._t(state, "receipt.provisional"))
        if receipt.confidentiality_decision:
            parts.append(self._t(state, "receipt.confidentiality",
                                 deadline=self._date(lang, receipt.confidentiality_decision.due)))
        parts.append(self._t(state, "receipt.next_steps", reference=receipt.reference))
        return [OutboundMessage("\n\n".join(parts), awaiting=None, ends_turn=True,
                                reference=receipt.reference, direction=self._direction(state))]

    def reminder(self, state: State) -> OutboundMessage:
        """The one reminder an unfinished draft gets."""
        return OutboundMessage(self._t(state, "reminder.body"), direction=self._direction(state))

    def completeness(self, answers: dict[str, Any]) -> dict[str, bool]:
        """For each of the nine required items, whether the answers hold it."""
        return {key: _present(answers.get(key)) for key in REQUIRED_ITEMS.values()}

    def parse_answer(self, state: State, key: str, text: str, context: Context | None = None
                     ) -> Any:
        """The value a written answer gives the question `key`, checked as in the conversation
        (anonymity, lengths, choices in any language); Invalid when it cannot be used. For
        filings that arrive whole (e-mail): a long text or an evidence description is complete
        as it is, without "done"."""
        step = self.form.step(key)
        text = clean(text)
        if step.type in ("longtext", "evidence"):
            if not has_words(text):
                raise Invalid("error.no_words")
            self._check_length(step, text)
            return [{"kind": "description", "text": text}] if step.type == "evidence" else text
        return self._parse(state, step, text, context or Context())

    # -- the start --------------------------------------------------------------------

    def _greet(self, state: State, text: str, ctx: Context, turn: Turn,
               attachments: list[Attachment] | None = None) -> Turn:
        """First contact: welcome, and ask which language to use (guessed, then confirmed).
        Files sent with the first message (a photo of the river, often) are kept as
        evidence of the application."""
        guess = guess_language(text, ctx.hints, self.form.languages, self._reader(text),
                               self.catalogs.default_language)
        state.status = "filling"
        state.language = None
        state.guessed_language = guess
        state.current = "language"
        self._say(state, turn, "welcome", lang=guess)
        self._add_evidence(state, turn, attachments or [])
        return self._ask(state, turn, ctx, lang=guess)

    # -- answers ------------------------------------------------------------------------

    def _answer(self, state: State, text: str, attachments: list[Attachment], ctx: Context,
                turn: Turn) -> Turn:
        """Use the message as the answer to the current question."""
        if state.status == REVIEW:
            return self._review_input(state, text, ctx, turn)
        if state.status == "declaration":
            return self._declaration_input(state, text, ctx, turn)
        step = self.form.step(state.current or "language")
        text = self._number_to_choice(state, step, text, ctx)
        if step.key == "language" and state.language is None:
            text = self._first_language_reply(state, step, text, ctx)
        if state.anonymity_offered == step.key and self._chose_confidentiality(state, text):
            return self._start_confidentiality_detour(state, step, ctx, turn)
        if self._keeps(state, step, text) and not attachments:
            state.buffer = []
            return self._advance(state, step, ctx, turn)
        try:
            done = self._apply(state, step, text, attachments, ctx, turn)
        except Invalid as invalid:
            return self._reject(state, step, invalid, ctx, turn)
        if not done:
            return self._end_turn(state, turn, step.key, self._continue_choices(state, step))
        return self._advance(state, step, ctx, turn)

    def _number_to_choice(self, state: State, step: Step, text: str, ctx: Context) -> str:
        """A number typed for a numbered menu, as the id of the choice shown at that place.
        SMS and the terminal show "1. Done" under a long answer and "1. Skip" under an optional
        text question: there "1" is the menu's, never the text of the answer. A number is
        an answer only to a question that asks for one."""
        folded = fold(text)
        if not folded.isdigit() or step.type == "integer" and state.anonymity_offered != step.key:
            return text
        if state.anonymity_offered == step.key:
            shown = [Choice("confidentiality", "")]
        elif step.type in ("longtext", "evidence") and self._collecting(state, step):
            shown = self._continue_choices(state, step)
        else:
            shown = self._choices(state, step, ctx, self._lang(state))
        number = int(folded)
        return shown[number - 1].id if 1 <= number <= len(shown) else text

    def _reader(self, text: str) -> LanguageDetector:
        """The detector, unless the text is a greeting only one language says ("hi",
        "habari", "oi"): a detector reads two letters as noise ("Hi" came out Swahili)."""
        saying = self._languages_saying(text, "words.greeting")
        return _Known({saying[0]: 1.0}) if len(saying) == 1 else self.detector

    def _first_language_reply(self, state: State, step: Step, text: str, ctx: Context) -> str:
        """The first answer to "which language?", before any language is chosen. A yes ("oui",
        "ndiyo", "是") takes the language the question was asked in. Words that name no
        language are read for the language they are written in, so that the error and the
        question again are in it: the web and terminal chats greet before the person has
        written anything, and a Swahili speaker who answers in Swahili should not be told
        off in English."""
        if self._match_choice(state, step, text) is not None:
            return text
        answer, rest = self._yes_or_no(text)
        if answer and not rest:
            saying = self._languages_saying(text, "words.yes")
            if state.guessed_language in saying:  # "oui" in French, "ok" in English
                return state.guessed_language
            if len(saying) == 1:  # "oui" to a question asked in English: ask in French
                state.guessed_language = saying[0]
            return text
        if sum(ch.isalpha() for ch in text) >= MIN_LETTERS_TO_GUESS:
            state.guessed_language = guess_language(
                text, ctx.hints, self.form.languages, self._reader(text),
                state.guessed_language or self.catalogs.default_language)
        return text

    def _apply(self, state: State, step: Step, text: str, attachments: list[Attachment],
               ctx: Context, turn: Turn) -> bool:
        """Record the answer; False when the step goes on over more messages."""
        if step.type == "longtext":
            return self._longtext(state, step, text, turn)
        if step.type == "evidence":
            return self._evidence(state, step, text, attachments, turn)
        if step.type == "attachment" and attachments:
            self._set(state, turn, step.key, attachments[0].as_dict())
            self._say(state, turn, "evidence.file_received", filename=attachments[0].filename)
            self._add_evidence(state, turn, attachments[1:])
            return True
        self._set(state, turn, step.key, self._parse(state, step, text, ctx))
        return True

    def _parse(self, state: State, step: Step, text: str, ctx: Context) -> Any:
        """Turn a typed answer into the stored value for this step, or raise Invalid."""
        if self._is_command(text, "skip"):
            if step.required:
                raise Invalid("error.required")
            return None
        if step.type in ("choice", "attachment"):
            return self._parse_choice(state, step, text)
        if step.type == "multichoice":
            return self._parse_multichoice(state, step, text)
        if step.type == "boolean":
            return self._parse_boolean(state, text)
        if step.type == "integer":
            return self._parse_integer(step, text)
        if step.type == "names":
            return self._parse_names(step, text)
        if step.type == "contact":
            return self._parse_contact(state, step, text, ctx)
        return self._parse_text(step, text)

    def _parse_text(self, step: Step, text: str) -> str:
        """A short free-text answer within the step's limits."""
        if self._is_command(text, "done"):
            raise Invalid("error.required")
        if step.refuse_anonymous and is_refusal(text):
            raise Invalid("error.anonymous")
        if step.refuse_unknown and is_unknown(text):
            raise Invalid(f"field.{step.key}.unknown")
        if not has_words(text):
            raise Invalid("error.no_words")
        self._check_length(step, text)
        return text

    def _check_length(self, step: Step, text: str) -> None:
        """Raise Invalid when the text is shorter or longer than the step allows."""
        if len(text) < step.limits.get("min_length", 1):
            raise Invalid("error.too_short", minimum=step.limits.get("min_length", 1))
        if len(text) > step.limits.get("max_length", 10_000):
            raise Invalid("error.too_long", maximum=step.limits.get("max_length", 10_000),
                          length=len(text))

    def _parse_choice(self, state: State, step: Step, text: str) -> str:
        """One choice, by its number, its label in any language, its id or an alias."""
        choice = self._match_choice(state, step, text)
        if choice is None:
            raise Invalid("error.choice", count=len(step.choices))
        if step.key == "correspondence.language" and choice == "same":
            return self._lang(state)
        return choice

    def _match_choice(self, state: State, step: Step, text: str) -> str | None:
        """The id of the choice the text names, or None."""
        folded = fold(text)
        if folded.isdigit() and 1 <= int(folded) <= len(step.choices):
            return step.choices[int(folded) - 1].id
        for choice in step.choices:
            names = {choice.id, choice.id.replace("_", " "), *choice.aliases,
                     *self.catalogs.all_texts(f"choice.{step.key}.{choice.id}")}
            if folded in {fold(name) for name in names}:
                return choice.id
        return self._choice_by_word(state, step, folded)

    def _choice_by_word(self, state: State, step: Step, folded: str) -> str | None:
        """The one choice whose label, in the person's language or English, holds the
        answer as a whole word ("extraction" for "Extraction minière", "smelting" for
        "Smelting or refining"); None when no choice or several do, or the answer is too
        short to tell (MIN_LETTERS_TO_GUESS)."""
        if len(folded) < MIN_LETTERS_TO_GUESS or not folded.isalpha():
            return None
        languages = {self._lang(state), "en"}
        found = {choice.id for choice in step.choices for language in languages
                 if folded in re.findall(r"\w+", fold(self.catalogs.text(
                     language, f"choice.{step.key}.{choice.id}")))}
        return found.pop() if len(found) == 1 else None

    def _parse_multichoice(self, state: State, step: Step, text: str) -> list[str]:
        """Several choices, separated by commas, spaces or 'and'."""
        whole = self._match_choice(state, step, text)
        if whole:
            return [whole]
        # Labels have spaces ("rare earths"), so a part is split into words only if it is
        # not a choice as a whole ("1 3", "cobalt nickel").
        separators = r"[,，、;；/،؛]+|\s+(?:and|和|et|y|e|na|dan|и|و)\s+"
        parts = [p for p in re.split(separators, text) if p.strip()]
        chosen: list[str | None] = []
        for part in parts:
            whole_part = self._match_choice(state, step, part)
            chosen.extend([whole_part] if whole_part else
                          [self._match_choice(state, step, word) for word in part.split()])
        if not parts or None in chosen:
            raise Invalid("error.multichoice", count=len(step.choices))
        return list(dict.fromkeys(c for c in chosen if c))

    def _parse_boolean(self, state: State, text: str) -> bool:
        """Yes or no, by number (1 yes, 2 no) or word in any language."""
        answer, _ = self._yes_or_no(text)
        if answer is None:
            raise Invalid("error.yes_no")
        return answer

    def _yes_or_no(self, text: str) -> tuple[bool | None, str]:
        """Yes (True) or no (False) in any language, also as the first words of the answer
        ("yes please", "Oui, ici", "是的，可以"), with what follows; None when neither."""
        folded = fold(text)
        words = [(word, True) for word in {"1", "yes", "y", *self._words("words.yes")}]
        words += [(word, False) for word in {"2", "no", "n", *self._words("words.no")}]
        opening = [(word, answer) for word, answer in words if folded == word or (
            not word.isdigit() and folded.startswith(word) and not folded[len(word)].isalnum())]
        if not opening:
            return None, ""
        word, answer = max(opening, key=lambda found: len(found[0]))
        return answer, fold(folded[len(word):])

    def _parse_integer(self, step: Step, text: str) -> int:
        """A whole number within the step's bounds."""
        number = parse_count(text)
        low, high = step.limits.get("min", 0), step.limits.get("max", 10**9)
        if number is None or not low <= number <= high:
            raise Invalid("error.integer", minimum=low, maximum=high)
        return number

    def _parse_names(self, step: Step, text: str) -> list[str]:
        """Between min_items and max_items names."""
        names = split_names(text)
        if any(is_refusal(name) for name in names) or not names:
            raise Invalid("error.anonymous")
        low, high = step.limits.get("min_items", 1), step.limits.get("max_items", 10)
        if not low <= len(names) <= high:
            raise Invalid("error.names_count", minimum=low, maximum=high)
        for name in names:
            self._check_length(step, name)
        return names

    def _parse_contact(self, state: State, step: Step, text: str, ctx: Context) -> str:
        """The channel identity, confirmed with one tap, or contact details typed out."""
        channel_contact = self._channel_contact(state, step, ctx)
        answer, rest = self._yes_or_no(text) if channel_contact else (None, "")
        # Details typed after the yes or no ("no, call +243 81 234 5678") are kept as typed.
        details = bool(re.search(r"\d|@", rest))
        if channel_contact and answer:
            state.channel_contact_for = [*state.channel_contact_for, step.key]
            return f"{channel_contact}; {self._parse_text(step, text)}" if details \
                else channel_contact
        if channel_contact and (answer is False and not details or fold(text) == "other"):
            raise Invalid("contact.type_other")
        return self._parse_text(step, text)

    def _longtext(self, state: State, step: Step, text: str, turn: Turn) -> bool:
        """Collect a long answer over several messages until the person says done."""
        if self._skipped(state, step, turn, text):
            return True
        if self._is_command(text, "done"):
            if not state.buffer:
                raise Invalid("error.longtext_empty")
            whole = "\n\n".join(state.buffer)
            self._check_length(step, whole)
            state.buffer = []
            self._set(state, turn, step.key, whole)
            return True
        if not has_words(text):
            raise Invalid("error.no_words")
        total = sum(len(part) for part in state.buffer) + len(text)
        if total > step.limits.get("max_length", 100_000):
            raise Invalid("error.too_long", maximum=step.limits.get("max_length", 100_000),
                          length=total)
        state.buffer.append(text)
        self._say(state, turn, "longtext.received", characters=total)
        return False

    def _evidence(self, state: State, step: Step, text: str, attachments: list[Attachment],
                  turn: Turn) -> bool:
        """Collect files and descriptions of evidence until the person says done."""
        if not attachments and self._skipped(state, step, turn, text):
            return True
        if self._is_command(text, "done") and not attachments:
            if not _present(state.answers.get("evidence")):
                raise Invalid("error.evidence_empty")
            if step.key not in state.finished:
                state.finished.append(step.key)
            return True
        if attachments:
            self._add_evidence(state, turn, attachments)
        if text and not self._is_command(text, "done"):
            if not has_words(text):
                raise Invalid("error.no_words")
            self._check_length(step, text)
            items = list(state.answers.get("evidence") or [])
            items.append({"kind": "description", "text": text})
            self._set(state, turn, "evidence", items)
            self._say(state, turn, "evidence.description_received")
        return self._is_command(text, "done")

    def _skipped(self, state: State, step: Step, turn: Turn, text: str) -> bool:
        """Whether the person skipped this optional question; a required one says it must be
        answered, and the skip word is never kept as the answer."""
        if not self._is_command(text, "skip"):
            return False
        if step.required:
            raise Invalid("error.required")
        if step.type == "evidence":
            state.finished = [*state.finished, step.key]  # files sent earlier are kept
        else:
            state.buffer = []
            self._set(state, turn, step.key, None)
        return True

    def _add_evidence(self, state: State, turn: Turn, attachments: list[Attachment]) -> None:
        """Keep files as evidence items, whatever question they arrived with."""
        if not attachments:
            return
        items = list(state.answers.get("evidence") or [])
        items.extend(a.as_dict() for a in attachments)
        self._set(state, turn, "evidence", items)
        for attachment in attachments:
            self._say(state, turn, "evidence.file_received", filename=attachment.filename)

    def _set(self, state: State, turn: Turn, key: str, value: Any) -> None:
        """Store an answer (None for a skipped optional question)."""
        if key == "applicant.on_behalf" and state.answers.get(key) not in (None, value):
            self._forget_channel_contact(state)
        if value is None:
            state.answers.pop(key, None)
            if key not in state.skipped:
                state.skipped.append(key)
        else:
            state.answers[key] = value
            if key in state.skipped:
                state.skipped.remove(key)
        if key == "language" and value:
            state.language = value

        if key not in turn.changed_fields:
            turn.changed_fields.append(key)

    def _forget_channel_contact(self, state: State) -> None:
        """The channel's address belongs to whoever types: when that role changes, ask again."""
        for key in state.channel_contact_for:
            state.answers.pop(key, None)
        state.channel_contact_for = []

    def _reject(self, state: State, step: Step, invalid: Invalid, ctx: Context, turn: Turn
                ) -> Turn:
        """Say why the answer cannot be used, and ask again."""
        if invalid.msgid == "error.anonymous":
            state.anonymity_offered = step.key
            self._say(state, turn, "anonymity.explain")
            choices = [Choice("confidentiality", self._t(state, "anonymity.choice"))]
            return self._end_turn(state, turn, step.key, choices)
        if invalid.msgid == "contact.type_other":
            self._say(state, turn, "contact.type_other")
            return self._end_turn(state, turn, step.key)
        self._say_with(state, turn, invalid.msgid, invalid.values)
        return self._ask(state, turn, ctx)

    # -- moving through the form ---------------------------------------------------------

    def _advance(self, state: State, step: Step, ctx: Context, turn: Turn) -> Turn:
        """After an answer: note it in the history and ask the next question."""
        if step.key == state.anonymity_offered:
            state.anonymity_offered = None
        if not state.history or state.history[-1] != step.key:
            state.history.append(step.key)
        if step.key == "language" and "intro.shown" not in state.skipped:
            state.skipped.append("intro.shown")
            self._say(state, turn, "intro")
        state.current = self._next_key(state, step.section)
        if step.key == "language" and state.return_to:
            state.current = None if state.return_to == REVIEW else state.return_to
            state.return_to = None
        return self._ask(state, turn, ctx)

    def _next_key(self, state: State, section: str | None = None) -> str | None:
        """The next unanswered question: in this section first, then anywhere; None if none."""
        open_steps = [s for s in self.form.applicable(state.answers) if self._is_open(state, s)]
        in_section = [s for s in open_steps if s.section == section]
        candidates = in_section or open_steps
        return candidates[0].key if candidates else None

    def _is_open(self, state: State, step: Step) -> bool:
        """Whether the step still waits for an answer (evidence: until the person says done)."""
        if step.type == "evidence":
            return step.key not in state.finished
        return step.key not in state.answers and step.key not in state.skipped

    def _ask(self, state: State, turn: Turn, ctx: Context, lang: str | None = None) -> Turn:
        """Ask the current question, or show the review or the declaration."""
        if state.status == "submitted":
            return self._end_turn(state, turn, None)
        if state.current is None or state.status in (REVIEW, "declaration"):
            state.current = None
            return self._show_review(state, turn) if state.status != "declaration" \
                else self._show_declaration(state, turn)
        step = self.form.step(state.current)
        language = lang or self._lang(state)
        prompt = self._prompt(state, step, ctx, language)
        choices = self._choices(state, step, ctx, language)
        turn.messages.append(OutboundMessage(prompt, tuple(choices),
                                             direction=_direction(language)))
        return self._end_turn(state, turn, step.key, choices, reuse_last=True)

    def _prompt(self, state: State, step: Step, ctx: Context, language: str) -> str:
        """The question text, with the person's current answer when they go back to it."""
        contact = self._channel_contact(state, step, ctx)
        key = "field.{}.prompt_channel" if contact else "field.{}.prompt"
        text = self.catalogs.text(language, key.format(step.key), contact=contact or "")
        if not step.required:
            text += "\n" + self.catalogs.text(language, "hint.optional")
        if step.type in ("longtext", "evidence"):
            text += "\n" + self.catalogs.text(language, f"hint.{step.type}")
        if step.type == "longtext" and state.buffer:
            text += "\n" + self.catalogs.text(language, "longtext.received",
                                              characters=sum(len(part) for part in state.buffer))
        if step.key in state.answers and step.type not in ("evidence",):
            current = self._display(state, step, state.answers[step.key], language)
            text += "\n" + self.catalogs.text(language, "hint.current_answer", answer=current)
        return text

    def _choices(self, state: State, step: Step, ctx: Context, language: str) -> list[Choice]:
        """The buttons or numbered options shown with the question."""
        if step.type == "boolean":
            return [Choice("yes", self.catalogs.text(language, "choice.yes")),
                    Choice("no", self.catalogs.text(language, "choice.no"))]
        if step.type == "contact" and self._channel_contact(state, step, ctx):
            return [Choice("yes", self.catalogs.text(language, "contact.use_channel")),
                    Choice("other", self.catalogs.text(language, "contact.other"))]
        choices = [Choice(c.id, self.catalogs.text(language, f"choice.{step.key}.{c.id}"))
                   for c in step.choices]
        if not step.required and step.type != "multichoice":
            choices.append(Choice("skip", self.catalogs.text(language, "choice.skip")))
        if not step.required and step.type == "multichoice":
            choices.append(Choice("skip", self.catalogs.text(language, "choice.skip")))
        if self._has_answer(state, step):
            choices.append(Choice("keep", self.catalogs.text(language, "choice.keep")))
        return choices

    def _has_answer(self, state: State, step: Step) -> bool:
        """Whether the question is asked again (edit, back) with an answer to keep; the
        evidence keeps its items anyway, and "done" ends it."""
        return step.key in state.answers and step.type != "evidence"

    def _keeps(self, state: State, step: Step, text: str) -> bool:
        """Whether the person keeps the answer they had ("Keep this answer", in any
        language, or its button; "done" before writing anything new to a long answer)."""
        if not self._has_answer(state, step):
            return False
        if step.type == "longtext" and not state.buffer and self._is_command(text, "done"):
            return True
        return fold(text) in {
            "keep", *(fold(label) for label in self.catalogs.all_texts("choice.keep"))}

    def _collecting(self, state: State, step: Step) -> bool:
        """Whether part of a long answer or an evidence item is in, so "done" is shown."""
        if step.type == "longtext":
            return bool(state.buffer)
        return _present(state.answers.get(step.key))

    def _continue_choices(self, state: State, step: Step) -> list[Choice]:
        """While collecting a long answer, the one button that finishes it."""
        return [Choice("done", self._t(state, "choice.done"))]

    def _channel_contact(self, state: State, step: Step, ctx: Context) -> str | None:
        """The channel's address for the person typing, offered for their own contact only."""
        if step.type != "contact" or not ctx.hints.get("contact"):
            return None
        filing_as_agent = state.answers.get("applicant.on_behalf") == "agent"
        typist_field = "agent.contact" if filing_as_agent else "applicant.contact"
        return ctx.hints["contact"] if step.key == typist_field else None

    def _end_turn(self, state: State, turn: Turn, awaiting: str | None,
                  choices: list[Choice] | None = None, reuse_last: bool = False) -> Turn:
        """Mark the last message as the end of the turn, with what the engine now awaits."""
        if not turn.messages or not reuse_last:
            if not turn.messages:
                turn.messages.append(OutboundMessage(""))
            last = turn.messages[-1]
            if choices is not None and not last.choices:
                last = OutboundMessage(last.text, tuple(choices), direction=last.direction)
            turn.messages[-1] = last
        last = turn.messages[-1]
        turn.messages[-1] = OutboundMessage(last.text, last.choices, awaiting, True,
                                            last.reference, last.direction)
        return turn

    # -- review, declaration, submission -------------------------------------------------

    def _show_review(self, state: State, turn: Turn) -> Turn:
        """The summary of every answer, numbered so any item can be changed."""
        state.status = REVIEW
        state.current = None
        lines = [self._t(state, "review.title")]
        for number, step in enumerate(self._reviewable(state), start=1):
            value = state.answers.get(step.key)
            shown = (self._display(state, step, value, self._lang(state))
                     if value is not None else self._t(state, "review.skipped"))
            lines.append(f"{number}. {self._label(state, step)}: {shown}")
        lines.append(self._t(state, "review.instructions"))
        choices = [Choice("confirm", self._t(state, "review.confirm"))]
        turn.messages.append(OutboundMessage("\n".join(lines), tuple(choices),
                                             direction=self._direction(state)))
        return self._end_turn(state, turn, REVIEW, reuse_last=True)

    def _reviewable(self, state: State) -> list[Step]:
        """The steps shown in the review, in order."""
        return self.form.applicable(state.answers)

    def _review_input(self, state: State, text: str, ctx: Context, turn: Turn) -> Turn:
        """At the summary: continue to the declaration, or be told how to change an item."""
        if fold(text) in {"1", "confirm", *self._words("review.confirm"),
                          *self._words("words.yes")}:
            state.status = "declaration"
            return self._show_declaration(state, turn)
        self._say(state, turn, "review.hint")
        return self._show_review(state, turn)

    def _show_declaration(self, state: State, turn: Turn) -> Turn:
        """The declaration the person confirms before the application is submitted."""
        state.status = "declaration"
        choices = [Choice("accept", self._t(state, "declaration.accept")),
                   Choice("review", self._t(state, "declaration.back"))]
        turn.messages.append(OutboundMessage(self._t(state, "declaration.text"), tuple(choices),
                                             direction=self._direction(state)))
        return self._end_turn(state, turn, DECLARATION, reuse_last=True)

    def _declaration_input(self, state: State, text: str, ctx: Context, turn: Turn) -> Turn:
        """Accepting the declaration submits; anything else goes back to the summary."""
        folded = fold(text)
        if folded in {"1", "accept", *self._words("declaration.accept"), *self._words("words.yes")}:
            applicable = {step.key for step in self.form.applicable(state.answers)}
            state.answers = {k: v for k, v in state.answers.items() if k in applicable}
            state.answers[DECLARATION] = True
            turn.changed_fields.append(DECLARATION)
            turn.submit = True
            return turn
        if folded in {"2", "review", *self._words("declaration.back"), *self._words("words.no")}:
            return self._show_review(state, turn)
        self._say(state, turn, "error.choice", count=2)
        return self._show_declaration(state, turn)

    def _after_submission(self, state: State, text: str, attachments: tuple[Attachment, ...],
                          ctx: Context, turn: Turn) -> Turn:
        """Once submitted: status, a new application, or more material for this one."""
        command, _ = self._command(text)
        if command == "status" and not attachments:
            status = ctx.application_status or "submitted"
            self._say(state, turn, "submitted.status", reference=state.reference,
                      status=self._t(state, f"status.{status}"),
                      deadline=self._date(self._lang(state),
                                          date.fromisoformat(state.formal_review_deadline or
                                                             date.today().isoformat())))
        elif command == "new" and not attachments:
            turn.start_new = True
            return turn
        elif command == "help" and not attachments:
            self._say(state, turn, "submitted.help", reference=state.reference)
        elif self._asks_for_confidentiality(text) and not attachments:
            turn.confidentiality_request = True
            self._say(state, turn, "submitted.confidentiality_requested",
                      reference=state.reference)
        elif text or attachments:
            turn.supplement_text = text or None
            turn.supplement_attachments = list(attachments)
            answered = ctx.application_status == "supplement_requested"
            self._say(state, turn, "submitted.supplement_answered" if answered
                      else "submitted.supplement_received", reference=state.reference)
        else:
            self._say(state, turn, "error.empty")
        return self._end_turn(state, turn, None)

    # -- commands ------------------------------------------------------------------------

    def _command(self, text: str) -> tuple[str | None, str]:
        """The command a message gives ("/help", "edit 3", "修改 3"), with its argument."""
        folded = fold(text).lstrip("/")
        if not folded or len(folded) > 60:
            return None, ""
        exact = self._exact_commands.get(folded)
        if exact is not None and exact[0] <= self._edit_position:
            return exact[1], ""
        for word in self._edit_words:
            if folded.startswith(word + " "):
                return "edit", folded[len(word) + 1:].strip()
            if word and not word.isascii() and folded.startswith(word):
                return "edit", folded[len(word):].strip()
        return (exact[1], "") if exact is not None else (None, "")

    def _is_command(self, text: str, name: str) -> bool:
        """Whether the text is exactly this command word."""
        return self._command(text)[0] == name

    def _plain_word(self, state: State) -> bool:
        """Whether 'done' or 'skip' are answers to the current step, not commands."""
        return state.status == "filling" and state.current is not None

    def _run_command(self, state: State, command: str, argument: str, ctx: Context, turn: Turn
                     ) -> Turn:
        """help, back, edit, restart, status, language (and stray done/skip/new)."""
        if command == "help":
            self._say(state, turn, self._help_id(state))
            return self._ask(state, turn, ctx)
        if command == "back":
            return self._back(state, ctx, turn)
        if command == "edit":
            return self._edit(state, argument, ctx, turn)
        if command == "restart":
            state.confirming_restart = True
            choices = [Choice("yes", self._t(state, "choice.yes")),
                       Choice("no", self._t(state, "choice.no"))]
            self._say(state, turn, "restart.confirm")
            return self._end_turn(state, turn, CONFIRM_RESTART, choices)
        if command == "status":
            self._say_with(state, turn, "status.draft", self._progress(state))
            return self._ask(state, turn, ctx)
        if command == "language":
            state.return_to = REVIEW if state.status == REVIEW else state.current
            unsaved = state.buffer
            self._edit(state, "language", ctx, turn)
            state.buffer = unsaved  # the long answer being typed waits for the return
            return turn
        self._say(state, turn, "error.command_here")
        return self._ask(state, turn, ctx)

    def _help_id(self, state: State) -> str:
        """The help text for where the person is."""
        if state.status == REVIEW:
            return "help.review"
        if state.status == "declaration":
            return "help.declaration"
        return f"field.{state.current}.help"

    def _back(self, state: State, ctx: Context, turn: Turn) -> Turn:
        """Go back to the question answered before this one."""
        here = state.current
        previous = [k for k in state.history if k != here and self._applies(state, k)]
        if not previous:
            self._say(state, turn, "back.at_start")
            return self._ask(state, turn, ctx)
        state.history = state.history[: len(state.history) - state.history[::-1].index(
            previous[-1]) - 1]
        state.buffer = []
        state.status = "filling"
        state.current = previous[-1]
        return self._ask(state, turn, ctx)

    def _edit(self, state: State, argument: str, ctx: Context, turn: Turn) -> Turn:
        """Go to any question answered before, by its number in the summary, name or key."""
        step = self._find_item(state, argument)
        if step is None:
            self._say(state, turn, "edit.which", items=self._item_list(state))
            return self._ask(state, turn, ctx)
        state.buffer = []
        state.status = "filling"
        state.current = step.key
        if step.key in state.finished:
            state.finished.remove(step.key)
        return self._ask(state, turn, ctx)

    def _find_item(self, state: State, argument: str) -> Step | None:
        """The reviewable step an `edit` argument names, or None."""
        items = self._reviewable(state)
        folded = fold(argument)
        if folded.isdigit() and 1 <= int(folded) <= len(items):
            return items[int(folded) - 1]
        for step in items:
            if folded in {fold(step.key), fold(self._label(state, step))} or \
                    folded in {fold(t) for t in self.catalogs.all_texts(f"field.{step.key}.label")}:
                return step
        return None

    def _item_list(self, state: State) -> str:
        """Numbered labels of the questions that can be edited."""
        return "\n".join(f"{n}. {self._label(state, s)}"
                         for n, s in enumerate(self._reviewable(state), start=1))

    def _confirm_restart(self, state: State, text: str, ctx: Context, turn: Turn) -> Turn:
        """Only a clear yes wipes the draft."""
        state.confirming_restart = False
        try:
            wipe = self._parse_boolean(state, text)
        except Invalid:
            wipe = False
        if not wipe:
            self._say(state, turn, "restart.cancelled")
            return self._ask(state, turn, ctx)
        language = state.language
        state.__dict__.update(State().__dict__)
        state.status, state.language, state.current = "filling", language, None
        state.answers = {"language": language} if language else {}
        turn.changed_fields.append("*")
        self._say(state, turn, "restart.done")
        state.current = self._next_key(state)
        return self._ask(state, turn, ctx)

    def _chose_confidentiality(self, state: State, text: str) -> bool:
        """Whether the person took the offer of a confidentiality request."""
        return fold(text) == "1" or self._asks_for_confidentiality(text)

    def _asks_for_confidentiality(self, text: str) -> bool:
        """Whether the message asks for a confidentiality request, in any language."""
        return fold(text) in {"confidentiality", *self._words("anonymity.choice"),
                              *self._words("words.confidentiality")}

    def _start_confidentiality_detour(self, state: State, step: Step, ctx: Context, turn: Turn
                                      ) -> Turn:
        """Ask the four parts of a confidentiality request, then come back to this question."""
        self._set(state, turn, "confidentiality.requested", True)
        self._say(state, turn, "anonymity.detour")
        state.current = self._next_key(state, self.form.step("confidentiality.requested").section)
        return self._ask(state, turn, ctx)

    # -- wording ------------------------------------------------------------------------

    def _progress(self, state: State) -> dict[str, object]:
        """How far the draft is, for `status`."""
        applicable = [s for s in self.form.applicable(state.answers) if s.required]
        answered = [s for s in applicable if s.key in state.answers]
        missing = [self._label(state, s) for s in applicable if s.key not in state.answers]
        return {"answered": len(answered), "total": len(applicable),
                "missing": ", ".join(missing) or "-"}

    def _display(self, state: State, step: Step, value: Any, language: str) -> str:
        """An answer as the person reads it in the summary."""
        if isinstance(value, bool):
            return self.catalogs.text(language, "choice.yes" if value else "choice.no")
        if step.type in ("choice", "attachment") and isinstance(value, str):
            if step.key in ("language", "correspondence.language"):
                return self.catalogs.text(language, f"choice.language.{value}")
            return self.catalogs.text(language, f"choice.{step.key}.{value}")
        if step.type == "multichoice" and isinstance(value, list):
            return ", ".join(self.catalogs.text(language, f"choice.{step.key}.{v}")
                             for v in value)
        if step.type == "evidence" and isinstance(value, list):
            return "; ".join(item.get("filename") or _shorten(item.get("text", ""), 60)
                             for item in value)
        if isinstance(value, dict):
            return str(value.get("filename", ""))
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return _shorten(str(value), SUMMARY_VALUE_CHARS)

    def _label(self, state: State, step: Step) -> str:
        """The short name of a question."""
        return self._t(state, f"field.{step.key}.label")

    def _say_with(self, state: State, turn: Turn, msgid: str, values: dict[str, object]) -> None:
        """Add one message in the person's language, filled with these values."""
        language = self._lang(state)
        turn.messages.append(OutboundMessage(self.catalogs.text(language, msgid, **values),
                                             direction=_direction(language)))

    def _say(self, state: State, turn: Turn, msgid: str, lang: str | None = None,
             **values: object) -> None:
        """Add one message in the person's language."""
        language = lang or self._lang(state)
        turn.messages.append(OutboundMessage(self.catalogs.text(language, msgid, **values),
                                             direction=_direction(language)))

    def _t(self, state: State, msgid: str, **values: object) -> str:
        """One message's text in the person's language."""
        return self.catalogs.text(self._lang(state), msgid, **values)

    def _words(self, msgid: str) -> set[str]:
        """The comma-separated words of a catalog entry, in every language, folded."""
        return {fold(w) for text in self.catalogs.all_texts(msgid) for w in text.split(",")
                if w.strip()}

    def _languages_saying(self, text: str, msgid: str) -> list[str]:
        """The languages whose words of a catalog entry (comma-separated) hold the text."""
        folded = fold(text)
        return [language for language in self.form.languages
                if folded in {fold(w) for w in self.catalogs.text(language, msgid).split(",")
                              if w.strip()}]

    def _lang(self, state: State) -> str:
        """The conversation's language; before it is chosen, the one the person seems to
        write in, or the deployment default."""
        return state.language or state.guessed_language or self.catalogs.default_language

    def _direction(self, state: State) -> str:
        """Text direction of the conversation's language."""
        return _direction(self._lang(state))

    def _date(self, language: str, day: date) -> str:
        """A date written the way the person's language writes it."""
        try:
            return format_date(day, format="long", locale=language)
        except (ValueError, LookupError):
            return day.isoformat()

    def _applies(self, state: State, key: str) -> bool:
        """Whether the step with this key is in the form and applies now."""
        return self.form.has(key) and self.form.step(key).applies(state.answers)


@dataclass(frozen=True)
class _Known:
    """A reading of the words that is not in doubt."""

    scores: dict[str, float]

    def detect(self, text: str) -> dict[str, float]:
        return self.scores


def _present(value: Any) -> bool:
    """Whether an answer holds something."""
    return value not in (None, "", [], {})


def _shorten(text: str, limit: int) -> str:
    """The text cut at a word boundary with an ellipsis when longer than `limit`."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _direction(language: str) -> str:
    """'rtl' for right-to-left languages."""
    return "rtl" if language in RIGHT_TO_LEFT else "ltr"
