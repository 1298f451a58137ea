"""Property-based tests (hypothesis): whatever people type and whatever arrives at a webhook or
in a mailbox, the gateway neither crashes nor ends up in a state it cannot go on from.

- The conversation engine: any sequence of messages (lines of a real filing, commands, numbers,
  refusals, random text in any script, files) leaves a conversation that is valid: it waits for
  a question of the form (or the language, the review, the declaration), says so in the last
  message of every turn, keeps only answers to questions of the form, and survives being
  stored as JSON and read back.
- Every provider payload parser (Telegram, WhatsApp, Twilio, Africa's Talking) and the readers
  of webhook bodies: any input, and real captured payloads with parts removed, retyped or
  replaced, give a parsed delivery or a refusal (`PayloadRefused`, answered 4xx or ignored),
  never another exception (a 500, and a provider retrying for days).
- The e-mail parser: any bytes, and the captured mails cut, spliced and with bytes changed,
  give a `ParsedMail` (what is wrong with a mail is said in it, never raised).
"""

from __future__ import annotations

import contextlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels import email, telegram, whatsapp
from channels.base import Parsed, PayloadRefused
from channels.sms import africastalking, twilio
from gateway.webhooks import form_of, json_of
from intake.deadlines import Deadline
from intake.engine import CONFIRM_RESTART, DECLARATION, REVIEW, Context, Receipt, State
from intake.messages import InboundMessage
from tests.intake_helpers import FILING_FOR_ONESELF, engine, photo

ROOT = Path(__file__).parent.parent
RECEIPT = Receipt("MCM-2026-7K3Q9X", Deadline(date(2026, 12, 4), provisional=False))
PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- the conversation engine ---------------------------------------------------------------------

COMMANDS = ["help", "back", "restart", "status", "language", "skip", "done", "new", "yes", "no",
            "edit applicant.name", "edit dispute.facts", "edit nothing", "帮助", "返回", "修改",
            "重新开始", "跳过", "完成", "anonymous", "匿名", "-", "", " ", "0", "99", "-1",
            "1, 3", "cobalt and tin", "中文", "français", "Kiswahili", "confidentiality"]
NUMBERS = st.integers(min_value=-2, max_value=14).map(str)
ANY_TEXT = st.text(max_size=80)
LINE = st.one_of(st.sampled_from(FILING_FOR_ONESELF), st.sampled_from(COMMANDS), NUMBERS,
                 ANY_TEXT)
MESSAGE = st.tuples(LINE, st.booleans().map(lambda with_file: (photo(),) if with_file else ()),
                    st.sampled_from([{}, {"language": "fr"}, {"country": "CN"}]))


def assert_valid(state: State, messages: list[Any]) -> None:
    """What any conversation must look like between two messages."""
    form = engine().form
    awaits = {"filling": state.current, REVIEW: REVIEW, "declaration": DECLARATION,
              "submitted": None}
    assert state.status in awaits
    assert state.language is None or state.language in form.languages
    if state.status == "filling":
        assert state.current is not None and form.has(state.current)
    else:
        assert state.current is None
    assert (state.status == "submitted") == (state.reference == RECEIPT.reference)
    assert all(form.has(key) or key == DECLARATION for key in state.answers)
    assert messages and all(message.text.strip() for message in messages)
    awaiting = CONFIRM_RESTART if state.confirming_restart else awaits[state.status]
    assert messages[-1].ends_turn and messages[-1].awaiting == awaiting
    assert all(len({c.id for c in m.choices}) == len(m.choices) for m in messages)
    assert State.from_dict(json.loads(json.dumps(state.to_dict()))) == state


@PROPERTY
@given(prefix=st.integers(min_value=0, max_value=len(FILING_FOR_ONESELF)),
       rest=st.lists(MESSAGE, max_size=40))
def test_any_sequence_of_messages_leaves_a_valid_conversation(
        prefix: int, rest: list[tuple[str, tuple[Any, ...], dict[str, str]]]) -> None:
    state = State()
    script = [(line, (), {}) for line in FILING_FOR_ONESELF[:prefix]] + rest
    for number, (text, attachments, hints) in enumerate(script or [("", (), {})]):
        message = InboundMessage("whatsapp", "243970000001", f"m{number}", text,
                                 attachments=attachments, hints=hints)
        turn = engine().handle(state, message, Context(hints=hints))
        messages = list(turn.messages)
        if turn.start_new:  # the gateway opens a new conversation, as after `new`
            state = State()
            messages = engine().resume(state, Context(hints=hints)).messages
        if turn.submit:  # the gateway files it and sends the receipt
            messages += engine().receipt(state, RECEIPT)
        assert_valid(state, messages)


# -- provider payloads ---------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)


def fixtures(folder: str) -> list[Any]:
    return [json.loads(path.read_text(encoding="utf-8").replace("{TWILIO_API_BASE}",
                                                                "https://api.twilio.com"))
            for path in sorted((ROOT / folder / "fixtures").glob("*.json"))]


def paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value (the keys and indexes that lead there)."""
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*at, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, payloads: list[Any]) -> Any:
    """A real payload with a few places removed or replaced by any other JSON value."""
    payload = json.loads(json.dumps(draw(st.sampled_from(payloads))))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        place = draw(st.sampled_from(paths(payload)))
        if not place:
            return draw(JSON)
        parent = payload
        for step in place[:-1]:
            parent = parent[step]
        if draw(st.booleans()):
            del parent[place[-1]]
        else:
            parent[place[-1]] = draw(JSON)
    return payload


def parses_or_refuses(parse: Any, payload: Any) -> None:
    """A delivery the gateway can store as it is, or a refusal."""
    with contextlib.suppress(PayloadRefused):
        parsed = parse(payload)
        assert isinstance(parsed, Parsed)
        for message in parsed.messages:
            assert all(isinstance(value, str) and value for value in (
                message.sender, message.provider_message_id))
            assert isinstance(message.text, str)
            assert all(isinstance(value, str) for value in message.hints.values())
        for report in parsed.reports:
            assert isinstance(report.provider_message_id, str)


def form_fields(payloads: list[Any]) -> st.SearchStrategy[dict[str, str]]:
    """Form parameters as a provider posts them: real ones changed, or any at all."""
    real = st.builds(lambda payload, changes, dropped: {
        key: value for key, value in {**payload, **changes}.items() if key not in dropped},
        st.sampled_from(payloads),
        st.dictionaries(st.sampled_from(sorted({k for p in payloads for k in p})),
                        st.text(max_size=30), max_size=4),
        st.sets(st.sampled_from(sorted({k for p in payloads for k in p})), max_size=3))
    return real | st.dictionaries(st.text(max_size=12), st.text(max_size=30), max_size=6)


@PROPERTY
@given(payload=mutated(fixtures("channels/telegram")) | JSON)
def test_any_telegram_update_is_parsed_or_refused(payload: Any) -> None:
    parses_or_refuses(telegram.parse, payload)


@PROPERTY
@given(payload=mutated(fixtures("channels/whatsapp")) | JSON)
def test_any_whatsapp_webhook_is_parsed_or_refused(payload: Any) -> None:
    parses_or_refuses(whatsapp.parse, payload)


@PROPERTY
@given(params=form_fields(fixtures("channels/sms/twilio")))
def test_any_twilio_request_is_parsed_or_refused(params: dict[str, str]) -> None:
    parses_or_refuses(twilio.parse, params)


@PROPERTY
@given(params=form_fields(fixtures("channels/sms/africastalking")))
def test_any_africastalking_callback_is_parsed_or_refused(params: dict[str, str]) -> None:
    parses_or_refuses(africastalking.parse, params)


@PROPERTY
@given(body=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_any_webhook_body_is_read_or_refused(body: bytes) -> None:
    for read in (json_of, form_of):
        with contextlib.suppress(PayloadRefused):
            read(body)


# -- e-mail ---------------------------------------------------------------------------------------

MAILS = [path.read_bytes() for path in sorted((ROOT / "channels/email/fixtures").glob("*.eml"))]


@st.composite
def damaged_mail(draw: st.DrawFn) -> bytes:
    """A captured mail cut short, with a piece of another spliced in, or bytes changed."""
    raw = bytearray(draw(st.sampled_from(MAILS)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        how = draw(st.sampled_from(["cut", "splice", "change", "insert"]))
        if how == "cut":
            del raw[at:]
        elif how == "splice":
            other = draw(st.sampled_from(MAILS))
            start = draw(st.integers(min_value=0, max_value=len(other)))
            raw[at:at] = other[start:start + draw(st.integers(min_value=1, max_value=400))]
        elif how == "change" and at < len(raw):
            raw[at] = draw(st.integers(min_value=0, max_value=255))
        else:
            raw[at:at] = draw(st.binary(min_size=1, max_size=40) | st.sampled_from(
                [b"\r\n\r\n", b"--", b"=?utf-8?b?", b"Content-Type: multipart/mixed; "
                 b"boundary=x\r\n", b"charset=x-unknown", b"\x00", b"=\r\n"]))
    return bytes(raw)


@pytest.mark.skipif(not MAILS, reason="the e-mail channel's captured mails are not there")
@PROPERTY
@given(raw=damaged_mail() | st.binary(max_size=600))
def test_any_mail_is_read_and_what_is_wrong_with_it_said(raw: bytes) -> None:
    mail = email.parse(raw)
    assert isinstance(mail, email.ParsedMail)
    if not mail.unreadable:
        email.inbound(mail)
