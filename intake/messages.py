"""The neutral message types every channel adapter converts to and from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Attachment:
    """A file the person sent, already stored by the gateway (content-addressed by sha256)."""

    filename: str
    media_type: str
    size: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        """The attachment as stored in an application's `evidence` list."""
        return {
            "kind": "attachment",
            "filename": self.filename,
            "media_type": self.media_type,
            "size": self.size,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class InboundMessage:
    """One message from a person, whatever channel it came by."""

    channel: str
    sender: str
    provider_message_id: str
    text: str = ""
    attachments: tuple[Attachment, ...] = ()
    received_at: datetime | None = None
    # What the channel knows about the sender: `language`, the code their app is set to,
    # `country`, the ISO 3166 code of their phone number, a display name,
    # and `contact`, an address the mechanism can reach them at on this channel.
    hints: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Choice:
    """One option of a question: `id` is what the engine stores, `label` what people read."""

    id: str
    label: str


@dataclass(frozen=True)
class OutboundMessage:
    """One message to a person; channels render choices as buttons or numbered lines."""

    text: str
    choices: tuple[Choice, ...] = ()
    # The field key the conversation now waits for; only on the last message of a turn.
    # "review" while the summary is shown, None once the conversation is over.
    awaiting: str | None = None
    ends_turn: bool = False
    reference: str | None = None
    direction: str = "ltr"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form used by `gateway chat --json`, the web chat and the outbox."""
        data: dict[str, Any] = {
            "text": self.text,
            "choices": [{"id": c.id, "label": c.label} for c in self.choices],
        }
        if self.ends_turn:
            data["awaiting"] = self.awaiting
        if self.reference:
            data["reference"] = self.reference
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutboundMessage:
        """Rebuild a message stored with `as_dict`."""
        return cls(
            text=data["text"],
            choices=tuple(Choice(c["id"], c["label"]) for c in data.get("choices", [])),
            awaiting=data.get("awaiting"),
            ends_turn="awaiting" in data,
            reference=data.get("reference"),
        )
