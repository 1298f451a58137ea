"""The terminal channel (`gateway chat`): lines in, text or JSON lines out."""

from __future__ import annotations

import json
import uuid

from intake.messages import Attachment, InboundMessage, OutboundMessage

CHANNEL = "terminal"


def inbound(sender: str, line: str, attachments: tuple[Attachment, ...] = ()) -> InboundMessage:
    """One typed line (or an attached file) as a neutral message."""
    return InboundMessage(channel=CHANNEL, sender=sender,
                          provider_message_id=f"terminal-{uuid.uuid4()}", text=line,
                          attachments=attachments)


def render_text(message: OutboundMessage) -> str:
    """A message for a person at a terminal: the text, then numbered choices."""
    lines = [message.text]
    lines += [f"  {number}. {choice.label}" for number, choice in
              enumerate(message.choices, start=1)]
    return "\n".join(lines) + "\n"


def render_json(message: OutboundMessage) -> str:
    """A message as one JSON line: text, choices, and `awaiting` at the end of a turn."""
    return json.dumps(message.as_dict(), ensure_ascii=False)
