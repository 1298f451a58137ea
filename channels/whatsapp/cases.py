"""WhatsApp's table of cases for the conformance harness (tests/channels)."""

from channels.conformance import Case

FURAHA = "243970000002"
FURAHA_HINTS = {"contact": "+243970000002", "country": "CD", "name": "Mama Furaha"}

CASES = [
    Case("message_text", ("Jambo, nina malalamiko kuhusu mgodi",), FURAHA, FURAHA_HINTS),
    Case("interactive_button_reply", ("self",), FURAHA, FURAHA_HINTS),
    Case("interactive_list_reply", ("community",), FURAHA),
    Case("media_image", ("Mto nyuma ya mgodi",), FURAHA, files=1),
    Case("media_document", ("",), FURAHA, files=1),
    Case("batch_two_messages", ("Mto umekuwa mwekundu", "Watoto wanaugua"), FURAHA),
    Case("message_sticker"),
    Case("message_reaction"),
    Case("message_location"),
    Case("account_update"),
    Case("status_delivered",
         reports=(("wamid.HBgMMjQzOTcwMDAwMDAyFQIAERgSQUEx", "delivered"),)),
    Case("status_failed_undeliverable",
         reports=(("wamid.HBgMMjQzOTcwMDAwMDAyFQIAERgSQUEy", "failed"),)),
]
UNKNOWN_TYPE = "message_sticker"
PLAIN_TEXT = "message_text"
