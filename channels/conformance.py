"""The shape of each channel's table of cases: a provider payload fixture (in the channel's
`fixtures/` folder, named after the event) and what the gateway must make of it.

`tests/channels/` runs every channel's table through one harness, together with the cases
every channel must pass (bad and missing signatures, duplicate deliveries, unknown message
types, empty, oversized, malformed and non-UTF-8 bodies).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    """One fixture and its expected result. `texts` are the stored messages' texts in order
    (none: nothing is stored, the delivery is acknowledged and ignored)."""

    fixture: str
    texts: tuple[str, ...] = ()
    sender: str | None = None
    hints: dict[str, str] = field(default_factory=dict)
    files: int = 0
    reports: tuple[tuple[str, str], ...] = ()
    blocked: bool | None = None
