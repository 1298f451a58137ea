"""The secretariat's workflow after submission: statuses, actions, roles and who may see what.

Pure rules, no I/O (Ch.3 §3, Ch.6 §2). The gateway loads an application, asks `check` whether
an action is allowed for this role in this status, and applies the `Action`'s target status.

    submitted ─► under_review ─► supplement_requested ─(applicant answers)─► under_review
        │             │                    │
        └─────────────┴────────────────────┴─► accepted | rejected | withdrawn

A rejected applicant may apply again (a new application). A confidentiality request is
decided (granted or refused) in any status while it is pending; it does not change the status.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

STATUSES = ("submitted", "under_review", "supplement_requested", "accepted", "rejected",
            "withdrawn")
DECIDED = frozenset({"accepted", "rejected", "withdrawn"})
OPEN = frozenset(STATUSES) - DECIDED
ROLES = ("officer", "supervisor", "admin")
NOTICE_LANGUAGES = ("en", "zh")
# What stands in for identity data that the reader may not see.
MASK = "[confidential]"
MAX_MESSAGE_CHARS = 20_000
MAX_NOTE_CHARS = 20_000


@dataclass(frozen=True)
class Action:
    """One thing an officer can do to an application."""

    name: str
    allowed_from: frozenset[str]
    to_status: str | None          # None: the status stays (notes, confidentiality decisions)
    roles: frozenset[str]
    message: str                   # "required" | "optional" | "none": the notice's free text
    notice: str | None             # catalog msgid of the applicant's notice (None: no notice)


_EVERYONE = frozenset(ROLES)
_SUPERVISORS = frozenset({"supervisor", "admin"})

ACTIONS: dict[str, Action] = {action.name: action for action in (
    Action("start_review", frozenset({"submitted"}), "under_review", _EVERYONE,
           "optional", "notice.under_review"),
    Action("request_supplement", frozenset({"submitted", "under_review"}),
           "supplement_requested", _EVERYONE, "required", "notice.supplement_requested"),
    Action("accept", frozenset({"under_review"}), "accepted", _EVERYONE,
           "optional", "notice.accepted"),
    Action("reject", frozenset({"submitted", "under_review", "supplement_requested"}),
           "rejected", _EVERYONE, "required", "notice.rejected"),
    Action("withdraw", frozenset(OPEN), "withdrawn", _EVERYONE,
           "optional", "notice.withdrawn"),
    Action("grant_confidentiality", frozenset(STATUSES), None, _SUPERVISORS,
           "optional", "notice.confidentiality_granted"),
    Action("refuse_confidentiality", frozenset(STATUSES), None, _SUPERVISORS,
           "required", "notice.confidentiality_refused"),
    Action("note", frozenset(STATUSES), None, _EVERYONE, "none", None),
)}
CONFIDENTIALITY_ACTIONS = frozenset({"grant_confidentiality", "refuse_confidentiality"})


class NotAllowed(Exception):
    """The action cannot be done; `kind` says why and maps to an HTTP status."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "unknown" | "forbidden" | "conflict" | "invalid"
        self.message = message


@dataclass(frozen=True)
class Request:
    """What the officer asked for: the action, the notice text and an internal note."""

    action: str
    message: str = ""
    message_language: str = "en"
    note: str = ""


def check(request: Request, role: str, status: str, confidentiality: ConfidentialityState
          ) -> Action:
    """The action if this role may do it now; NotAllowed with the reason otherwise."""
    action = ACTIONS.get(request.action)
    if action is None:
        raise NotAllowed("unknown", f"There is no action {request.action!r}.")
    if role not in action.roles:
        raise NotAllowed("forbidden", f"The role {role!r} may not {_words(action.name)}; "
                                      f"ask a supervisor.")
    if status not in action.allowed_from:
        raise NotAllowed("conflict", f"The application is {_words(status)}: it cannot "
                                     f"{_words(action.name)} now.")
    if action.name in CONFIDENTIALITY_ACTIONS and not confidentiality.pending:
        raise NotAllowed("conflict", "There is no pending confidentiality request to decide.")
    _check_texts(request, action)
    return action


def _check_texts(request: Request, action: Action) -> None:
    if request.message_language not in NOTICE_LANGUAGES:
        raise NotAllowed("invalid", "The notice must be written in Chinese (zh) or English (en).")
    if action.message == "required" and not request.message.strip():
        raise NotAllowed("invalid", f"To {_words(action.name)}, write the message to the "
                                    f"applicant (the reasons or what is needed).")
    if action.name == "note" and not request.note.strip():
        raise NotAllowed("invalid", "The note is empty.")
    if len(request.message) > MAX_MESSAGE_CHARS or len(request.note) > MAX_NOTE_CHARS:
        raise NotAllowed("invalid", f"The text is too long (at most {MAX_MESSAGE_CHARS} "
                                    f"characters).")


def _words(name: str) -> str:
    return name.replace("_", " ")


def status_after_answer(status: str) -> str | None:
    """The status after the applicant sends something: an answer to a supplement request puts
    the application back under formal review; otherwise the status stays (None)."""
    return "under_review" if status == "supplement_requested" else None


def available(role: str, status: str, confidentiality: ConfidentialityState) -> list[str]:
    """The actions this role can take on an application in this status, in order."""
    return [name for name, action in ACTIONS.items()
            if role in action.roles and status in action.allowed_from
            and (name not in CONFIDENTIALITY_ACTIONS or confidentiality.pending)]


# -- confidentiality and identity -----------------------------------------------------------


@dataclass(frozen=True)
class ConfidentialityState:
    """An application's confidentiality request and its decision."""

    requested: bool
    decision: str | None = None  # None (pending) | "granted" | "refused"
    audiences: tuple[str, ...] = ()

    @property
    def pending(self) -> bool:
        """Requested and not decided yet (Ch.6 §2.2: nothing disclosed until then)."""
        return self.requested and self.decision is None

    @property
    def protects_identity(self) -> bool:
        """Whether identity data is masked: a request that is pending or granted."""
        return self.requested and self.decision != "refused"


def may_reveal(role: str) -> bool:
    """Whether the role may reveal masked identity data (an explicit, logged action)."""
    return role in _SUPERVISORS


def may_read_audit(role: str) -> bool:
    """Whether the role may read the audit log."""
    return role in _SUPERVISORS


def identity_values(fields: Mapping[str, Any], identity_keys: Iterable[str],
                    sender: str | None = None) -> list[str]:
    """The identifying texts of an application (names, addresses, contacts, channel id)."""
    values: list[str] = []
    for key in identity_keys:
        value = fields.get(key)
        items = value if isinstance(value, list) else [value]
        values += [str(item).strip() for item in items if isinstance(item, str | int)]
    if sender:
        values.append(sender)
    # Longest first, so "Jane Mwamba" is masked before "Jane"; one-letter values mask nothing.
    return sorted({v for v in values if len(v) >= 2}, key=len, reverse=True)


def mask_text(text: str, values: Iterable[str]) -> str:
    """The text with every identifying value replaced by MASK."""
    for value in values:
        text = text.replace(value, MASK)
    return text


def mask_fields(fields: Mapping[str, Any], identity_keys: Iterable[str],
                values: Iterable[str]) -> dict[str, Any]:
    """The fields with identity fields masked and identifying values cut out of free text."""
    keys = set(identity_keys)
    shown = list(values)
    return {key: (MASK if key in keys and value not in (None, "", [])
                  else _mask_value(value, shown))
            for key, value in fields.items()}


def _mask_value(value: Any, values: list[str]) -> Any:
    if isinstance(value, str):
        return mask_text(value, values)
    if isinstance(value, list):
        return [_mask_value(item, values) for item in value]
    if isinstance(value, dict):
        return {k: _mask_value(v, values) for k, v in value.items()}
    return value


def withheld_for(audience: str, confidentiality: ConfidentialityState) -> bool:
    """Whether a pending or granted request keeps the application's content from an audience."""
    return confidentiality.protects_identity and audience in confidentiality.audiences
