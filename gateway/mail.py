"""E-mail in and out: the IMAP poller and the SMTP client of the outbox.

In (`MailPoller`, in `gateway serve` and in `gateway worker` when GATEWAY_IMAP_HOST is set):
only the instance that holds the mailbox's lease (a row in `mailboxes`, renewed while it reads,
taken over when it runs out) reads the folder, so several instances never read a mail twice.
It connects (TLS: none, STARTTLS or SSL), selects the folder and learns its UIDVALIDITY, then
fetches with BODY.PEEK[] (nothing is marked read by fetching) every UID after the last one
stored, from the start again when UIDVALIDITY changed (Message-IDs recognise what was stored).
For each mail, `MailReceiver` keeps the raw message in the evidence folder by sha256 and the
files as evidence (size caps per file and per message, a safe name, sha256, the type its
content shows), then commits the inbound row, its details and the mailbox's cursor in one
transaction; only then is the mail flagged on the server (\\Seen and $MCMStored). A loop (an
auto-reply, a bounce, a mail from our own address) or a mail that cannot be read is stored for a
person and not answered; the others are processed in order, per sender, by the inbound
dispatcher. The sender is the person replies go to: Reply-To where it names someone other than
From (a web form's relay, a mailing service), else From (`channels.email` says how); their
conversation, their contact and every reply follow it, and the relay is kept in the details.
Between rounds it waits in IDLE where the server offers it, else GATEWAY_IMAP_POLL_SECONDS. Any
error: it disconnects, waits (doubling from 2 s to 5 minutes) and connects again.

Out (`MailClient`): the outbox sender's client for the "email" channel. A reply is rendered by
`channels.email` (plain text, In-Reply-To and References of the thread, the reference in the
subject, Reply-To with the thread's token, a Message-ID made from the outbox row, so a retry
sends the same one) and sent with aiosmtplib: a 4xx answer or a lost connection is tried
again with backoff, a 5xx answer fails the row where the secretariat sees it.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

import aiosmtplib
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from channels import email
from channels.base import SendFailure
from gateway.evidence import AttachmentRefused, safe_filename
from gateway.providers import ChannelStatus, Fetched, FetchFailure, Limit, Rendering, Words
from gateway.runtime import Runtime
from gateway.service import now_utc
from gateway.settings import Settings
from intake.messages import Attachment, OutboundMessage
from storage import mail as mail_store
from storage.db import DatabaseUnavailable, transaction, with_retry
from storage.delivery import Claim
from storage.models import Application, Conversation

log = logging.getLogger(__name__)
Sender = tuple[str, str]
STORED = b"$MCMStored"
BACKOFF_FIRST_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 300.0
FETCH_BATCH = 50
IDLE_CHECK_SECONDS = 1.0
IDLE_MAX_SECONDS = 29 * 60
TIMEOUT_SECONDS = 30.0
ERRORS = (IMAPClientError, OSError, DatabaseUnavailable, mail_store.LeaseLost)


def mail_status(settings: Settings) -> ChannelStatus:
    """E-mail is on when the mailbox, the SMTP server and the sender address are set."""
    needed = {"imap_host": settings.imap_host, "imap_user": settings.imap_user,
              "imap_password": settings.imap_password.get_secret_value(),
              "smtp_host": settings.smtp_host, "email_from": settings.email_from}
    missing = [f"GATEWAY_{name.upper()}" for name, value in needed.items() if not value]
    return ChannelStatus(email.CHANNEL, "E-mail", not missing,
                         f"not configured ({', '.join(missing)} unset)" if missing else "")


def mailbox_name(settings: Settings) -> str:
    """The mailbox as the `mailboxes` table names it."""
    return f"{settings.imap_user}@{settings.imap_host}:{imap_port(settings)}/" \
           f"{settings.imap_folder}"


def imap_port(settings: Settings) -> int:
    return settings.imap_port or (993 if settings.imap_tls == "ssl" else 143)


def smtp_port(settings: Settings) -> int:
    default = {"ssl": 465, "starttls": 587, "none": 25}[settings.smtp_tls]
    return settings.smtp_port or default


def our_address(settings: Settings) -> str:
    """The gateway's own address (from GATEWAY_EMAIL_FROM), lower-cased."""
    return parseaddr(settings.email_from)[1].strip().lower()


def reply_address(settings: Settings, token: str | None) -> str:
    """intake+<token>@example.org: replies to it find their thread."""
    address = our_address(settings)
    if not token or "@" not in address:
        return address
    local, domain = address.rsplit("@", 1)
    return f"{local}+{token}@{domain}"


# -- in ----------------------------------------------------------------------------------------


class MailReceiver:
    """Keeps one raw mail: files in evidence, then the row and the cursor in one commit."""

    def __init__(self, runtime: Runtime, mailbox: str, holder: str) -> None:
        self.runtime = runtime
        self.mailbox = mailbox
        self.holder = holder
        # The raw message is kept whole, up to the per-message cap (larger than a file's).
        self.raw_store = copy.copy(runtime.evidence)
        self.raw_store.max_bytes = runtime.settings.email_max_message_bytes

    def store(self, raw: bytes, uid: int, uidvalidity: int, refusal: str | None = None
              ) -> tuple[Sender, int] | None:
        """Store one mail; the (sender, inbound id) to process, or None when it was stored
        before or is kept for a person only."""
        mail = email.parse(raw, own_address=our_address(self.runtime.settings))
        refusal = refusal or mail.unreadable or self._loop(mail)
        raw_sha256 = self.raw_store.store(raw, "message.eml", "message/rfc822").sha256
        kept, refused = ([], []) if refusal else self._keep_files(mail)
        problems = [*mail.problems, *(f"a file was not kept ({item['reason']})"
                                      for item in refused)]
        needs_person = refusal or ("; ".join(problems) if problems else None)
        message = email.inbound(mail, tuple(kept))
        if not message.sender:
            message = dataclasses.replace(message, sender="unknown sender")
        details = mail.details() | {"text": mail.text, "files_refused": refused}

        def work() -> int | None:
            with transaction(self.runtime.sessions) as session:
                now = now_utc()
                inbound_id = mail_store.store_mail(session, message, raw_sha256, details,
                                                   needs_person, bool(refusal), now)
                mail_store.advance(session, self.mailbox, self.holder, uidvalidity, uid, now)
                return inbound_id
        inbound_id = with_retry(work)
        if inbound_id is None or refusal:
            if refusal:
                log.warning("mail %s kept for a person: %s", inbound_id, refusal)
            return None
        return (email.CHANNEL, message.sender), inbound_id

    def _loop(self, mail: email.ParsedMail) -> str | None:
        """Why answering this mail could start a loop: a machine sent it, or we did (From, or
        the relay's From when Reply-To named someone else)."""
        if mail.automatic:
            return f"automatic message, not answered ({mail.automatic})"
        ours = our_address(self.runtime.settings)
        if any(author and email.is_own_address(author.address, ours)
               for author in (mail.sender, mail.via)):
            return "sent from the gateway's own address, not answered"
        return None

    def _keep_files(self, mail: email.ParsedMail) -> tuple[list[Attachment], list[dict[str, str]]]:
        """The files kept as evidence, and those refused with the reason (empty, too_large,
        type); the per-message cap counts the files kept."""
        kept: list[Attachment] = []
        refused: list[dict[str, str]] = []
        total = 0
        cap = self.runtime.settings.email_max_message_bytes
        for part in mail.files:
            name = safe_filename(part.filename)
            if not part.data:
                refused.append({"filename": name, "reason": "empty"})
                continue
            if total + len(part.data) > cap:
                refused.append({"filename": name, "reason": "too_large"})
                continue
            try:
                attachment = self.runtime.evidence.accept(part.data, name, part.media_type)
            except AttachmentRefused as error:
                refused.append({"filename": name, "reason": error.kind})
                continue
            total += len(part.data)
            kept.append(attachment)
        return kept, refused


class MailPoller:
    """Reads one mailbox while this instance holds its lease."""

    def __init__(self, runtime: Runtime, schedule: Callable[[Sender, int], None],
                 holder: str | None = None,
                 pause: Callable[[float, threading.Event], object] | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.schedule = schedule
        self.holder = holder or uuid.uuid4().hex
        self.name = mailbox_name(self.settings)
        self.receiver = MailReceiver(runtime, self.name, self.holder)
        self.pause = pause or (lambda seconds, stop: stop.wait(seconds))
        self.lease = timedelta(seconds=max(60.0, 3 * self.settings.imap_poll_seconds))
        self.uidvalidity = 0
        self.keywords = False
        self.idle = False

    async def run(self) -> None:
        """Read until cancelled (in a thread: imapclient blocks); on cancel, wait for the
        thread to let go of the mailbox (at most one IDLE check)."""
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def schedule(sender: Sender, inbound_id: int) -> None:
            loop.call_soon_threadsafe(self.schedule, sender, inbound_id)
        reading = asyncio.ensure_future(asyncio.to_thread(self.read_until, stop, schedule))
        try:
            await asyncio.shield(reading)
        finally:
            stop.set()
            await asyncio.wait({reading})

    def read_until(self, stop: threading.Event,
                   schedule: Callable[[Sender, int], None] | None = None) -> None:
        """Hold the lease, connect, read and wait, until `stop`; errors reconnect with backoff."""
        schedule = schedule or self.schedule
        backoff = BACKOFF_FIRST_SECONDS
        try:
            while not stop.is_set():
                try:
                    if not self.hold_lease():
                        self.pause(self.lease.total_seconds() / 2, stop)
                        continue
                    with self.connect() as client:
                        backoff = BACKOFF_FIRST_SECONDS
                        self.read(client, stop, schedule)
                except ERRORS as error:
                    log.warning("mailbox %s: %s: %s; connecting again in %.0f s", self.name,
                                type(error).__name__, error, backoff)
                    self.pause(backoff, stop)
                    backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
                except Exception:  # noqa: BLE001 - the mailbox must go on being read
                    log.exception("mailbox %s: unexpected error", self.name)
                    self.pause(backoff, stop)
                    backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
        finally:
            self.release_lease()

    def read(self, client: IMAPClient, stop: threading.Event,
             schedule: Callable[[Sender, int], None]) -> None:
        """Rounds of fetching and waiting, while the lease holds."""
        while not stop.is_set():
            for sender, inbound_id in self.fetch_new(client):
                schedule(sender, inbound_id)
            if not self.hold_lease():
                return
            self.wait_for_mail(client, stop)

    def connect(self) -> IMAPClient:
        """Logged in, the folder selected, what the server offers noted."""
        s = self.settings
        client = IMAPClient(s.imap_host, port=imap_port(s), ssl=s.imap_tls == "ssl",
                            timeout=TIMEOUT_SECONDS)
        try:
            if s.imap_tls == "starttls":
                client.starttls(ssl.create_default_context())
            client.login(s.imap_user, s.imap_password.get_secret_value())
            selected = client.select_folder(s.imap_folder)
            self.uidvalidity = int(selected[b"UIDVALIDITY"])
            self.keywords = b"\\*" in (selected.get(b"PERMANENTFLAGS") or ())
            self.idle = b"IDLE" in client.capabilities()
            self._flag_stored(client)
        except BaseException:
            client.shutdown()
            raise
        return client

    def fetch_new(self, client: IMAPClient) -> list[tuple[Sender, int]]:
        """Store every mail after the cursor, flagging each after its commit."""
        stored: list[tuple[Sender, int]] = []
        while uids := self._new_uids(client):
            sizes = client.fetch(uids, ["RFC822.SIZE"])
            for uid in uids:
                size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
                item = self._store(client, uid, size)
                client.add_flags([uid], self._flags())
                if item is not None:
                    stored.append(item)
        return stored

    def wait_for_mail(self, client: IMAPClient, stop: threading.Event) -> bool:
        """Until new mail arrives (IDLE) or the poll interval passed; True when the server
        announced new mail."""
        if not self.idle:
            self.pause(self.settings.imap_poll_seconds, stop)
            client.noop()
            return False
        deadline = time.monotonic() + min(IDLE_MAX_SECONDS, self.lease.total_seconds() / 3)
        client.idle()
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                responses = client.idle_check(timeout=IDLE_CHECK_SECONDS)
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    return True
            return False
        finally:
            client.idle_done()

    def hold_lease(self) -> bool:
        """Take or renew the lease; False while another instance reads the mailbox."""
        def work() -> bool:
            with transaction(self.runtime.sessions) as session:
                now = now_utc()
                return mail_store.take_lease(session, self.name, self.holder, now,
                                             now + self.lease)
        return with_retry(work)

    def release_lease(self) -> None:
        try:
            with transaction(self.runtime.sessions) as session:
                mail_store.release_lease(session, self.name, self.holder)
        except Exception:  # noqa: BLE001 - the lease runs out by itself
            log.warning("mailbox %s: the lease was not released", self.name)

    def _new_uids(self, client: IMAPClient) -> list[int]:
        validity, last = self._cursor()
        if validity != self.uidvalidity:
            last = 0
        # "UID n:*" also answers the last message when it is below n: filter.
        found = client.search(["UID", f"{last + 1}:*"])
        return sorted(uid for uid in found if uid > last)[:FETCH_BATCH]

    def _store(self, client: IMAPClient, uid: int, size: int) -> tuple[Sender, int] | None:
        """Fetch one mail (only its header when it is over the cap) and store it."""
        cap = self.settings.email_max_message_bytes
        if size > cap:
            header = client.fetch([uid], ["BODY.PEEK[HEADER]"])[uid][b"BODY[HEADER]"]
            return self.receiver.store(bytes(header), uid, self.uidvalidity,
                                       f"message of {size} bytes, over the {cap}-byte cap: "
                                       f"only its header was kept")
        raw = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
        return self.receiver.store(bytes(raw), uid, self.uidvalidity)

    def _cursor(self) -> tuple[int | None, int]:
        def work() -> tuple[int | None, int]:
            with transaction(self.runtime.sessions) as session:
                return mail_store.cursor(session, self.name)
        return with_retry(work)

    def _flags(self) -> list[bytes]:
        return [b"\\Seen", STORED] if self.keywords else [b"\\Seen"]

    def _flag_stored(self, client: IMAPClient) -> None:
        """Flag the mails stored before a crash that came between the commit and the flag."""
        validity, last = self._cursor()
        if not self.keywords or validity != self.uidvalidity or not last:
            return
        missed = client.search(["UID", f"1:{last}", "UNKEYWORD", STORED.decode()])
        if missed:
            client.add_flags(missed, self._flags())


# -- out ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MailPart:
    """One outbox row to send as one e-mail."""

    claim: Claim
    message: OutboundMessage


class MailClient:
    """The outbox sender's client for e-mail: SMTP with aiosmtplib."""

    channel = email.CHANNEL

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings

    def limits(self, recipient: str) -> list[Limit]:
        rate = self.settings.smtp_rate_per_second
        return [Limit("email", rate, max(1, int(rate)))]

    def render(self, claim: Claim, message: OutboundMessage, words: Words, now: datetime
               ) -> Rendering:
        return Rendering([MailPart(claim, message)])

    async def send_part(self, part: Any) -> str:
        """Send one reply; its Message-ID (the same at every try)."""
        mail = await asyncio.to_thread(self.compose, part.claim, part.message, now_utc())
        s = self.settings
        try:
            await aiosmtplib.send(
                mail, hostname=s.smtp_host, port=smtp_port(s), username=s.smtp_user or None,
                password=s.smtp_password.get_secret_value() or None,
                use_tls=s.smtp_tls == "ssl", start_tls=s.smtp_tls == "starttls",
                timeout=TIMEOUT_SECONDS)
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [r.code for r in error.recipients]
            raise smtp_failure(min(codes) if codes else 550, str(error)) from error
        except aiosmtplib.SMTPResponseException as error:
            raise smtp_failure(error.code, error.message) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise SendFailure("transient", f"SMTP: {type(error).__name__}: {error}") from error
        return str(mail["Message-ID"]).strip("<>")

    def compose(self, claim: Claim, message: OutboundMessage, now: datetime) -> EmailMessage:
        """The e-mail for an outbox row, threaded with the mails of its conversation."""
        with transaction(self.runtime.sessions) as session:
            thread = mail_store.thread_of(session, claim.conversation_id) \
                if claim.conversation_id is not None else None
            conversation = session.get(Conversation, claim.conversation_id) \
                if claim.conversation_id is not None else None
            application = session.get(Application, conversation.application_id) \
                if conversation is not None and conversation.application_id else None
            details = dict(thread.details) if thread is not None else {}
            token = thread.token if thread is not None else None
        catalogs = self.runtime.engine.catalogs
        language = claim.language or catalogs.default_language
        domain = our_address(self.settings).rsplit("@", 1)[-1] or "localhost"
        subject = email.reply_subject(details.get("subject", ""),
                                      application.reference if application else None,
                                      catalogs.text(language, "mail.subject"))
        return email.render(
            message, self.settings.email_from, claim.recipient,
            email.Thread(subject=subject, reply_to=reply_address(self.settings, token),
                         in_reply_to=details.get("message_id"),
                         references=tuple(details.get("references") or ())),
            f"mcm.{claim.outbox_id}.{token or 'notice'}@{domain}", now, claim.language)

    async def fetch(self, reference: str, max_bytes: int) -> Fetched:
        raise FetchFailure("download", "e-mail files arrive inside the mail")

    async def close(self) -> None:
        return None


def smtp_failure(code: int, detail: str) -> SendFailure:
    """4xx: try again later; 5xx (and anything else): the server will not take it."""
    kind = "transient" if 400 <= code < 500 else "permanent"
    return SendFailure(kind, f"SMTP {code}: {detail}"[:500])
