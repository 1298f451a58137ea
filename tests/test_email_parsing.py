"""The e-mail adapter and the reading of letters: every fixture of channels/email/cases.py
through `channels.email.parse` and `intake.mail.MailDesk`, and replies as they are rendered.
No network, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from functools import lru_cache
from pathlib import Path

import pytest

import channels.email as mail
from channels.email.cases import CASES, EmailCase
from channels.email.text import Author, take_apart, trim_signature
from gateway.language_detection import build_detector
from intake.catalog import load_catalogs
from intake.engine import Engine, State
from intake.form import load_form
from intake.mail import ForwardedMail, Letter, MailDesk
from intake.messages import Attachment, Choice, OutboundMessage

FIXTURES = Path(mail.__file__).parent / "fixtures"


@lru_cache(maxsize=1)
def desk() -> MailDesk:
    form = load_form()
    return MailDesk(Engine(form, load_catalogs(), build_detector("langdetect", form.languages)))


def read(name: str) -> mail.ParsedMail:
    return mail.parse((FIXTURES / f"{name}.eml").read_bytes())


def letter_of(parsed: mail.ParsedMail) -> Letter:
    """The letter the gateway builds from a stored mail (files as the evidence store keeps
    them)."""
    files = [Attachment(f.filename, f.media_type, len(f.data), f"{i:064x}")
             for i, f in enumerate(parsed.files, start=1) if f.data]
    assert parsed.sender is not None
    return Letter(sender=parsed.sender.address, sender_name=parsed.sender.name,
                  subject=parsed.subject, text=parsed.text, quoted=parsed.quoted,
                  forwards=[ForwardedMail(f.author.name if f.author else "",
                                          f.author.address if f.author else "", f.text)
                            for f in parsed.forwards],
                  attachments=files,
                  hints={"language": parsed.language} if parsed.language else {})


@pytest.mark.parametrize("case", CASES, ids=[c.fixture for c in CASES])
def test_fixture_is_read_as_the_table_says(case: EmailCase) -> None:
    parsed = read(case.fixture)
    refusal = parsed.unreadable or parsed.automatic
    if case.kept_for_person:
        assert refusal is not None and case.kept_for_person in refusal
        return
    assert refusal is None
    assert parsed.sender is not None and parsed.sender.address == case.sender
    for words in case.says:
        assert words in parsed.text
    for words in case.never_says:
        assert words not in parsed.text
    assert [f.filename for f in parsed.files] == list(case.files)
    if case.forwarded_by:
        forward = parsed.forwards[0]
        assert forward.author is not None and forward.author.address == case.forwarded_by
        assert forward.how == case.forwarded_how
    else:
        assert parsed.forwards == []
    assert (case.problem in " ".join(parsed.problems)) if case.problem else not parsed.problems


@pytest.mark.parametrize("case", [c for c in CASES if not c.kept_for_person],
                         ids=[c.fixture for c in CASES if not c.kept_for_person])
def test_fixture_gives_a_filing_these_answers(case: EmailCase) -> None:
    state = State()
    filed = desk().file(state, letter_of(read(case.fixture)), joins_draft=False)
    assert state.language == case.language
    for key, value in case.fields.items():
        assert state.answers.get(key) == value, key
    assert filed.submit is case.complete
    assert (filed.message is None) is case.complete


def test_message_id_threading_headers_and_recipients_are_read() -> None:
    reply = read("reply_with_quote_fr")
    assert reply.message_id == "7d0e6a1c-reply-fr@example.cd"
    assert reply.in_reply_to == ["mcm.1.TOKEN@mcm.example.org"]
    assert reply.references[-1] == "mcm.1.TOKEN@mcm.example.org"
    assert "intake+token@mcm.example.org" in reply.recipients


def test_a_message_without_message_id_is_known_by_its_contents() -> None:
    raw = b"From: a@example.org\r\nSubject: hi\r\n\r\nThe mine.\r\n"
    assert mail.parse(raw).message_id == mail.parse(raw).message_id
    assert mail.parse(raw).message_id.startswith("sha256:")
    assert mail.parse(raw + b"x").message_id != mail.parse(raw).message_id


def test_rfc2047_subjects_in_every_charset_are_decoded() -> None:
    assert read("html_only_gb2312_zh").subject == "稀土矿污染井水"
    assert read("big5_traditional_zh").subject == "雲母礦童工"
    assert read("prose_only_es").subject == "Denuncia río Chili"
    assert read("forward_inline_gmail_zh").subject == "Fwd: 锡冶炼厂污染水田"


def test_a_gbk_name_labelled_gb2312_is_read_as_gbk() -> None:
    # 镕 is in GBK, not in GB2312; Chinese mail programs label GBK as gb2312.
    parsed = read("html_meta_charset_gbk_zh")
    assert parsed.sender is not None and parsed.sender.name == "朱镕基"
    assert mail.inbound(parsed).hints["name"] == "朱镕基"


def test_a_file_in_both_versions_of_the_body_is_kept_once() -> None:
    raw = (b"From: a@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/alternative; boundary=A\r\n\r\n"
           b"--A\r\nContent-Type: multipart/mixed; boundary=P\r\n\r\n"
           b"--P\r\nContent-Type: text/plain\r\n\r\nThe permit.\r\n"
           b"--P\r\nContent-Type: application/pdf; name=permit.pdf\r\n\r\n%PDF-1.4\r\n"
           b"--P--\r\n"
           b"--A\r\nContent-Type: multipart/mixed; boundary=H\r\n\r\n"
           b"--H\r\nContent-Type: text/html\r\n\r\n<p>The permit.</p>\r\n"
           b"--H\r\nContent-Type: application/pdf; name=permit.pdf\r\n\r\n%PDF-1.4\r\n"
           b"--H--\r\n--A--\r\n")
    parsed = mail.parse(raw)
    assert parsed.text == "The permit."
    assert [f.filename for f in parsed.files] == ["permit.pdf"]


def with_subject(subject: str) -> bytes:
    return (f"From: Amani <amani@example.cd>\r\nSubject: {subject}\r\n"
            "Content-Type: text/plain; charset=UTF-8\r\n\r\nLa mine pompe notre eau.\r\n"
            ).encode()


@pytest.mark.parametrize("subject", [
    "Automatic reply: Plainte", "Auto-Reply: Your application", "AutoReply: x", "Auto: x",
    "Out of Office", "Out of Office: Complaint", "Out of the office until 26 January",
    "Réponse automatique", "Réponse automatique : Plainte", "Absence du bureau",
    "Absent du bureau jusqu'au 12 février", "Respuesta automática", "Respuesta automática: Queja",
    "Resposta automática: Queixa", "自动回复", "自动回复：投诉", "自動回覆：投訴",
    "Автоответ: жалоба",
    "Undeliverable: Plainte", "Undelivered Mail Returned to Sender", "Non remis : Plainte",
    "Delivery Status Notification (Failure)", "Mail delivery failed: returning message",
    "系统退信"])
def test_auto_reply_subjects_are_kept_for_a_person(subject: str) -> None:
    assert mail.parse(with_subject(subject)).automatic is not None


@pytest.mark.parametrize("subject", [
    "Absence d'eau potable depuis l'ouverture de la mine", "Absence de réparation des maisons",
    "Automatic reply needed? No, a person please", "Out of office hours blasting at the quarry",
    "Non remise en état du terrain"])
def test_complaints_whose_subject_starts_like_an_auto_reply_are_read(subject: str) -> None:
    assert mail.parse(with_subject(subject)).automatic is None


def test_a_from_header_that_crashes_the_parser_is_an_unreadable_mail() -> None:
    parsed = mail.parse(b"From: " + b"(" * 5000 + b"a@example.org\r\n\r\nbody\r\n")
    assert parsed.unreadable == "no sender address (From)"
    assert any("From unreadable" in problem for problem in parsed.problems)


@pytest.mark.parametrize(("text", "own", "quoted"), [
    ("Yes, the address is Kipushi.\n\nOn Mon, 5 Jan 2026 at 10:00, MCM <intake@x.org> wrote:\n"
     "> What is your address?", "Yes, the address is Kipushi.", "What is your address?"),
    ("Oui.\n\nLe lun. 5 janv. 2026 à 10:00, MCM <intake@x.org> a\nécrit :\n> Adresse ?",
     "Oui.", "Adresse ?"),
    ("Sí.\n\nEl lun, 5 ene 2026 a las 10:00, MCM (<intake@x.org>) escribió:\n> ¿Dirección?",
     "Sí.", "¿Dirección?"),
    ("好的。\n\n在 2026年1月5日 10:00，MCM <intake@x.org> 写道：\n> 地址？", "好的。", "地址？"),
    ("Here.\n\n-----Original Message-----\nFrom: MCM <intake@x.org>\nSent: Monday\n"
     "Subject: Re: x\n\nAddress?", "Here.", "From: MCM <intake@x.org>"),
    ("Here.\n\nOn Mon, 5 Jan 2026 at 10:00, MCM <intake@x.org> wrote:\n\nAddress?",
     "Here.", "Address?"),
    ("Le 5 janv. 2026 à 10:00, MCM <intake@x.org> a écrit :\n> Adresse ?\nKipushi.\n"
     "> Contact ?\n+243 81 000 0002", "Kipushi.\n+243 81 000 0002", "Adresse ?"),
])
def test_quoted_replies_are_taken_off_in_several_languages(text: str, own: str,
                                                           quoted: str) -> None:
    body = take_apart(text, "Re: complaint")
    assert body.own == own
    assert quoted in body.quoted


@pytest.mark.parametrize(("text", "own"), [
    ("The dam leaked.\nOn 12 March the mine manager wrote:\nWe will pay nothing.\n\n"
     "Our wells are poisoned.", None),
    ("Le chef de site nous a écrit :\n« Nous ne paierons rien. »\nNous demandons la réparation.",
     None),
    ("El 3 de marzo el gerente escribió:\n> No pagaremos nada.\nPedimos que limpien el río.",
     "Pedimos que limpien el río."),
])
def test_the_writers_own_words_after_a_wrote_line_are_kept(text: str, own: str | None) -> None:
    assert take_apart(text).own == (own or text)


@pytest.mark.parametrize(("text", "kept"), [
    ("The river is red.\n\n-- \nJane Mwamba\n+243 970 000 001", "The river is red."),
    ("El río está rojo.\n\nEnviado desde mi iPhone", "El río está rojo."),
    ("河水变红了。\n\n发自我的iPhone", "河水变红了。"),
    ("La rivière est rouge.\n\nEnvoyé de mon iPhone", "La rivière est rouge."),
])
def test_signatures_are_trimmed(text: str, kept: str) -> None:
    assert trim_signature(text) == kept


def test_outlook_reply_header_in_a_reply_is_a_quote_not_a_forward() -> None:
    text = ("Address: Kipushi\n\n________________________________\nDe : MCM <intake@x.org>\n"
            "Envoyé : lundi 5 janvier 2026 10:00\nObjet : Plainte\n\nIl manque l'adresse.")
    body = take_apart(text, "RE: Plainte")
    assert body.own == "Address: Kipushi" and body.forwards == []
    assert "Il manque" in body.quoted


def test_reply_is_plain_text_threaded_and_marked_automatic() -> None:
    thread = mail.Thread(subject=mail.reply_subject("Plainte", "MCM-2026-7K3Q9X", "x"),
                         reply_to="intake+0123456789abcdef@mcm.example.org",
                         in_reply_to="their-2@example.cd", references=("their-1@example.cd",))
    message = OutboundMessage("Merci. Il manque :\n- Adresse", (Choice("a", "Oui"),))
    rendered = mail.render(message, "MCM <intake@mcm.example.org>", "amani@example.cd", thread,
                           "mcm.7.0123456789abcdef@mcm.example.org",
                           datetime(2026, 1, 5, 9, 0, tzinfo=UTC), "fr")
    parsed = BytesParser(policy=policy.default).parsebytes(rendered.as_bytes())
    assert parsed["Subject"] == "Re: Plainte [MCM-2026-7K3Q9X]"
    assert parsed["Message-ID"] == "<mcm.7.0123456789abcdef@mcm.example.org>"
    assert parsed["In-Reply-To"] == "<their-2@example.cd>"
    assert parsed["References"] == "<their-1@example.cd> <their-2@example.cd>"
    assert parsed["Reply-To"] == "intake+0123456789abcdef@mcm.example.org"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed.get_content_type() == "text/plain"
    text = parsed.get_content().replace("\r\n", "\n")
    assert text == "Merci. Il manque :\n- Adresse\n\n1. Oui\n"


def test_the_subject_keeps_one_re_and_one_reference() -> None:
    assert mail.reply_subject("Re: Plainte [MCM-2026-7K3Q9X]", "MCM-2026-7K3Q9X", "x") == \
        "Re: Plainte [MCM-2026-7K3Q9X]"
    assert mail.reply_subject("", None, "Your application") == "Your application"


# -- Reply-To: who the mail is from, for the gateway ------------------------------------------

OWN = "intake@mcm.example.org"


def relayed(reply_to: str, sender: str = "Haki Madini <forms@hakimadini.example.org>",
            extra: str = "") -> bytes:
    return (f"From: {sender}\r\nReply-To: {reply_to}\r\nTo: {OWN}\r\n{extra}"
            f"Subject: Report a mine\r\nMessage-ID: <relay-1@hakimadini.example.org>\r\n\r\n"
            f"The crushing plant has not paid forty workers.\r\n").encode()


def test_a_web_form_relay_mail_is_from_the_person_in_reply_to() -> None:
    parsed = read("web_form_relay_en")
    assert parsed.sender == Author("Joseph Kalala", "joseph.kalala@example.cd")
    assert parsed.via == Author("Haki Madini", "wordpress@hakimadini.example.org")
    message = mail.inbound(parsed)
    assert message.sender == "joseph.kalala@example.cd"
    assert message.hints == {"contact": "joseph.kalala@example.cd", "name": "Joseph Kalala"}
    assert parsed.details()["sent_via"] == {"name": "Haki Madini",
                                            "address": "wordpress@hakimadini.example.org"}


@pytest.mark.parametrize(("reply_to", "sender", "name", "problem"), [
    # Reply-To equal to From (many people set it): From as it is, with its name.
    ("Jane Mwamba <JANE@example.net>", "jane@example.net", "Jane", None),
    # An empty Reply-To, or one naming the gateway itself (answering it would write to
    # ourselves): From.
    ("", "jane@example.net", "Jane", None),
    ("MCM <intake+0123456789abcdef@mcm.example.org>", "jane@example.net", "Jane", None),
    # Several addresses: From when it is one of them, else the first; the others are not
    # written to (an application is not copied to people the gateway cannot tell apart), and a
    # person is told.
    ("coordinator@hakimadini.example.org, Jane <jane@example.net>", "jane@example.net", "Jane",
     "Reply-To names 2 addresses: only From is answered"),
    # Nothing usable: From, and a person is told.
    ("Jane at home", "jane@example.net", "Jane", "Reply-To has no usable address"),
    ("<>", "jane@example.net", "Jane", "Reply-To has no usable address"),
    ("undisclosed-recipients:;", "jane@example.net", "Jane", "Reply-To has no usable address"),
])
def test_reply_to_that_names_no_one_else_leaves_the_mail_from_its_author(
        reply_to: str, sender: str, name: str, problem: str | None) -> None:
    parsed = mail.parse(relayed(reply_to, "Jane <Jane@example.net>"), own_address=OWN)
    assert parsed.sender == Author(name, sender)
    assert parsed.via is None
    assert mail.inbound(parsed).sender == sender
    assert (problem in " ".join(parsed.problems)) if problem else not parsed.problems


def test_several_reply_to_addresses_without_from_among_them_answer_the_first() -> None:
    parsed = mail.parse(relayed("joseph.kalala@example.cd, coordinator@hakimadini.example.org"),
                        own_address=OWN)
    assert parsed.sender == Author("", "joseph.kalala@example.cd")
    assert parsed.via is not None and parsed.via.address == "forms@hakimadini.example.org"
    assert parsed.problems == ["Reply-To names 2 addresses: only the first is answered"]


@pytest.mark.parametrize("reply_to", ["joseph.kalala@", "joseph.kalala(at)example.cd",
                                      "Joseph Kalala <joseph kalala@example.cd>"])
def test_a_malformed_reply_to_on_a_relay_mail_is_answered_at_from_and_shown_to_a_person(
        reply_to: str) -> None:
    parsed = mail.parse(relayed(reply_to), own_address=OWN)
    assert parsed.sender == Author("Haki Madini", "forms@hakimadini.example.org")
    assert parsed.via is None
    [problem] = parsed.problems
    assert "Reply-To" in problem


@pytest.mark.parametrize(("sender", "reply_to", "extra", "automatic"), [
    # A form relay that must not be answered itself names the person to answer.
    ("no-reply@formulaires.example.org", "amani@example.cd", "", None),
    ("Forms <donotreply@forms.example.org>", "Amani <amani@example.cd>", "", None),
    # Without a person in Reply-To, no-reply still means a machine.
    ("no-reply@formulaires.example.org", "", "", "sent by no-reply"),
    ("no-reply@formulaires.example.org", "noreply@formulaires.example.org", "",
     "sent by noreply"),
    # Bounces, auto-replies and mailing lists stay machines, whatever Reply-To says.
    ("MAILER-DAEMON@mx.example.net", "amani@example.cd", "", "sent by mailer-daemon"),
    ("autoreply@kolwezimining.example.cd", "amani@example.cd", "", "sent by autoreply"),
    ("forms@hakimadini.example.org", "amani@example.cd", "List-Id: <members.example.org>\r\n",
     "mailing list"),
    ("forms@hakimadini.example.org", "amani@example.cd", "Auto-Submitted: auto-replied\r\n",
     "Auto-Submitted"),
])
def test_machine_checks_with_a_reply_to(sender: str, reply_to: str, extra: str,
                                        automatic: str | None) -> None:
    parsed = mail.parse(relayed(reply_to, sender, extra), own_address=OWN)
    assert (automatic in (parsed.automatic or "")) if automatic else parsed.automatic is None


def test_an_attached_relay_mail_is_forwarded_by_the_person_in_its_reply_to() -> None:
    inner = relayed("Joseph Kalala <joseph.kalala@example.cd>")
    raw = (b"From: Esther <esther@example.cd>\r\nSubject: Fwd: Report a mine\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
           b"--B\r\nContent-Type: text/plain\r\n\r\nFor your attention.\r\n"
           b"--B\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--B--\r\n")
    parsed = mail.parse(raw, own_address=OWN)
    [forward] = parsed.forwards
    assert forward.author == Author("Joseph Kalala", "joseph.kalala@example.cd")
