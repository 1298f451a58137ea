"""Africa's Talking's table of cases for the conformance harness (tests/channels)."""

from channels.conformance import Case

SENDER = "+254711000004"

CASES = [
    Case("message_text", ("Habari, nataka kulalamika kuhusu mgodi",), SENDER,
         {"contact": SENDER, "country": "KE"}),
    Case("delivery_report_success", reports=(("ATXid_sent1", "delivered"),)),
    Case("delivery_report_blacklisted", reports=(("ATXid_sent2", "failed"),)),
    # Final outcomes without a failureReason: the phone stayed off, the message expired.
    Case("delivery_report_absent_subscriber", reports=(("ATXid_sent3", "failed"),)),
    Case("delivery_report_expired", reports=(("ATXid_sent4", "failed"),)),
]
# Africa's Talking sends nothing but SMS and delivery reports: a report for a message this
# gateway never sent is its "unknown" delivery (acknowledged, nothing stored).
UNKNOWN_TYPE = "delivery_report_success"
PLAIN_TEXT = "message_text"
