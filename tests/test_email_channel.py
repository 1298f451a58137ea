"""The e-mail channel end to end against a real Dovecot (started by the tests, mail delivered
with IMAP APPEND) and an SMTP server in this process (aiosmtpd), on SQLite and PostgreSQL:
mailbox to application to the reply that reaches the person."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, update

import channels.email as email_channel
from gateway.mail import MailPoller
from gateway.messaging import Messaging
from gateway.runtime import Runtime, open_runtime
from gateway.service import now_utc
from gateway.settings import Settings
from storage import mail as mail_store
from storage import repository
from storage.db import transaction
from storage.models import Application, Conversation, FieldTranslation, OutboxMessage
from storage.models import InboundMessage as InboundRow
from tests.conftest import missing_service
from tests.mail_servers import PASSWORD, USER, Dovecot, SmtpRecorder, dovecot_missing, start_smtp

FIXTURES = Path(email_channel.__file__).parent / "fixtures"
FROM = "MCM Intake <intake@mcm.example.org>"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    reason = dovecot_missing()
    if reason:
        missing_service(reason)
    server = Dovecot.start()
    yield server
    server.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpRecorder, int]]:
    recorder = SmtpRecorder()
    controller = start_smtp(recorder)
    yield recorder, int(controller.port)
    controller.stop()


@dataclass
class Mail:
    """The gateway with e-mail on, its mailbox and the SMTP server its replies reach."""

    runtime: Runtime
    messaging: Messaging
    poller: MailPoller
    dovecot: Dovecot
    folder: str
    smtp: SmtpRecorder
    scheduled: list[int] = field(default_factory=list)

    def deliver(self, raw: bytes | str, **replace: str) -> None:
        """Put a mail (a fixture's name, or the message) in the mailbox, as the mail server
        does (IMAP APPEND)."""
        if isinstance(raw, bytes):
            data = raw
        else:
            data = raw.encode() if "\n" in raw else (FIXTURES / f"{raw}.eml").read_bytes()
        for old, new in replace.items():
            data = data.replace(old.encode(), new.encode())
        with self.dovecot.client() as client:
            client.append(self.folder, data)

    async def settle(self) -> None:
        """Read the mailbox once, process what came and send every reply."""
        assert self.poller.hold_lease()
        with self.poller.connect() as client:
            for sender, inbound_id in self.poller.fetch_new(client):
                self.scheduled.append(inbound_id)
                self.messaging.inbound.submit(sender, inbound_id)
        await self.messaging.inbound.drain()
        await self.messaging.outbox.run_until_idle()

    def replies_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.smtp.received if m["To"] == address]

    def inbound(self) -> list[InboundRow]:
        with transaction(self.runtime.sessions) as session:
            rows = list(session.scalars(select(InboundRow).order_by(InboundRow.id)))
            for row in rows:
                _ = (row.sender, row.text, row.attachments, row.error)
            return rows

    def applications(self) -> list[Application]:
        with transaction(self.runtime.sessions) as session:
            found = repository.applications(session)
            for application in found:
                _ = application.fields
            return found

    def server_flags(self) -> dict[int, tuple[bytes, ...]]:
        with self.dovecot.client() as client:
            client.select_folder(self.folder, readonly=True)
            uids = client.search(["ALL"])
            return dict(client.get_flags(uids)) if uids else {}


def mail_settings(settings: Settings, dovecot: Dovecot, folder: str, smtp_port: int,
                  **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "imap_host": "127.0.0.1", "imap_port": dovecot.port, "imap_user": USER,
        "imap_password": SecretStr(PASSWORD), "imap_tls": "none", "imap_folder": folder,
        "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_tls": "none",
        "email_from": FROM, "language_detector": "langdetect",
        "max_attachment_bytes": 64 * 1024}
    return settings.model_copy(update=values | extra)


@pytest.fixture
async def mail(settings: Settings, dovecot: Dovecot, smtp: tuple[SmtpRecorder, int]
               ) -> AsyncIterator[Mail]:
    folder = f"t{uuid.uuid4().hex[:12]}"
    with dovecot.client() as client:
        client.create_folder(folder)
    runtime = open_runtime(mail_settings(settings, dovecot, folder, smtp[1]))
    messaging = Messaging(runtime)
    poller = MailPoller(runtime, messaging.inbound.submit, holder="test-instance")
    yield Mail(runtime, messaging, poller, dovecot, folder, smtp[0])
    await messaging.close()
    runtime.close()


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # type: ignore[attr-defined]


def token_of(message: EmailMessage) -> str:
    found = re.search(r"\+([0-9a-f]{16})@", str(message["Reply-To"]))
    assert found is not None
    return found.group(1)


# -- the whole round trip ------------------------------------------------------------------------


async def test_a_complete_mail_is_filed_and_answered_with_the_receipt(mail: Mail) -> None:
    mail.deliver("complete_labelled_en")
    await mail.settle()
    [application] = mail.applications()
    [receipt] = mail.replies_to("jane.mwamba@example.net")
    assert application.reference in body(receipt)
    assert application.reference in str(receipt["Subject"])
    assert str(receipt["Subject"]).startswith("Re: Complaint about the Kolwezi tailings dam")
    assert receipt["In-Reply-To"] == "<CAF3k9Yp2x+complete-en@mail.gmail.com>"
    assert receipt["Auto-Submitted"] == "auto-replied"
    assert "reply to this e-mail" in body(receipt)
    assert application.channel == "email" and application.language == "en"
    assert application.fields["applicant.name"] == "Jane Mwamba"
    assert application.fields["dispute.minerals"] == ["cobalt", "copper"]
    with transaction(mail.runtime.sessions) as session:
        files = [e.filename for e in repository.evidence_of(session, application.id)
                 if e.kind == "attachment"]
        jobs = session.scalar(select(func.count()).select_from(FieldTranslation).where(
            FieldTranslation.application_id == application.id))
    assert files == ["river.jpg"]
    assert jobs and jobs > 0
    [row] = mail.inbound()
    raw = (FIXTURES / "complete_labelled_en.eml").read_bytes()
    assert row.raw_sha256 is not None and mail.runtime.evidence.read(row.raw_sha256) == raw


async def test_an_incomplete_mail_in_french_gets_the_missing_items_then_the_filled_form_files_it(
        mail: Mail) -> None:
    mail.deliver("incomplete_labelled_fr")
    await mail.settle()
    [missing] = mail.replies_to("amani.kabila@example.cd")
    text = body(missing)
    assert "il manque encore ces éléments obligatoires" in text
    assert "- Adresse du demandeur" in text and "Adresse du demandeur*: " in text
    assert "Nom du demandeur" not in text  # it was given
    assert mail.applications() == []
    token = token_of(missing)
    our_id = str(missing["Message-ID"]).strip("<>")
    mail.deliver("reply_with_quote_fr", TOKEN=token,
                 **{f"mcm.1.{token}@mcm.example.org": our_id})
    await mail.settle()
    [application] = mail.applications()
    receipt = mail.replies_to("amani.kabila@example.cd")[-1]
    assert application.reference in body(receipt)
    assert "Votre demande a bien été reçue" in body(receipt) or \
        application.reference in str(receipt["Subject"])
    assert application.language == "fr"
    assert application.fields["applicant.name"] == "Amani Kabila"
    assert application.fields["applicant.address"].startswith("Quartier Mutoshi")
    assert application.fields["dispute.facts"].startswith("Depuis février 2026")
    with transaction(mail.runtime.sessions) as session:
        conversations = session.scalar(select(func.count()).select_from(Conversation))
    assert conversations == 1


async def test_a_forward_by_an_association_files_for_the_author_with_the_association_as_agent(
        mail: Mail) -> None:
    mail.deliver("forward_inline_outlook_fr")
    await mail.settle()
    [application] = mail.applications()
    assert application.fields["applicant.name"] == "Béatrice Nsimba"
    assert application.fields["applicant.contact"] == "beatrice.nsimba@example.cd"
    assert application.fields["agent.contact"] == "contact@hakimadini.example.org"
    assert application.fields["agent.authorisation"] == "to_be_supplied"
    [receipt] = mail.replies_to("contact@hakimadini.example.org")
    assert "mandataire de Béatrice Nsimba" in body(receipt)


# -- Reply-To: web forms and mailing services ---------------------------------------------------

RELAY = "wordpress@hakimadini.example.org"
ESTHER = {"Joseph Kalala": "Esther Ilunga", "joseph.kalala@example.cd": "esther.ilunga@example.cd",
          "q3Xz9mH2": "r4Yz0nI3", "Quartier Kabwe": "Quartier Mwangeji"}


def senders_of_conversations(mail: Mail) -> list[str]:
    with transaction(mail.runtime.sessions) as session:
        return sorted(c.sender for c in session.scalars(select(Conversation)))


async def test_people_writing_through_one_web_form_each_get_their_own_application_and_reply(
        mail: Mail) -> None:
    mail.deliver("web_form_relay_en")
    mail.deliver("web_form_relay_en", **ESTHER)
    await mail.settle()
    assert senders_of_conversations(mail) == ["esther.ilunga@example.cd",
                                              "joseph.kalala@example.cd"]
    filed = {a.fields["applicant.name"]: a for a in mail.applications()}
    assert filed["Joseph Kalala"].fields["applicant.contact"] == "joseph.kalala@example.cd"
    assert filed["Esther Ilunga"].fields["applicant.contact"] == "esther.ilunga@example.cd"
    assert filed["Esther Ilunga"].fields["applicant.address"].startswith("Quartier Mwangeji")
    [to_joseph] = mail.replies_to("joseph.kalala@example.cd")
    [to_esther] = mail.replies_to("esther.ilunga@example.cd")
    assert filed["Joseph Kalala"].reference in body(to_joseph)
    assert filed["Esther Ilunga"].reference not in body(to_joseph)
    assert filed["Esther Ilunga"].reference in body(to_esther)
    assert all(RELAY not in recipients for recipients in mail.smtp.recipients)
    assert [row.needs_person for row in mail.inbound()] == [None, None]


async def test_the_person_answers_from_their_own_mailbox_into_the_same_application(
        mail: Mail) -> None:
    mail.deliver("web_form_relay_en")
    await mail.settle()
    [receipt] = mail.replies_to("joseph.kalala@example.cd")
    mail.deliver(f"From: Joseph Kalala <joseph.kalala@example.cd>\r\n"
                 f"To: intake+{token_of(receipt)}@mcm.example.org\r\nSubject: Re: x\r\n"
                 f"Message-ID: <joseph-2@example.cd>\r\n\r\nstatus\r\n")
    await mail.settle()
    [application] = mail.applications()
    assert senders_of_conversations(mail) == ["joseph.kalala@example.cd"]
    assert application.reference in body(mail.replies_to("joseph.kalala@example.cd")[-1])


async def test_a_no_reply_relay_naming_the_person_in_reply_to_is_answered_to_the_person(
        mail: Mail) -> None:
    mail.deliver("noreply_relay_fr")
    await mail.settle()
    [row] = mail.inbound()
    assert row.sender == "amani.kabila@example.cd" and row.needs_person is None
    [answer] = mail.replies_to("amani.kabila@example.cd")
    assert "il manque encore ces éléments obligatoires" in body(answer)
    assert mail.smtp.recipients == [["amani.kabila@example.cd"]]


async def test_a_mail_whose_reply_to_is_the_gateway_is_answered_at_from(mail: Mail) -> None:
    mail.deliver("prose_only_es", **{"From: ": "Reply-To: intake+0123456789abcdef@mcm.example.org"
                                               "\r\nFrom: "})
    await mail.settle()
    assert len(mail.replies_to("maria.quinones@example.pe")) == 1
    assert mail.smtp.recipients == [["maria.quinones@example.pe"]]


async def test_our_own_reply_coming_back_is_kept_for_a_person_not_answered(mail: Mail) -> None:
    mail.deliver("prose_only_es")
    await mail.settle()
    [ours] = mail.replies_to("maria.quinones@example.pe")
    # Sent back by a forwarding rule that drops Auto-Submitted: From is ours, Reply-To our token.
    del ours["Auto-Submitted"]
    mail.deliver(ours.as_bytes().replace(b"Message-ID: <", b"Message-ID: <bounced-"))
    await mail.settle()
    assert len(mail.smtp.received) == 1
    assert "gateway's own address" in (mail.inbound()[-1].needs_person or "")


# -- threading ------------------------------------------------------------------------------------


async def test_a_mail_naming_the_reference_joins_the_application_of_the_same_sender_only(
        mail: Mail) -> None:
    mail.deliver("complete_labelled_en")
    await mail.settle()
    [application] = mail.applications()
    more = (f"From: Jane Mwamba <jane.mwamba@example.net>\r\nTo: intake@mcm.example.org\r\n"
            f"Subject: More about {application.reference}\r\nMessage-ID: <more-1@example.net>"
            f"\r\n\r\nThe river turned red again today.\r\n")
    mail.deliver(more)
    mail.deliver(more.replace("jane.mwamba@example.net", "someone.else@example.net")
                 .replace("more-1@", "more-2@"))
    await mail.settle()
    assert len(mail.applications()) == 1
    added = mail.replies_to("jane.mwamba@example.net")[-1]
    assert application.reference in body(added)
    joined = [row for row in mail.inbound() if "turned red again" in row.text]
    assert [row.application_id for row in joined] == [application.id, None]
    stranger = mail.replies_to("someone.else@example.net")
    assert len(stranger) == 1 and application.reference not in body(stranger[0])


async def test_a_reply_to_the_token_from_another_address_is_a_new_filing(mail: Mail) -> None:
    mail.deliver("incomplete_labelled_fr")
    await mail.settle()
    token = token_of(mail.replies_to("amani.kabila@example.cd")[0])
    mail.deliver("reply_with_quote_fr", TOKEN=token,
                 **{"amani.kabila@example.cd": "intruder@example.org"})
    await mail.settle()
    with transaction(mail.runtime.sessions) as session:
        conversations = session.scalar(select(func.count()).select_from(Conversation))
    assert conversations == 2


async def test_status_after_submission(mail: Mail) -> None:
    mail.deliver("complete_labelled_en")
    await mail.settle()
    receipt = mail.replies_to("jane.mwamba@example.net")[0]
    token = token_of(receipt)
    mail.deliver(f"From: jane.mwamba@example.net\r\nTo: intake+{token}@mcm.example.org\r\n"
                 f"Subject: Re: x\r\nMessage-ID: <status-1@example.net>\r\n\r\nstatus\r\n")
    await mail.settle()
    answer = mail.replies_to("jane.mwamba@example.net")[-1]
    assert mail.applications()[0].reference in body(answer)
    assert answer["In-Reply-To"] == "<status-1@example.net>"


async def test_a_confidentiality_request_by_mail_after_submission_is_recorded(
        mail: Mail) -> None:
    mail.deliver("complete_labelled_en")
    await mail.settle()
    assert not mail.applications()[0].confidentiality_requested
    token = token_of(mail.replies_to("jane.mwamba@example.net")[0])
    mail.deliver(f"From: jane.mwamba@example.net\r\nTo: intake+{token}@mcm.example.org\r\n"
                 f"Subject: Re: x\r\nMessage-ID: <conf-1@example.net>\r\n\r\n"
                 f"request confidentiality\r\n")
    await mail.settle()
    application = mail.applications()[0]
    assert application.confidentiality_requested
    assert application.confidentiality_decision_deadline is not None
    assert "confidential" in body(mail.replies_to("jane.mwamba@example.net")[-1]).lower()


# -- the mailbox ---------------------------------------------------------------------------------


async def test_a_mail_is_flagged_on_the_server_only_after_it_is_stored(mail: Mail,
                                                                       monkeypatch: Any) -> None:
    mail.deliver("prose_only_es")

    def down(*args: Any, **kwargs: Any) -> None:
        raise mail_store.LeaseLost("the database went away")
    with monkeypatch.context() as patched:
        patched.setattr(mail_store, "advance", down)
        with pytest.raises(mail_store.LeaseLost):
            await mail.settle()
    assert mail.inbound() == []
    assert all(b"\\Seen" not in flags for flags in mail.server_flags().values())
    await mail.settle()
    assert len(mail.inbound()) == 1
    [flags] = mail.server_flags().values()
    assert b"\\Seen" in flags and b"$MCMStored" in flags


async def test_the_same_mail_delivered_twice_is_stored_and_answered_once(mail: Mail) -> None:
    mail.deliver("prose_only_es")
    mail.deliver("prose_only_es")
    await mail.settle()
    assert len(mail.inbound()) == 1
    assert len(mail.replies_to("maria.quinones@example.pe")) == 1


async def test_a_new_uidvalidity_reads_the_folder_again_without_duplicates(mail: Mail) -> None:
    mail.deliver("prose_only_es")
    await mail.settle()
    with mail.dovecot.client() as client:
        client.delete_folder(mail.folder)
        client.create_folder(mail.folder)
    mail.deliver("prose_only_es")
    mail.deliver("big5_traditional_zh")
    await mail.settle()
    assert [row.sender for row in mail.inbound()] == ["maria.quinones@example.pe",
                                                      "chen.mei@example.tw"]
    with transaction(mail.runtime.sessions) as session:
        assert mail_store.cursor(session, mail.poller.name) == (mail.poller.uidvalidity, 2)


async def test_only_one_instance_reads_a_mailbox(mail: Mail) -> None:
    other = MailPoller(mail.runtime, mail.messaging.inbound.submit, holder="other-instance")
    assert mail.poller.hold_lease()
    assert not other.hold_lease()
    mail.deliver("prose_only_es")
    with pytest.raises(mail_store.LeaseLost), mail.poller.connect() as client:
        other.receiver.store((FIXTURES / "prose_only_es.eml").read_bytes(), 1,
                             mail.poller.uidvalidity)
    mail.poller.release_lease()
    assert other.hold_lease() and not mail.poller.hold_lease()
    assert client is not None


async def test_idle_returns_when_the_server_announces_new_mail(mail: Mail) -> None:
    mail.poller.lease = timedelta(days=1)  # only the server's EXISTS can end the wait
    stop = threading.Event()
    assert mail.poller.hold_lease()
    with mail.poller.connect() as client:
        assert mail.poller.idle
        enter_idle = client.idle

        def idle_then_mail_arrives() -> Any:
            entered = enter_idle()
            mail.deliver("prose_only_es")
            return entered
        client.idle = idle_then_mail_arrives  # type: ignore[method-assign]
        assert mail.poller.wait_for_mail(client, stop)
        assert len(mail.poller.fetch_new(client)) == 1


async def test_without_idle_the_mailbox_is_polled(mail: Mail) -> None:
    waits: list[float] = []
    mail.poller.pause = lambda seconds, stop: waits.append(seconds)
    stop = threading.Event()
    assert mail.poller.hold_lease()
    with mail.poller.connect() as client:
        mail.poller.idle = False
        mail.deliver("prose_only_es")
        assert not mail.poller.wait_for_mail(client, stop)
        assert waits == [mail.runtime.settings.imap_poll_seconds]
        assert len(mail.poller.fetch_new(client)) == 1


async def test_an_unreachable_server_is_tried_again_with_doubling_waits(mail: Mail) -> None:
    from tests.mail_servers import free_port

    settings = mail.runtime.settings.model_copy(update={"imap_port": free_port()})
    runtime = Runtime(**{**mail.runtime.__dict__, "settings": settings})
    waits: list[float] = []
    stop = threading.Event()

    def pause(seconds: float, event: threading.Event) -> None:
        waits.append(seconds)
        if len(waits) == 4:
            stop.set()
    poller = MailPoller(runtime, lambda sender, inbound_id: None, holder="x", pause=pause)
    poller.read_until(stop)
    assert waits == [2.0, 4.0, 8.0, 16.0]


# -- attachments and bad input --------------------------------------------------------------------


async def test_attachments_are_kept_as_evidence_with_safe_names(mail: Mail) -> None:
    mail.deliver("attachment_zero_bytes_passwd")
    mail.deliver("forward_attached_rfc822_en")
    await mail.settle()
    passwd, forwarded = mail.inbound()
    assert passwd.attachments == []
    assert passwd.needs_person and "not kept (empty)" in passwd.needs_person
    assert "passwd is empty" in body(mail.replies_to("tester@example.org")[0])
    [contract] = forwarded.attachments
    assert contract["filename"] == "contract.pdf"
    assert contract["media_type"] == "application/pdf"
    assert len(contract["sha256"]) == 64
    assert mail.runtime.evidence.read(contract["sha256"]).startswith(b"%PDF-")
    for name in mail.runtime.evidence.root.rglob("*"):
        assert "passwd" not in name.name


async def test_outlook_winmail_dat_files_are_kept_as_the_evidence_they_are(mail: Mail) -> None:
    from channels.email.fixtures.winmail import outlook_files

    mail.deliver("outlook_winmail_dat_fr")
    await mail.settle()
    [row] = mail.inbound()
    assert row.needs_person is None
    assert [(a["filename"], a["media_type"]) for a in row.attachments] == [
        ("photo du champ détruit.jpg", "image/jpeg"),
        ("procès-verbal de la réunion.pdf", "application/pdf")]
    for stored, original in zip(row.attachments, outlook_files(), strict=True):
        assert mail.runtime.evidence.read(stored["sha256"]) == original.data
    [answer] = mail.replies_to("beatrice.nsimba@example.cd")
    assert "winmail" not in body(answer) and "photo du champ" not in body(answer)


async def test_a_mail_with_only_winmail_dat_is_read_from_it(mail: Mail) -> None:
    mail.deliver("exchange_tnef_only_en")
    await mail.settle()
    [row] = mail.inbound()
    assert "has not paid forty workers" in row.text
    assert [a["filename"] for a in row.attachments] == ["payslips November 2025.pdf"]
    [answer] = mail.replies_to("peter.banda@example.zm")
    assert "- Applicant address" in body(answer)
    assert "Applicant name" not in body(answer) and "Evidence" not in body(answer)


async def test_files_from_winmail_dat_pass_the_same_size_and_type_checks_as_any_file(
        mail: Mail) -> None:
    from channels.email.fixtures.winmail import File, outlook_mail, pdf, tnef

    video = File("vidéo de la digue.mp4", "VIDEOD~1.MP4", "video/mp4",
                 b"\0\0\0\x18ftypmp42" + b"\0" * (70 * 1024))
    disguised = File("photo.jpg", "PHOTO~1.JPG", "image/jpeg", b"<html><body>x</body></html>")
    permit = File("permis.pdf", "PERMIS~1.PDF", "application/pdf", pdf("Permis 1234"))
    mail.deliver(outlook_mail(tnef([video, disguised, permit])))
    await mail.settle()
    [row] = mail.inbound()
    assert [a["filename"] for a in row.attachments] == ["permis.pdf"]
    assert row.needs_person == "a file was not kept (too_large); a file was not kept (type)"
    [answer] = mail.replies_to("beatrice.nsimba@example.cd")
    assert "vidéo de la digue.mp4" in body(answer) and "photo.jpg" in body(answer)


async def test_a_truncated_winmail_dat_loses_nothing_and_is_shown_to_a_person(
        mail: Mail) -> None:
    mail.deliver("outlook_winmail_dat_truncated_fr")
    await mail.settle()
    [row] = mail.inbound()
    assert "bulldozers" in row.text
    assert row.needs_person and "winmail.dat could not be unpacked" in row.needs_person
    raw = (FIXTURES / "outlook_winmail_dat_truncated_fr.eml").read_bytes()
    assert row.raw_sha256 is not None and mail.runtime.evidence.read(row.raw_sha256) == raw
    # Kept as it is, through the same type check as any file: the person is asked to send the
    # files again, and the secretariat can download the whole message.
    [answer] = mail.replies_to("beatrice.nsimba@example.cd")
    assert "winmail.dat" in body(answer)


BAD_INPUT = ["broken_boundary", "nested_60_levels", "header_200kb",
             "auto_reply_out_of_office_fr", "bounce_delivery_status",
             "auto_reply_without_headers_en"]


@pytest.mark.parametrize("fixture", BAD_INPUT)
async def test_bad_input_is_kept_for_a_person_and_never_answered(mail: Mail,
                                                                 fixture: str) -> None:
    mail.deliver(fixture)
    await mail.settle()
    [row] = mail.inbound()
    assert row.needs_person and row.processed_at is not None
    raw = (FIXTURES / f"{fixture}.eml").read_bytes()
    assert row.raw_sha256 is not None and mail.runtime.evidence.read(row.raw_sha256) == raw
    assert mail.smtp.received == []
    with transaction(mail.runtime.sessions) as session:
        assert [r.id for r in mail_store.needing_person(session)] == [row.id]


async def test_an_empty_message_is_kept_for_a_person(mail: Mail) -> None:
    mail.deliver(b"\r\n\r\n")
    await mail.settle()
    assert mail.poller.hold_lease()
    assert mail.poller.receiver.store(b"", 99, mail.poller.uidvalidity) is None
    rows = mail.inbound()
    assert len(rows) == 2 and all(r.needs_person == "empty message" for r in rows)
    assert mail.smtp.received == []


async def test_an_unknown_charset_is_read_and_noted_for_a_person(mail: Mail) -> None:
    mail.deliver("unknown_charset")
    await mail.settle()
    [row] = mail.inbound()
    assert row.needs_person and "unknown charset" in row.needs_person
    assert "galamsey pits" in row.text
    assert len(mail.replies_to("kofi.mensah@example.gh")) == 1


async def test_a_mail_loop_without_loop_headers_is_stopped(mail: Mail) -> None:
    runtime = mail.runtime
    limit = runtime.settings.email_max_replies_per_hour
    for number in range(limit + 2):
        mail.deliver(f"From: loop@example.org\r\nTo: intake@mcm.example.org\r\nSubject: x\r\n"
                     f"Message-ID: <loop-{number}@example.org>\r\n\r\nWe got your mail.\r\n")
    await mail.settle()
    assert len(mail.replies_to("loop@example.org")) == limit
    stopped = [row for row in mail.inbound() if row.needs_person]
    assert len(stopped) == 2 and "a mail loop?" in (stopped[0].needs_person or "")


# -- sending --------------------------------------------------------------------------------------


async def test_a_4xx_answer_is_tried_again_and_a_5xx_answer_fails_the_reply(mail: Mail) -> None:
    mail.smtp.refuse.append((451, "4.3.0 Try again later"))
    mail.deliver("prose_only_es")
    await mail.settle()
    assert mail.smtp.received == []
    with transaction(mail.runtime.sessions) as session:
        row = session.scalars(select(OutboxMessage)).one()
        assert row.state == "pending" and "SMTP 451" in (row.last_error or "")
    with transaction(mail.runtime.sessions) as session:
        session.execute(update(OutboxMessage).values(next_attempt_at=now_utc()))
    await mail.messaging.outbox.run_until_idle()
    assert len(mail.replies_to("maria.quinones@example.pe")) == 1
    mail.smtp.refuse.append((550, "5.1.1 No such user"))
    mail.deliver("big5_traditional_zh")
    await mail.settle()
    with transaction(mail.runtime.sessions) as session:
        failed = session.scalars(select(OutboxMessage).where(
            OutboxMessage.state == "failed")).one()
        assert "SMTP 550" in (failed.last_error or "")


# -- the secretariat ------------------------------------------------------------------------------


async def test_the_secretariat_sees_what_needs_a_person_downloads_it_and_marks_it_handled(
        mail: Mail, aiohttp_client: Any) -> None:
    from gateway.app import create_app
    from gateway.staff import add_user
    from tests.test_secretariat import PASSWORD as STAFF_PASSWORD
    from tests.test_secretariat import csrf_in, log_in

    mail.deliver("bounce_delivery_status")
    await mail.settle()
    [bounce] = mail.inbound()
    client = await aiohttp_client(create_app(mail.runtime.settings, workers=False))
    add_user(mail.runtime.sessions, "olivia", "officer", STAFF_PASSWORD)
    await log_in(client, "olivia")
    page = await (await client.get("/secretariat/messages")).text()
    assert "Undelivered Mail Returned to Sender" in page
    assert "multipart/report" in page
    raw = await client.get(f"/secretariat/messages/{bounce.id}/raw")
    assert await raw.read() == (FIXTURES / "bounce_delivery_status.eml").read_bytes()
    assert raw.headers["Content-Type"] == "application/octet-stream"
    handled = await client.post(f"/secretariat/messages/{bounce.id}/handled",
                                data={"csrf": csrf_in(page)}, allow_redirects=False)
    assert handled.status == 303
    assert "No message waits for a person" in await (await client.get(
        "/secretariat/messages")).text()
    with transaction(mail.runtime.sessions) as session:
        actions = [e.action for e in repository.audit_events(session)]
    assert {"inbound.view", "inbound.download", "inbound.handled"} <= set(actions)


async def test_the_secretariat_asks_for_more_by_e_mail_and_the_answer_joins_the_application(
        mail: Mail, aiohttp_client: Any) -> None:
    from gateway.app import create_app
    from gateway.staff import add_user
    from tests.test_secretariat import PASSWORD as STAFF_PASSWORD
    from tests.test_secretariat import act, token_for

    mail.deliver("complete_labelled_en")
    await mail.settle()
    [application] = mail.applications()
    client = await aiohttp_client(create_app(mail.runtime.settings, workers=False))
    add_user(mail.runtime.sessions, "olivia", "officer", STAFF_PASSWORD)
    officer = await token_for(client, "olivia")
    asked = await act(client, officer, application.reference, "request_supplement",
                      message="Please send a photo of the discharge pipe.",
                      message_language="en", version=application.version)
    assert asked.status == 200, await asked.text()
    await mail.messaging.outbox.run_until_idle()
    notice = mail.replies_to("jane.mwamba@example.net")[-1]
    assert "photo of the discharge pipe" in body(notice)
    assert application.reference in str(notice["Subject"])
    assert notice["In-Reply-To"] == "<CAF3k9Yp2x+complete-en@mail.gmail.com>"
    mail.deliver(
        f"From: Jane Mwamba <jane.mwamba@example.net>\r\n"
        f"To: intake+{token_of(notice)}@mcm.example.org\r\nSubject: Re: {notice['Subject']}\r\n"
        f"Message-ID: <answer-1@example.net>\r\nIn-Reply-To: {notice['Message-ID']}\r\n"
        f"\r\nThe pipe is behind the crusher; my neighbour has the photo.\r\n")
    await mail.settle()
    [again] = mail.applications()
    assert again.status == "under_review"
    with transaction(mail.runtime.sessions) as session:
        answers = [a for a in repository.actions_of(session, again.id)
                   if a.action == "supplement_answered"]
        assert answers and "behind the crusher" in (answers[0].message or "")


async def test_the_poller_reads_in_its_thread_and_hands_mail_to_the_dispatcher(
        mail: Mail) -> None:
    import asyncio

    arrived = asyncio.Event()
    handed: list[int] = []

    def schedule(sender: tuple[str, str], inbound_id: int) -> None:
        handed.append(inbound_id)
        mail.messaging.inbound.submit(sender, inbound_id)
        arrived.set()
    poller = MailPoller(mail.runtime, schedule, holder="serving-instance")
    mail.deliver("prose_only_es")
    reading = asyncio.create_task(poller.run())
    await asyncio.wait_for(arrived.wait(), timeout=60)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    await mail.messaging.inbound.drain()
    await mail.messaging.outbox.run_until_idle()
    assert len(handed) == 1
    assert len(mail.replies_to("maria.quinones@example.pe")) == 1
    assert mail.poller.hold_lease()  # the stopped instance let go of the mailbox


async def test_a_mail_over_the_size_cap_keeps_only_its_header_for_a_person(
        settings: Settings, dovecot: Dovecot, smtp: tuple[SmtpRecorder, int]) -> None:
    folder = f"t{uuid.uuid4().hex[:12]}"
    with dovecot.client() as client:
        client.create_folder(folder)
        client.append(folder, (FIXTURES / "prose_only_es.eml").read_bytes().replace(
            b"Queremos", b"x" * (70 * 1024) + b"\r\nQueremos"))
    runtime = open_runtime(mail_settings(settings, dovecot, folder, smtp[1],
                                         email_max_message_bytes=64 * 1024))
    try:
        poller = MailPoller(runtime, lambda sender, inbound_id: None, holder="x")
        assert poller.hold_lease()
        with poller.connect() as client:
            assert poller.fetch_new(client) == []
        with transaction(runtime.sessions) as session:
            [row] = mail_store.needing_person(session)
            assert "over the 65536-byte cap" in (row.needs_person or "")
            header = runtime.evidence.read(row.raw_sha256 or "")
        assert header.startswith(b"Received:") and b"Queremos" not in header
    finally:
        runtime.close()
