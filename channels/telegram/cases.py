"""Telegram's table of cases for the conformance harness (tests/channels)."""

from channels.conformance import Case

AMANI = "5551234567"
AMANI_HINTS = {"language": "fr", "contact": "Telegram @amani_k (id 5551234567)",
               "name": "Amani Kabila"}

CASES = [
    Case("message_text", ("Bonjour, je veux déposer une plainte",), AMANI, AMANI_HINTS),
    Case("message_text_no_username", ("Habari",), "5559876543",
         {"language": "sw", "contact": "Telegram Jean (id 5559876543)"}),
    Case("message_start", ("help",), AMANI),
    Case("callback_query", ("fr",), AMANI, AMANI_HINTS),
    Case("media_photo", ("La rivière derrière la mine",), AMANI, files=1),
    Case("media_document", ("",), AMANI, files=1),
    Case("media_voice", ("",), AMANI, files=1),
    Case("message_sticker"),
    Case("message_location"),
    Case("edited_message"),
    Case("message_group"),
    Case("my_chat_member_kicked", blocked=True),
]
# A delivery the adapter ignores, for the shared "unknown message type" case.
UNKNOWN_TYPE = "message_sticker"
PLAIN_TEXT = "message_text"
