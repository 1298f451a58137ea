"""Twilio's table of cases for the conformance harness (tests/channels).

Fixtures are the form parameters of Twilio's requests; `{TWILIO_API_BASE}` in a media URL
stands for the configured API base (media are only fetched from there).
"""

from channels.conformance import Case

SENDER = "+243970000003"

CASES = [
    Case("message_text", ("Hello, I want to complain about the mine",), SENDER,
         {"contact": SENDER, "country": "CD"}),
    Case("media_image", ("Photo of the pipe",), SENDER, files=1),
    Case("status_delivered", reports=(("SM0d4c3b2a19087f6e5d4c3b2a19087f6e", "delivered"),)),
    Case("status_undelivered_unsubscribed",
         reports=(("SM5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b", "failed"),)),
    Case("opt_out_stop", blocked=True),
    # Twilio's opt-in keywords are START, UNSTOP and YES: a "YES" also answers the question.
    Case("opt_in_yes", ("YES",), SENDER, blocked=False),
    Case("opt_in_start", blocked=False),
    Case("message_whatsapp_address"),
]
UNKNOWN_TYPE = "message_whatsapp_address"
PLAIN_TEXT = "message_text"
