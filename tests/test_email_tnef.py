"""Outlook's winmail.dat (TNEF) in the e-mail adapter: the files inside become the mail's files
with their own names, its body gives the words where the mail has none, and one that cannot
be unpacked is kept as it is. The TNEF bytes are written by channels/email/fixtures/winmail.py.
No network, no database."""

from __future__ import annotations

import pytest

import channels.email as mail
from channels.email.fixtures.winmail import (
    RTF,
    File,
    exchange_mail,
    outlook_files,
    outlook_mail,
    pdf,
    tnef,
)

PERMIT = File("permis d'exploitation.pdf", "PERMIS~1.PDF", "application/pdf",
              pdf("Permis d'exploitation 1234"))


def files_of(parsed: mail.ParsedMail) -> list[tuple[str, str, bytes]]:
    return [(f.filename, f.media_type, f.data) for f in parsed.files]


def test_the_files_inside_winmail_dat_are_the_mails_files_byte_for_byte() -> None:
    parsed = mail.parse(outlook_mail(tnef(outlook_files(), rtf=RTF)))
    assert files_of(parsed) == [(f.name, f.media_type, f.data) for f in outlook_files()]
    assert parsed.problems == []
    assert "bulldozers" in parsed.text


def test_the_plain_text_of_the_mail_wins_over_the_body_in_winmail_dat() -> None:
    parsed = mail.parse(outlook_mail(tnef([PERMIT], body="Texte de Outlook."),
                                     text="Le texte du courriel.\n"))
    assert parsed.text == "Le texte du courriel."


@pytest.mark.parametrize(("packed", "words"), [
    (tnef([PERMIT], body="La mine a détruit nos champs."), "La mine a détruit nos champs."),
    (tnef([PERMIT], body="La mine a détruit nos champs.".encode("cp1252")),
     "La mine a détruit nos champs."),
    (tnef([PERMIT], html="<html><body><p>La mine a <b>détruit</b> nos champs.</p></body>"
                         "</html>".encode(), code_page=65001), "La mine a détruit nos champs."),
])
def test_an_empty_plain_text_takes_its_words_from_winmail_dat(packed: bytes, words: str) -> None:
    parsed = mail.parse(outlook_mail(packed, text=""))
    assert parsed.text == words
    assert [f.filename for f in parsed.files] == ["permis d'exploitation.pdf"]


def test_a_whole_message_in_winmail_dat_is_read() -> None:
    parsed = mail.parse(exchange_mail(tnef([PERMIT], body="Name: Peter Banda\n\nThe plant "
                                                          "has not paid us.")))
    assert parsed.text == "Name: Peter Banda\n\nThe plant has not paid us."
    assert [f.filename for f in parsed.files] == ["permis d'exploitation.pdf"]


def test_words_only_in_rtf_are_shown_to_a_person_and_the_files_still_kept() -> None:
    parsed = mail.parse(outlook_mail(tnef([PERMIT], rtf=RTF), text=""))
    assert parsed.text == ""
    assert [f.filename for f in parsed.files] == ["permis d'exploitation.pdf"]
    assert any("RTF body" in problem for problem in parsed.problems)


def test_an_outlook_item_inside_is_shown_to_a_person_and_the_files_beside_it_kept() -> None:
    item = tnef([File("reçu.pdf", "RECU~1.PDF", "application/pdf", pdf("Recu"))],
                body="Nous ne paierons rien.")
    parsed = mail.parse(outlook_mail(tnef([PERMIT], items=(item,))))
    assert [f.filename for f in parsed.files] == ["permis d'exploitation.pdf"]
    assert parsed.problems == ["an Outlook item inside winmail.dat was not unpacked: see the "
                               "raw message"]
    assert "bulldozers" in parsed.text


def test_a_file_without_a_long_name_keeps_its_short_one_and_its_type_from_the_name() -> None:
    old_outlook = File("", "PERMIS~1.PDF", "", PERMIT.data)
    parsed = mail.parse(outlook_mail(tnef([old_outlook])))
    assert files_of(parsed) == [("PERMIS~1.PDF", "application/pdf", PERMIT.data)]


def test_winmail_dat_sent_as_octet_stream_is_unpacked_too() -> None:
    raw = outlook_mail(tnef([PERMIT])).replace(b"application/ms-tnef",
                                               b"application/octet-stream")
    assert [f.filename for f in mail.parse(raw).files] == ["permis d'exploitation.pdf"]


def test_winmail_dat_in_a_forwarded_mail_is_unpacked() -> None:
    inner = outlook_mail(tnef([PERMIT]))
    raw = (b"From: Haki Madini <contact@hakimadini.example.org>\r\nSubject: TR: Plainte\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=F\r\n\r\n"
           b"--F\r\nContent-Type: text/plain\r\n\r\nVoici la plainte.\r\n"
           b"--F\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--F--\r\n")
    parsed = mail.parse(raw)
    assert [f.filename for f in parsed.files] == ["permis d'exploitation.pdf"]
    assert parsed.forwards[0].author is not None
    assert parsed.forwards[0].author.address == "beatrice.nsimba@example.cd"


def _altered(packed: bytes) -> bytes:
    """One byte of the PDF changed, as a broken relay leaves it."""
    at = packed.index(b"Permis d'exploitation")
    return packed[:at] + b"X" + packed[at + 1:]


@pytest.mark.parametrize(("packed", "why"), [
    (_altered(tnef([PERMIT])), "checksum"),
    (b"PK\x03\x04 not TNEF at all", "no TNEF signature"),
    (b"", "no TNEF signature"),
    (tnef([PERMIT])[:-40], "checksum"),
])
def test_a_winmail_dat_that_cannot_be_unpacked_is_kept_as_it_is(packed: bytes, why: str) -> None:
    parsed = mail.parse(outlook_mail(packed))
    assert files_of(parsed) == [("winmail.dat", "application/ms-tnef", packed)]
    [problem] = parsed.problems
    assert "winmail.dat could not be unpacked" in problem and why in problem
    assert "bulldozers" in parsed.text and parsed.unreadable is None
