"""Reference numbers people can read out over a phone: MCM-2026-7K3Q9X."""

from __future__ import annotations

import secrets

# Crockford's base 32 without I, L, O and U: nothing to confuse with 1, 0 or V.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIX = "MCM"


def new_reference(year: int, length: int = 6) -> str:
    """A random reference for an application received in `year`."""
    code = "".join(secrets.choice(ALPHABET) for _ in range(length))
    return f"{PREFIX}-{year}-{code}"


def normalise_reference(text: str) -> str:
    """A reference as typed ("mcm 2026 7k3q9x", "MCM-2026-7K3Q9O") in its stored form."""
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum())
    cleaned = cleaned.translate(str.maketrans("OIL", "011"))
    if len(cleaned) < 8 or not cleaned.startswith(PREFIX):
        return text.strip().upper()
    body = cleaned[len(PREFIX):]
    return f"{PREFIX}-{body[:4]}-{body[4:]}"
