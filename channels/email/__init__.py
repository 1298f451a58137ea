"""E-mail: an RFC 5322 message in, an `email.message.EmailMessage` out.

`parse` reads the raw bytes with the standard library's `email` package and `policy.default`
(RFC 2047 headers, every charset Python knows; GB2312 and GBK are read as GB18030, their
superset, and ISO-8859-1 as windows-1252, as mail programs mean them, in the headers as in the
body; an HTML part without a charset is read in the one its <meta> tag names). It returns a
`ParsedMail`: who wrote (see "Who a mail is from" below), the threading headers (Message-ID,
In-Reply-To, References and the addresses it went to, where the reply token is), the writer's
own words with the quoted reply and the signature taken off (`channels.email.text`), the mails
it forwards (inline, or attached as message/rfc822), and the files. HTML-only mail is turned
into text with inscriptis. Of the versions of one body (multipart/alternative) the words come
from the plain text one, or the HTML one where the plain text is empty, and the files from every
version, each file once. Outlook's winmail.dat (application/ms-tnef) is unpacked
(`channels.email.tnef`): the files inside become the mail's files, with their own names, and its
body gives the words where the plain text is empty (before HTML); one that cannot be unpacked is
kept as it is, with a problem noted.

Who a mail is from: the person the gateway files for and answers, the one whose conversation
it joins. RFC 5322 §3.6.2: replies go to Reply-To when there is one, else to From; web forms and
mailing services (`From: forms@ngo.org` or `no-reply@…`, `Reply-To: the.applicant@…`) rely on
it, and so do help desks that follow it (SupportPal's "Prioritise Reply-To", Zammad's "Sender
based on Reply-To header"). Keying the conversation on From would put everyone who writes
through one relay into one conversation and send their replies to the relay; so the gateway
follows Reply-To always, for the conversation, the contact and the reply alike:
- Reply-To names one person other than From: that person is `sender` (with the name Reply-To
  gives, none invented from From's), and From is kept as `via`, the relay;
- Reply-To is absent, empty, equal to From, or names the gateway itself (our own address or a
  reply token of it, `own_address`; writing to it would be writing to ourselves): From;
- Reply-To names several addresses: From when it is one of them, else the first; the others
  are not written to (an application is not copied to people the gateway cannot tell apart)
  and a problem says so;
- Reply-To has no usable address (malformed, "<>", an empty group): From, and a problem says so
  (a person sees it: answering a relay's address is what Reply-To was there to prevent).
The machine checks look at both: a bounce or an auto-responder in From (mailer-daemon,
postmaster, autoreply…) stays a machine whatever Reply-To says; "no-reply" in From is what a
relay says when Reply-To names a person, and is a machine only without one; a no-reply
`sender` is always a machine; Auto-Submitted, Precedence, List-Id and reports are unchanged.

What is wrong with a message is said, never raised: `unreadable` (empty, a broken MIME
structure, multiparts nested deeper than `MAX_DEPTH`, a header field over `MAX_HEADER_BYTES`,
no sender) and `automatic` (an auto-reply, a bounce, a mailing list: RFC 3834's
Auto-Submitted, Precedence, multipart/report, a null or daemon sender) mean the gateway keeps
the message for a person and does not answer; `problems` (an unknown charset, an empty file,
a winmail.dat that cannot be unpacked, a Reply-To with several or no usable addresses) are
noted beside a message that is still read.

`render` writes one reply: plain text (UTF-8, quoted-printable), with the thread's
In-Reply-To and References, a stable Message-ID and Auto-Submitted: auto-replied, so that
well-behaved auto-responders do not answer it. No network and no database here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import format_datetime, getaddresses, parsedate_to_datetime
from typing import Any

from channels.email import tnef
from channels.email.text import Author, Forward, is_reply_subject, take_apart
from intake.messages import Attachment, InboundMessage, OutboundMessage

CHANNEL = "email"
MAX_HEADER_BYTES = 16 * 1024
MAX_DEPTH = 20
MAX_TEXT_CHARS = 200_000
MAX_MESSAGE_IDS = 50
MAX_ID_CHARS = 250
# Inline pictures this small with a Content-ID are logos and icons of a signature, not evidence.
DECORATION_BYTES = 10 * 1024
CHARSET_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
                   "cp936": "gb18030", "iso-8859-1": "cp1252", "latin1": "cp1252",
                   "us-ascii": "cp1252", "ascii": "cp1252", "ks_c_5601-1987": "cp949",
                   "big5": "big5hkscs"}
_BROKEN_STRUCTURE = ("StartBoundaryNotFoundDefect", "CloseBoundaryNotFoundDefect",
                     "MultipartInvariantViolationDefect", "NoBoundaryInMultipartDefect",
                     "MissingHeaderBodySeparatorDefect")
# Local parts of machines: bounces and auto-responders (in From or Reply-To: always a machine),
# and no-reply (a machine unless a Reply-To names someone else to answer).
_DAEMONS = re.compile(r"^(mailer-daemon|postmaster|bounces?|auto-?reply|autoresponder)"
                      r"([+._-].*)?$", re.IGNORECASE)
_NO_REPLY = re.compile(r"^(no-?reply|do-?not-?reply)([+._-].*)?$", re.IGNORECASE)
# What auto-responders and mail servers put before the subject they answer ("Automatic reply:
# <subject>", "Non remis : <subject>") or use as the whole subject; a complaint may start with
# the same words ("Absence d'eau potable…", "Automatic reply needed?"), so they must be followed
# by a colon or end the subject. The phrases after them are never a complaint's opening.
_AUTO_REPLY_PREFIX = (r"auto(matic)?[ -]?reply|auto|auto-?response|out of (the )?office"
                      r"( auto-?reply)?|réponse automatique|respuesta automática|"
                      r"resposta automática|автоответ|автоматический ответ|balasan otomatis|"
                      r"undeliverable|non remis|no entregado|自动回复|自動回覆")
_AUTOMATIC_SUBJECT = re.compile(
    rf"^\s*({_AUTO_REPLY_PREFIX})\s*[:：]|^\s*({_AUTO_REPLY_PREFIX}|absen(ce|t))\s*$"
    r"|^\s*(out of (the )?office\b(?!\s+hours)|absen(ce|t) du bureau\b|"
    r"message d['’]absence\b|undelivered mail\b|"
    r"delivery status notification\b|mail delivery failed\b|自动回复|自動回覆|退信|系统退信)",
    re.IGNORECASE)
_ENCODED_WORD_CHARSET = re.compile(r"=\?([^?*\s]+)(?=(\*[^?\s]*)?\?[bBqQ]\?)")
_META_CHARSET = re.compile(rb"<meta\b[^>]*?charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)
_MESSAGE_ID = re.compile(rf"<([^<>\s]{{1,{MAX_ID_CHARS}}})>")
_ADDRESS = re.compile(r"^[^@\s<>\"]{1,64}@[^@\s<>\"]{1,255}$")


class _ReadingPolicy(EmailPolicy):
    """`policy.default`, with the charset names of RFC 2047 encoded words read as the body's."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if isinstance(value, str):
            value = _ENCODED_WORD_CHARSET.sub(
                lambda m: "=?" + CHARSET_ALIASES.get(m.group(1).lower(), m.group(1)), value)
        return super().header_fetch_parse(name, value)


_READING = _ReadingPolicy()


@dataclass(frozen=True)
class FilePart:
    """A file in the mail, with the name and type the sender's program gave it."""

    filename: str
    media_type: str
    data: bytes


@dataclass
class ParsedMail:
    """Everything the gateway needs from one e-mail."""

    message_id: str
    # Who the mail is from for the gateway (Reply-To or From, see the module's docstring), and
    # the From of a relay when Reply-To named someone else.
    sender: Author | None = None
    via: Author | None = None
    subject: str = ""
    date: datetime | None = None
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    language: str | None = None
    text: str = ""
    quoted: str = ""
    forwards: list[Forward] = field(default_factory=list)
    files: list[FilePart] = field(default_factory=list)
    automatic: str | None = None
    unreadable: str | None = None
    problems: list[str] = field(default_factory=list)

    def details(self) -> dict[str, Any]:
        """What is stored with the message (everything but the files' bytes and the text)."""
        return {
            "message_id": self.message_id, "subject": self.subject,
            "date": self.date.isoformat() if self.date else None,
            "from_name": self.sender.name if self.sender else "",
            "sent_via": {"name": self.via.name, "address": self.via.address}
            if self.via else None,
            "in_reply_to": self.in_reply_to, "references": self.references,
            "recipients": self.recipients, "language": self.language, "quoted": self.quoted,
            "forwards": [{"name": f.author.name if f.author else "",
                          "address": f.author.address if f.author else "",
                          "subject": f.subject, "date": f.date, "text": f.text, "how": f.how}
                         for f in self.forwards],
            "automatic": self.automatic, "unreadable": self.unreadable,
            "problems": self.problems,
        }


def parse(raw: bytes, own_address: str = "") -> ParsedMail:
    """Read one raw message; whatever is wrong with it is reported, never raised.
    `own_address`: the gateway's address (intake@…), which a Reply-To never makes the sender."""
    fallback_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    mail = ParsedMail(message_id=fallback_id)
    if not raw.strip():
        mail.unreadable = "empty message"
        return mail
    oversized = _oversized_header(raw)
    if oversized:
        mail.unreadable = oversized
        return mail
    try:
        message = BytesParser(policy=_READING).parsebytes(raw)
        _read_headers(mail, message, own_address)
        _read_body(mail, message)
    except Exception as error:  # noqa: BLE001 - no message may stop the mailbox
        mail.unreadable = f"the message cannot be read: {type(error).__name__}"
    if not mail.unreadable and mail.sender is None:
        mail.unreadable = "no sender address (From)"
    return mail


def _oversized_header(raw: bytes) -> str | None:
    """The first header field longer than MAX_HEADER_BYTES (folded lines counted), if any."""
    end = re.search(rb"\r?\n\r?\n", raw)
    head = raw[: end.start() if end else len(raw)]
    name, size = b"", 0
    for line in head.splitlines():
        if line[:1] in (b" ", b"\t") and name:
            size += len(line)
        else:
            name, size = line.split(b":", 1)[0][:60], len(line)
        if size > MAX_HEADER_BYTES:
            return (f"header {name.decode('ascii', 'replace')} is longer than "
                    f"{MAX_HEADER_BYTES} bytes")
    return None


def _header(mail: ParsedMail, message: Message, name: str) -> str:
    """One header as text; a header the parser chokes on counts as absent, and is noted."""
    try:
        value = message.get(name)
        return str(value).strip() if value is not None else ""
    except Exception as error:  # noqa: BLE001 - e.g. RecursionError on "((((…"
        mail.problems.append(f"header {name} unreadable: {type(error).__name__}")
        return ""


def _read_headers(mail: ParsedMail, message: Message, own_address: str = "") -> None:
    ids = _MESSAGE_ID.findall(_header(mail, message, "Message-ID"))
    if ids:
        mail.message_id = ids[0]
    senders = _addresses(_header(mail, message, "From"))
    author = senders[0] if senders else None
    mail.sender = _reply_to(mail, _header(mail, message, "Reply-To"), author, own_address)
    mail.via = author if author and mail.sender and mail.sender.address != author.address \
        else None
    mail.subject = " ".join(_header(mail, message, "Subject").split())[:998]
    mail.in_reply_to = _MESSAGE_ID.findall(_header(mail, message, "In-Reply-To"))[:5]
    mail.references = _MESSAGE_ID.findall(_header(mail, message, "References"))[
        -MAX_MESSAGE_IDS:]
    mail.recipients = [a.address for name in ("To", "Cc", "Delivered-To", "X-Original-To",
                                              "Envelope-To", "X-Delivered-To")
                       for a in _addresses(_header(mail, message, name))][:100]
    mail.language = (_header(mail, message, "Content-Language").split(",")[0].strip()
                     or None)
    try:
        mail.date = parsedate_to_datetime(_header(mail, message, "Date"))
    except (TypeError, ValueError, IndexError):
        mail.date = None
    mail.automatic = _automatic(mail, message)


def _addresses(value: str) -> list[Author]:
    """The mailboxes of an address header, addresses lower-cased; nonsense left out."""
    found = []
    for name, address in getaddresses([value]):
        address = address.strip().lower()
        if _ADDRESS.match(address):
            found.append(Author(name=name.strip(), address=address))
    return found


def _reply_to(mail: ParsedMail, value: str, author: Author | None, own_address: str
              ) -> Author | None:
    """Who the mail is from for the gateway: the Reply-To mailbox that names someone other
    than From (`author`) and the gateway, else From; several or no usable addresses in
    Reply-To are noted as problems. A mail without From stays without a sender."""
    if author is None or not value.strip():
        return author
    listed = _addresses(value)
    if not listed:
        mail.problems.append("Reply-To has no usable address: the reply goes to From")
        return author
    people: dict[str, Author] = {}
    for mailbox in listed:
        if not is_own_address(mailbox.address, own_address):
            people.setdefault(mailbox.address, mailbox)
    if not people:
        return author
    if author.address in people:
        chosen = author if author.name else people[author.address]
    else:
        chosen = next(iter(people.values()))
    if len(people) > 1:
        # No address in the note: it is kept in clear, where a person's contact never is.
        which = "From" if chosen.address == author.address else "the first"
        mail.problems.append(f"Reply-To names {len(people)} addresses: only {which} is "
                             f"answered")
    return chosen


def is_own_address(address: str, own_address: str) -> bool:
    """Whether an address is the gateway's own, or one of its reply tokens (intake+…@…)."""
    if not own_address or "@" not in own_address:
        return False
    local, _, domain = address.strip().lower().rpartition("@")
    own_local, _, own_domain = own_address.lower().rpartition("@")
    return domain == own_domain and local.split("+", 1)[0] == own_local


def _automatic(mail: ParsedMail, message: Message) -> str | None:
    """Why this message was sent by a machine (RFC 3834 and common practice), or None."""
    def get(name: str) -> str:
        return _header(mail, message, name).lower()

    auto_submitted = get("Auto-Submitted")
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Autoresponder"):
        if get(name):
            return f"{name} header"
    if get("Precedence") in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {get('Precedence')}"
    if get("List-Id") or get("List-Unsubscribe"):
        return "mailing list (List-Id)"
    if message.get_content_type() == "multipart/report":
        return "delivery or read report (multipart/report)"
    if get("Return-Path").strip() == "<>":
        return "bounce (empty Return-Path)"
    for author, machines in ((mail.via, (_DAEMONS,)), (mail.sender, (_DAEMONS, _NO_REPLY))):
        local = author.address.split("@")[0] if author else ""
        if any(machine.match(local) for machine in machines):
            return f"sent by {local}"
    if _AUTOMATIC_SUBJECT.match(mail.subject):
        return "an automatic reply or a delivery failure, by its subject"
    return None


# -- the body -----------------------------------------------------------------------------


@dataclass
class _Texts:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    winmail: list[str] = field(default_factory=list)
    unread_rtf: bool = False


def _read_body(mail: ParsedMail, message: Message) -> None:
    broken = _broken_structure(message)
    if broken:
        mail.unreadable = f"broken MIME structure ({broken})"
        return
    texts = _Texts()
    attached: list[tuple[Message, int]] = []
    _walk(mail, message, 0, texts, attached)
    if mail.unreadable:
        return
    words = _body_text(texts)
    if not words and texts.unread_rtf:
        mail.problems.append("the words are only in winmail.dat's RTF body, which is not read: "
                             "see the raw message")
    body = take_apart(words, mail.subject)
    mail.text = body.own[:MAX_TEXT_CHARS]
    mail.quoted = body.quoted[:MAX_TEXT_CHARS]
    mail.forwards = body.forwards
    for part, depth in attached:
        _attached_mail(mail, part, depth)


def _broken_structure(message: Message) -> str | None:
    """The name of a defect that means the parts cannot be told apart, if any."""
    for part in _parts(message, 0):
        for defect in part.defects:
            if type(defect).__name__ in _BROKEN_STRUCTURE:
                return type(defect).__name__
    return None


def _parts(message: Message, depth: int) -> list[Message]:
    """Every part, to MAX_DEPTH + 1 levels (deeper ones are reported by `_walk`)."""
    found = [message]
    if depth <= MAX_DEPTH and message.is_multipart():
        for part in message.get_payload() or []:
            if isinstance(part, Message):
                found.extend(_parts(part, depth + 1))
    return found


def _walk(mail: ParsedMail, part: Message, depth: int, texts: _Texts,
          attached: list[tuple[Message, int]]) -> None:
    """Collect the body texts, the files and the attached mails of one part."""
    if depth > MAX_DEPTH:
        mail.unreadable = f"multiparts nested deeper than {MAX_DEPTH} levels"
        return
    kind = part.get_content_type()
    if part.is_multipart() and kind != "message/rfc822":
        children = [p for p in part.get_payload() or [] if isinstance(p, Message)]
        if kind == "multipart/alternative":
            _alternatives(mail, children, depth, texts, attached)
            return
        for child in children:
            _walk(mail, child, depth + 1, texts, attached)
            if mail.unreadable:
                return
        return
    if kind == "message/rfc822":
        attached.extend((inner, depth + 1) for inner in part.get_payload() or []
                        if isinstance(inner, Message))
        return
    disposition = part.get_content_disposition()
    filename = _filename(mail, part)
    if kind in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        (texts.plain if kind == "text/plain" else texts.html).append(_decode(mail, part))
        return
    if tnef.is_tnef(kind, filename):
        _winmail(mail, part, kind, filename, texts)
        return
    _file(mail, part, kind, filename)


def _alternatives(mail: ParsedMail, versions: list[Message], depth: int, texts: _Texts,
                  attached: list[tuple[Message, int]]) -> None:
    """The versions of one body: the words of the best one, the files of every one, once."""
    readings: list[_Texts] = []
    first_file = len(mail.files)
    for version in versions:
        if _is_rendering(mail, version):
            continue  # text/enriched, text/calendar…: the same body again, not a file
        reading = _Texts()
        own_files = len(mail.files)
        _walk(mail, version, depth + 1, reading, attached)
        if mail.unreadable:
            return
        earlier = {(f.media_type, f.data) for f in mail.files[first_file:own_files]}
        mail.files[own_files:] = [f for f in mail.files[own_files:]
                                  if (f.media_type, f.data) not in earlier]
        readings.append(reading)
    texts.unread_rtf = texts.unread_rtf or any(r.unread_rtf for r in readings)
    words = _best_alternative(readings)
    if words:
        texts.plain.append(words)


def _is_rendering(mail: ParsedMail, version: Message) -> bool:
    """A version of the body in another text format (not plain, not HTML, not a file)."""
    return version.get_content_maintype() == "text" and \
        version.get_content_type() not in ("text/plain", "text/html") and \
        version.get_content_disposition() != "attachment" and not _filename(mail, version)


def _best_alternative(readings: list[_Texts]) -> str:
    """The words of the plain text version, or of the last HTML one where it has none."""
    for reading in readings:
        if any(text.strip() for text in reading.plain):
            return _body_text(reading)
    words = [text for text in map(_body_text, readings) if text]
    return words[-1] if words else ""


def _filename(mail: ParsedMail, part: Message) -> str:
    try:
        return str(part.get_filename() or "")
    except Exception as error:  # noqa: BLE001 - a bad name must not lose the file
        mail.problems.append(f"unreadable file name: {type(error).__name__}")
        return "attachment"


def _file(mail: ParsedMail, part: Message, kind: str, filename: str) -> None:
    """A file: kept as evidence by the gateway, unless it is a signature's logo."""
    data = part.get_payload(decode=True)
    data = data if isinstance(data, bytes) else b""
    if part.get("Content-ID") and part.get_content_disposition() != "attachment" and \
            kind.startswith("image/") and len(data) < DECORATION_BYTES:
        return
    mail.files.append(FilePart(filename=filename or _unnamed(kind), media_type=kind,
                               data=data))


def _winmail(mail: ParsedMail, part: Message, kind: str, filename: str, texts: _Texts) -> None:
    """Outlook's winmail.dat: the files inside, each as a file, and its body for the words;
    one that cannot be unpacked is kept as it is (nothing is lost), and a person is told."""
    data = part.get_payload(decode=True)
    data = data if isinstance(data, bytes) else b""
    try:
        inside = tnef.unpack(data)
    except tnef.Corrupt as error:
        mail.problems.append(f"winmail.dat could not be unpacked ({error}): kept as it is")
        mail.files.append(FilePart(filename=filename or "winmail.dat", media_type=kind,
                                   data=data))
        return
    mail.files.extend(FilePart(filename=f.name or _unnamed(f.media_type),
                               media_type=f.media_type, data=f.data) for f in inside.files)
    mail.problems.extend(inside.notes)
    words = inside.text or (html_to_text(inside.html) if inside.html else "")
    if words:
        texts.winmail.append(words)
    texts.unread_rtf = texts.unread_rtf or inside.rtf_only


def _unnamed(kind: str) -> str:
    return "attachment." + (kind.split("/")[-1].split("+")[0] or "bin")


def _decode(mail: ParsedMail, part: Message) -> str:
    """A text part as str, in its charset (or as UTF-8 with replacements when it is unknown)."""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    declared = (part.get_content_charset() or _meta_charset(part, data) or "utf-8").lower()
    charset = CHARSET_ALIASES.get(declared, declared)
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        mail.problems.append(f"unknown charset {declared[:40]}: read as UTF-8")
        return data.decode("utf-8", errors="replace")


def _meta_charset(part: Message, data: bytes) -> str | None:
    """The charset an HTML part names in its <meta> tag, as a browser reads it."""
    if part.get_content_type() != "text/html":
        return None
    found = _META_CHARSET.search(data[:4096])
    return found.group(1).decode("ascii", "replace") if found else None


def _body_text(texts: _Texts) -> str:
    """The plain text of the body; where it has none, winmail.dat's body, then HTML."""
    for found in (texts.plain, texts.winmail):
        if any(t.strip() for t in found):
            return "\n\n".join(t.strip() for t in found if t.strip())
    return "\n\n".join(html_to_text(h) for h in texts.html if h.strip())


def html_to_text(html: str) -> str:
    """The text of an HTML mail as a person reads it (inscriptis keeps lines and tables)."""
    from inscriptis import get_text

    text = get_text(html)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def _attached_mail(mail: ParsedMail, inner: Message, depth: int) -> None:
    """A mail forwarded as an attachment (message/rfc822): its words, files and forwards."""
    nested = ParsedMail(message_id=mail.message_id)
    _read_headers(nested, inner)
    texts = _Texts()
    attached: list[tuple[Message, int]] = []
    _walk(nested, inner, depth, texts, attached)
    if nested.unreadable:
        mail.unreadable = nested.unreadable
        return
    body = take_apart(_body_text(texts), nested.subject)
    mail.forwards.append(Forward(author=nested.sender, subject=nested.subject,
                                 date=_header(mail, inner, "Date"), text=body.own,
                                 how="attachment"))
    mail.forwards.extend(body.forwards)
    mail.files.extend(nested.files)
    mail.problems.extend(nested.problems)
    for part, part_depth in attached:
        _attached_mail(mail, part, part_depth)


# -- to the gateway and back ------------------------------------------------------------------


def readable_text(mail: ParsedMail) -> str:
    """The writer's words and each forwarded mail, as the transcript shows them."""
    parts = [mail.text] if mail.text else []
    for forward in mail.forwards:
        author = forward.author
        who = f"{author.name} <{author.address}>".strip() if author else ""
        parts.append(f"[{forward.how} forward] {who}\n{forward.subject}\n\n{forward.text}"
                     .strip())
    return "\n\n".join(parts)


def inbound(mail: ParsedMail, attachments: tuple[Attachment, ...] = ()) -> InboundMessage:
    """The neutral message of a readable mail; the hints say who wrote and in what language."""
    sender = mail.sender
    hints = {"contact": sender.address} if sender else {}
    if sender and sender.name:
        hints["name"] = sender.name
    if mail.language:
        hints["language"] = mail.language
    # Received now, whatever the Date header (the sender's clock) says.
    return InboundMessage(channel=CHANNEL, sender=sender.address if sender else "",
                          provider_message_id=mail.message_id, text=readable_text(mail),
                          attachments=attachments, hints=hints)


@dataclass(frozen=True)
class Thread:
    """What a reply needs from its thread."""

    subject: str
    reply_to: str
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()


def reply_subject(subject: str, reference: str | None, fallback: str) -> str:
    """"Re: <their subject>", with the reference in brackets once there is one."""
    base = " ".join(subject.split())[:200] or fallback
    if subject and not is_reply_subject(base):
        base = f"Re: {base}"
    if reference and reference not in base:
        base = f"{base} [{reference}]"
    return base


def render(message: OutboundMessage, sender: str, recipient: str, thread: Thread,
           message_id: str, now: datetime, language: str | None = None) -> EmailMessage:
    """One reply as an e-mail: plain text, threaded, marked as an automatic reply."""
    mail = EmailMessage(policy=policy.SMTP)
    mail["From"] = sender
    mail["To"] = recipient
    mail["Reply-To"] = thread.reply_to
    mail["Subject"] = thread.subject
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = f"<{message_id}>"
    if thread.in_reply_to:
        mail["In-Reply-To"] = f"<{thread.in_reply_to}>"
    references = [*thread.references, *([thread.in_reply_to] if thread.in_reply_to else [])]
    if references:
        unique = list(dict.fromkeys(references))[-20:]
        mail["References"] = " ".join(f"<{r}>" for r in unique)
    mail["Auto-Submitted"] = "auto-replied"
    mail["X-Auto-Response-Suppress"] = "All"
    if language:
        mail["Content-Language"] = language
    mail.set_content(_plain(message), subtype="plain", charset="utf-8",
                     cte="quoted-printable")
    return mail


def _plain(message: OutboundMessage) -> str:
    """The text, with choices as numbered lines (an e-mail has no buttons)."""
    lines = [message.text.strip()]
    if message.choices:
        lines.append("\n".join(f"{n}. {c.label}" for n, c in enumerate(message.choices, 1)))
    return "\n\n".join(line for line in lines if line) + "\n"
