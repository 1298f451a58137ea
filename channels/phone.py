"""Phone numbers as the channels see them: E.164 for display, the country as a language prior."""

from __future__ import annotations

import functools

import phonenumbers


def _parse(number: str) -> phonenumbers.PhoneNumber | None:
    raw = number.strip()
    try:
        return phonenumbers.parse(raw if raw.startswith("+") else f"+{raw}", None)
    except phonenumbers.NumberParseException:
        return None


def _e164(parsed: phonenumbers.PhoneNumber | None, number: str) -> str:
    if parsed is None:
        return number.strip()
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _country(parsed: phonenumbers.PhoneNumber | None) -> str | None:
    return (phonenumbers.region_code_for_number(parsed) or None) if parsed is not None else None


def e164(number: str) -> str:
    """The number as +<country><number> when it parses, else as given (digits and a plus)."""
    return _e164(_parse(number), number)


def country_of(number: str) -> str | None:
    """The ISO 3166 country code of an international number ("CD" for +243…), if known."""
    return _country(_parse(number))


def phone_hints(number: str) -> dict[str, str]:
    """What a phone number tells the conversation: where to reach the person, and a country
    (this runs for every message a provider delivers)."""
    contact, country = _hints(number)
    return {"contact": contact, "country": country} if country else {"contact": contact}


@functools.lru_cache(maxsize=4096)
def _hints(number: str) -> tuple[str, str | None]:
    """The number parsed once, and remembered: a person sends a dozen messages or more, and
    parsing costs more than the rest of reading a webhook's payload."""
    parsed = _parse(number)
    country = _country(parsed)
    return _e164(parsed, number), country if country != "ZZ" else None
