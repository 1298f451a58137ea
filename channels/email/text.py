"""The words of an e-mail as the writer typed them: the quoted reply, the signature and the
forwarded mails taken apart, for the mail programs people use, in several languages.

Mail programs mark what they add with a line of their own, in the writer's language:
- a forward: Gmail "---------- Forwarded message ---------", Thunderbird "-------- Forwarded
  Message --------", Apple Mail "Begin forwarded message:", Outlook a rule of underscores,
  each followed by a block of header lines (From/De/De :/发件人：…, Date/Sent/Envoyé/日期…,
  Subject/Objet/Asunto/主题…, To/À/Para/收件人…);
- a quoted reply: "On … wrote:", "Le … a écrit :", "El … escribió:", "在 … 写道：", Outlook's
  header block or "-----Original Message-----", then the old mail, often behind "> " (then the
  writer's answers between the quoted lines are theirs). A writer's own "On 12 March the
  manager wrote:" is not one: an attribution counts only before quoted lines, or when it has
  the time and the address a mail program puts in it;
- a signature: "-- " on a line of its own, or "Sent from my iPhone" and its translations.
Pure functions on text; the MIME structure is read in `channels.email`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import getaddresses

MAX_FORWARD_DEPTH = 5
HEADER_BLOCK_LINES = 12

# Header labels of the forwarded block, by what they are.
_LABELS = {
    "from": ("from", "de", "von", "da", "от", "dari", "kutoka", "发件人", "寄件者", "发信人",
             "寄件人", "من"),
    "date": ("date", "sent", "envoyé", "envoye", "enviado", "enviada", "fecha", "data", "datum",
             "日期", "发送时间", "时间", "寄件日期", "дата", "отправлено", "tanggal", "terkirim",
             "tarehe", "imetumwa", "التاريخ", "تاريخ الإرسال", "أرسل"),
    "to": ("to", "à", "a", "para", "pour", "an", "收件人", "кому", "kepada", "kwa", "إلى"),
    "cc": ("cc", "cci", "抄送", "копия", "نسخة"),
    "subject": ("subject", "objet", "sujet", "asunto", "assunto", "betreff", "主题", "主旨",
                "тема", "perihal", "subjek", "kichwa", "الموضوع"),
}
_LABEL_OF = {label: kind for kind, labels in _LABELS.items() for label in labels}
_HEADER_LINE = re.compile(r"^\s*\*?([^\W\d_][^:：]{0,24}?)\*?\s*[:：]\s*(.*)$")

_FORWARD_MARKERS = re.compile(
    r"^\s*-{2,}\s*(forwarded message|original message|message transféré|message transfere|"
    r"message d'origine|mensaje reenviado|mensaje original|mensagem encaminhada|"
    r"mensagem reencaminhada|mensagem original|转发的邮件|转发邮件|原始邮件|原始郵件|"
    r"已转发邮件|пересылаемое сообщение|исходное сообщение|pesan yang diteruskan|"
    r"pesan asli|ujumbe uliotumwa|رسالة محولة|الرسالة الأصلية)\s*-{2,}\s*$"
    r"|^\s*(begin forwarded message|début du message réexpédié|début du message transféré|"
    r"inicio del mensaje reenviado|início da mensagem reencaminhada|"
    r"início da mensagem encaminhada|以下为转发的邮件|以下是转发的邮件|转发的邮件|"
    r"начало переадресованного сообщения)\s*[:：]?\s*$",
    re.IGNORECASE)
_ORIGINAL_MESSAGE = re.compile(
    r"original message|message d'origine|mensaje original|mensagem original|原始邮件|原始郵件|"
    r"исходное сообщение|pesan asli|الرسالة الأصلية", re.IGNORECASE)
_RULE = re.compile(r"^\s*_{10,}\s*$")
_ATTRIBUTION = re.compile(
    r"^\s*(on|le|el|em|am|il|op|в|pada|mnamo|في)\b.{0,300}?\b"
    r"(wrote|a écrit|escribió|escreveu|schrieb|ha scritto|schreef|написал\(а\)|написал|"
    r"написала|menulis|aliandika|كتب)\s*[:：]?\s*$"
    r"|^\s*在.{0,300}写道\s*[:：]?\s*$|^.{0,300}于.{0,120}写道\s*[:：]?\s*$",
    re.IGNORECASE)
_ATTRIBUTION_START = re.compile(r"^\s*(on|le|el|em|am|il|op|в|pada|mnamo|在)\b", re.IGNORECASE)
_CLOCK_TIME = re.compile(r"\d{1,2}[:：]\d{2}")
_SIGNATURE_RULE = re.compile(r"^--\s?$")
_MOBILE_FOOTER = re.compile(
    r"^\s*(sent from my|sent from mail for|get outlook for|envoyé de mon|envoyé depuis|"
    r"enviado desde mi|enviado do meu|enviado de meu|发自我的|来自我的|从我的.{0,20}发送|"
    r"отправлено с|dikirim dari|imetumwa kutoka|أرسلت من)", re.IGNORECASE)
_FORWARD_SUBJECT = re.compile(r"^\s*(fwd?|tr|rv|enc|wg|pd|fw|转发|轉寄|пересл|fwd)\s*[:：]",
                              re.IGNORECASE)
_REPLY_SUBJECT = re.compile(r"^\s*(re|aw|sv|vs|res|rép|答复|回复|回覆|ответ)\s*[:：]",
                            re.IGNORECASE)


@dataclass(frozen=True)
class Author:
    """Who wrote a mail: the display name and the address (either may be empty)."""

    name: str
    address: str


@dataclass
class Forward:
    """A mail forwarded inside another one, with its own words and anything it forwarded."""

    author: Author | None
    subject: str
    date: str
    text: str
    how: str = "inline"  # inline | attachment


@dataclass
class Body:
    """The writer's own words, the old mail they quoted, and the mails they forwarded."""

    own: str
    quoted: str = ""
    forwards: list[Forward] = field(default_factory=list)


def is_forward_subject(subject: str) -> bool:
    """Whether the subject says the mail is a forward ("Fwd:", "TR :", "RV:", "转发：")."""
    return bool(_FORWARD_SUBJECT.match(subject or ""))


def is_reply_subject(subject: str) -> bool:
    """Whether the subject says the mail is a reply ("Re:", "Réf :", "回复：")."""
    return bool(_REPLY_SUBJECT.match(subject or ""))


def take_apart(text: str, subject: str = "", depth: int = 0) -> Body:
    """The writer's words, the quoted reply and the forwarded mails of a body of text."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    own: list[str] = []
    quoted: list[str] = []
    forwards: list[Forward] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        span = _attribution(lines, index)
        if span and _quote_follows(lines, index + span):
            index += span  # the "> " marks tell the old mail from the answers between
            continue
        kind = "reply" if span else _boundary(lines, index, subject)
        if kind == "forward" and depth < MAX_FORWARD_DEPTH:
            forward, nested = _forward(lines[index:], depth)
            forwards.append(forward)
            forwards.extend(nested)
            break
        if kind == "reply":
            quoted.extend(_dequote(lines[index + max(span, 1):]))
            break
        if line.lstrip().startswith(">"):
            quoted.extend(_dequote([line]))
        else:
            own.append(line)
        index += 1
    return Body(own=trim_signature("\n".join(own)), quoted="\n".join(quoted).strip(),
                forwards=forwards)


def trim_signature(text: str) -> str:
    """The text without the signature ("-- " and what follows, or a phone's footer)."""
    lines = text.split("\n")
    for index in range(len(lines) - 1, -1, -1):
        if _SIGNATURE_RULE.match(lines[index]):
            lines = lines[:index]
            break
    while lines and not lines[-1].strip():
        lines.pop()
    kept = [line for line in lines[-3:] if not _MOBILE_FOOTER.match(line)]
    lines = lines[:-3] + kept if len(lines) > 3 else kept
    return "\n".join(lines).strip()


def _boundary(lines: list[str], index: int, subject: str) -> str | None:
    """What starts at this line: a forwarded mail, a quoted reply, or nothing."""
    line = lines[index]
    if _FORWARD_MARKERS.match(line):
        if _ORIGINAL_MESSAGE.search(line) and not is_forward_subject(subject):
            return "reply"
        return "forward"
    if _RULE.match(line) and _header_block_at(lines, index + 1):
        return "forward" if not is_reply_subject(subject) else "reply"
    if _header_block_at(lines, index):
        return "forward" if not is_reply_subject(subject) else "reply"
    return None


def _attribution(lines: list[str], index: int) -> int:
    """How many lines a mail program's "On Mon, 5 Jan 2026, Ana <ana@…> wrote:" takes here (it
    may be wrapped), or 0: it is one when quoted lines follow it or it has a time and an
    address; the writer's own "On 12 March the manager wrote:" has neither."""
    text = lines[index]
    span = 1 if _ATTRIBUTION.match(text) else 0
    if not span and _ATTRIBUTION_START.match(text) and index + 1 < len(lines):
        text = text.rstrip() + " " + lines[index + 1].strip()
        span = 2 if _ATTRIBUTION.match(text) else 0
    stamped = bool(_CLOCK_TIME.search(text)) and "@" in text
    return span if span and (stamped or _quote_follows(lines, index + span)) else 0


def _quote_follows(lines: list[str], index: int) -> bool:
    """Whether the next line that is not blank is quoted ("> …")."""
    following = next((line for line in lines[index:] if line.strip()), "")
    return following.lstrip().startswith(">")


def _header_block_at(lines: list[str], index: int) -> bool:
    """A From line with an address, then at least one more header line (date or subject)."""
    found = _header_lines(lines[index:index + HEADER_BLOCK_LINES])
    return bool(found) and found[0][0] == "from" and "@" in found[0][1] and \
        any(kind in ("date", "subject") for kind, _ in found[1:])


def _header_lines(lines: list[str]) -> list[tuple[str, str]]:
    """The header lines at the start of a block ("From: …", "发件人：…"), in order."""
    found: list[tuple[str, str]] = []
    for line in lines:
        if not line.strip():
            if found:
                break
            continue
        match = _HEADER_LINE.match(line.replace("\t", " "))
        kind = _LABEL_OF.get(match.group(1).strip().casefold()) if match else None
        if match is None or kind is None:
            if found and line.startswith((" ", "\t")):
                continue  # a folded To: or Cc: line
            break
        found.append((kind, match.group(2).strip()))
    return found


def _forward(lines: list[str], depth: int) -> tuple[Forward, list[Forward]]:
    """The forwarded mail that starts at the first line (a marker, a rule or its headers)."""
    start = 1 if _FORWARD_MARKERS.match(lines[0]) or _RULE.match(lines[0]) else 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    headers: dict[str, str] = {}
    index = start
    for kind, value in _header_lines(lines[start:]):
        headers.setdefault(kind, value)
    # Skip the header block itself (its lines, folded lines and the blank line after it).
    while index < len(lines) and lines[index].strip():
        index += 1
    body = take_apart("\n".join(lines[index:]), headers.get("subject", ""), depth + 1)
    forward = Forward(author=author_of(headers.get("from", "")),
                      subject=headers.get("subject", ""), date=headers.get("date", ""),
                      text=body.own)
    return forward, body.forwards


def author_of(value: str) -> Author | None:
    """"Ana Lima <ana@example.org>", "ana@example.org", or "Ana Lima [mailto:ana@…]"."""
    value = re.sub(r"\[mailto:([^\]]+)\]", r"<\1>", value).strip()
    if not value:
        return None
    pairs = getaddresses([value])
    name, address = pairs[0] if pairs else ("", "")
    if "@" not in address:
        found = re.search(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", value)
        address = found.group(0) if found else ""
        name = name or value.replace(address, "").strip(" <>\"'")
    return Author(name=name.strip().strip("\"'"), address=address.strip().lower())


def _dequote(lines: list[str]) -> list[str]:
    """Quoted lines without their "> " marks."""
    return [re.sub(r"^\s*(>\s?)+", "", line) for line in lines]
