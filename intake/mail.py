"""Applications that arrive whole, in writing (e-mail): what the letter says, what is still
missing, and the plain-text form to fill in.

A chat asks one question at a time; a letter answers what it answers at once. `MailDesk.file`
reads a letter into the same draft state the conversation engine keeps, and decides, by the
same rules, whether the application is complete:
- labelled lines ("Name: …", "姓名：…", "Nom : …", "Nombre: …", "Jina: …") are matched against
  the form's labels in every catalog language (`field.<key>.label`) and a few common synonyms;
  a value runs on over the next lines until a blank line or the next label; every value goes
  through the engine's own checks (`Engine.parse_answer`: anonymity, lengths, choices);
- what no label claims is the writer's account: it becomes the facts (greetings and
  sign-offs aside); nothing is guessed from prose, nothing is invented;
- a forwarded mail's author becomes the applicant; the forwarder is recorded as their agent
  when the covering note says so ("on behalf of", "au nom de", "代表"…);
- the sender's address is the contact of whoever wrote (the channel identity counts, Ch.3 §2):
  the address replies go to, which the channel takes from Reply-To where it names someone other
  than From (a web form's relay), so a relay's address is never an applicant's contact;
- missing are the nine items of Ch.3 §2, and the items a given answer makes necessary (an
  agent's name and contact, representatives of more than three applicants, the four parts
  of a confidentiality request);
- the answer is one message in the writer's language: the items still missing with the form
  to fill in, or nothing (the gateway then submits and sends the receipt).
Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from intake.engine import Engine, Invalid, State
from intake.form import REQUIRED_ITEMS, Step
from intake.language import guess_language
from intake.messages import Attachment, OutboundMessage
from intake.text import fold, is_refusal

# Items a written application may name (the language, the role of the writer and the
# declaration are not asked in writing).
NOT_WRITTEN = frozenset({"language", "applicant.on_behalf", "declaration.accepted",
                         "correspondence.language", "correspondence.interpretation_needed"})
# The form sent on request, in this order (items the form lacks are left out).
TEMPLATE_KEYS = (
    "applicant.name", "applicant.address", "applicant.contact", "applicant.category",
    "agent.name", "agent.organisation", "agent.contact",
    "respondent.name", "respondent.address", "respondent.contact",
    "dispute.location", "dispute.minerals", "dispute.facts", "dispute.claims", "dispute.reasons",
    "evidence", "confidentiality.requested", "confidentiality.information",
    "confidentiality.audiences", "confidentiality.duration", "confidentiality.reason",
)
CONFIDENTIALITY_KEYS = ("confidentiality.requested", "confidentiality.information",
                        "confidentiality.audiences", "confidentiality.duration",
                        "confidentiality.reason")
# Words people write before a colon, besides the form's own labels, in the catalog languages.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "applicant.name": (
        "name", "full name", "your name", "applicant", "names", "nom", "nom complet",
        "prénom et nom", "nombre", "nombre completo", "nombres", "nome", "nome completo",
        "jina", "jina kamili", "nama", "nama lengkap", "имя", "фио", "ф.и.о", "الاسم",
        "الاسم الكامل", "姓名", "名字",
        "申请人", "申请方", "申請人", "名称", "姓名或名称"),
    "applicant.address": (
        "address", "your address", "home address", "adresse", "dirección", "direccion",
        "domicilio", "endereço", "endereco", "morada", "anwani", "alamat", "адрес", "العنوان",
        "地址", "住址", "通讯地址"),
    "applicant.contact": (
        "contact", "phone", "telephone", "tel", "mobile", "email", "e-mail", "contact details",
        "téléphone", "telephone number", "courriel", "teléfono", "telefono", "correo",
        "contacto", "contato", "telefone", "simu", "barua pepe", "mawasiliano", "kontak",
        "telepon", "контакт", "контакты", "телефон", "الهاتف", "联系方式", "电话", "手机",
        "联系电话", "邮箱", "聯絡方式"),
    "applicant.count": ("number of applicants", "how many applicants", "nombre de demandeurs",
                        "número de solicitantes", "申请人数"),
    "applicant.category": ("category", "type of applicant", "catégorie", "categoría",
                           "categoria", "类别", "申请方类别"),
    "agent.name": ("agent", "filed by", "mandataire", "apoderado", "representante legal",
                   "代理人", "代理人姓名"),
    "agent.organisation": ("organisation", "organization", "ngo", "association",
                           "organización", "organização", "shirika", "organisasi",
                           "организация", "المنظمة", "组织", "机构", "社会组织"),
    "respondent.name": (
        "respondent", "company", "mine", "complaint against", "against", "entreprise", "société",
        "societe", "empresa", "compañía", "compania", "kampuni", "perusahaan", "компания",
        "الشركة", "相对方", "被投诉方", "被申请人", "公司", "企业", "相對方"),
    "respondent.address": (
        "respondent address", "company address", "address of the company",
        "adresse de l'entreprise", "adresse de la partie mise en cause",
        "dirección de la empresa", "endereço da empresa", "相对方地址", "公司地址", "相對方地址"),
    "respondent.contact": ("respondent contact", "company contact", "相对方联系方式"),
    "dispute.location": ("location", "place", "where", "lieu", "lugar", "local", "mahali",
                         "lokasi", "место", "المكان", "地点", "发生地点", "地點"),
    "dispute.minerals": ("minerals", "mineral", "minerais", "minerai", "minerales", "madini",
                         "минералы", "المعادن", "矿产", "矿种", "礦產"),
    "dispute.facts": (
        "facts", "the facts", "what happened", "description", "complaint", "faits", "les faits",
        "hechos", "los hechos", "descripción", "fatos", "factos", "ukweli", "fakta", "факты",
        "الوقائع", "事实", "争议事实", "事實", "经过", "具体事实"),
    "dispute.claims": (
        "claims", "claim", "demands", "requests", "what we ask", "what we want", "demandes",
        "demande", "revendications", "peticiones", "petición", "pedidos", "pedido", "madai",
        "tuntutan", "требования", "المطالب", "诉求", "主张", "要求", "請求", "主張"),
    "dispute.reasons": (
        "reasons", "reason", "grounds", "motifs", "raisons", "razones", "motivos",
        "fundamentos", "sababu", "alasan", "причины", "الأسباب", "理由", "原因"),
    "dispute.prior_contact": ("prior contact", "contact with the company", "已与相对方沟通"),
    "evidence": ("evidence", "proof", "documents", "preuves", "pièces", "pruebas", "provas",
                 "ushahidi", "bukti", "доказательства", "الأدلة", "证据", "證據", "材料"),
    "confidentiality.requested": ("confidentiality", "confidential", "confidentialité",
                                  "confidencialidad", "confidencialidade", "usiri",
                                  "kerahasiaan", "конфиденциальность", "السرية", "保密",
                                  "保密申请"),
}
# What a covering note says when its writer files for the people in the forwarded mail.
AGENCY = re.compile(
    r"on (their|his|her|the community's|the villagers'?) behalf|on behalf of|we represent|"
    r"represent(s|ing)? (them|him|her)|as (their|his|her) (agent|representative)|"
    r"(asked|mandated|authori[sz]ed) us|au nom de|en leur nom|en son nom|pour le compte de|"
    r"nous représentons|nous a mandatés|nous ont mandatés|mandataire|en nombre de|"
    r"en su nombre|representamos|nos autoriz|em nome de|em seu nome|kwa niaba ya|"
    r"tunawawakilisha|atas nama|mewakili|от имени|представляем|по поручению|نيابة عن|"
    r"بالنيابة|代表|受.{0,30}委托|代理", re.IGNORECASE)
_LABEL = re.compile(r"^\s*(?:[-*•]\s*|\d{1,2}[.)]\s+)?(?P<label>[^:：\n]{1,80}?)\s*\*?\s*"
                    r"(?:\([^)\n]*\)|（[^）\n]*）)?\s*\*?\s*[:：]\s*(?P<value>.*)$")
_COURTESY = re.compile(
    r"^(dear|hello|hi|good (morning|afternoon|day)|thank|thanks|regards|best|sincerely|"
    r"yours|bonjour|madame|monsieur|merci|cordialement|salutations|bien à vous|buenos|"
    r"buenas|hola|estimad|gracias|saludos|atentamente|olá|ola|bom dia|obrigad|"
    r"atenciosamente|habari|asante|salam|halo|selamat|terima kasih|hormat|"
    r"здравствуйте|добрый|спасибо|с уважением|السلام|مرحبا|شكرا|مع التحية|您好|你好|谢谢|"
    r"此致|敬礼|顺祝)", re.IGNORECASE)
_COURTESY_MAX_CHARS = 60
_SIGNATURE_MAX_CHARS = 30


@dataclass(frozen=True)
class ForwardedMail:
    """A mail the writer forwarded: its author and their words."""

    name: str
    address: str
    text: str


@dataclass
class Letter:
    """One e-mail as the gateway read it."""

    sender: str
    sender_name: str = ""
    subject: str = ""
    text: str = ""
    quoted: str = ""
    forwards: list[ForwardedMail] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    hints: dict[str, str] = field(default_factory=dict)


@dataclass
class Reading:
    """The labelled values of a text, by field key, and the words no label claims."""

    fields: dict[str, str] = field(default_factory=dict)
    leftover: str = ""


@dataclass
class LetterTurn:
    """What filing a letter came to: the answer to send (none when it is complete: the gateway
    submits and sends the receipt), whether to submit, and what changed."""

    message: OutboundMessage | None = None
    submit: bool = False
    changed_fields: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class MailDesk:
    """Reads letters into applications with the engine's form, catalogs and checks."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.labels = self._label_index()
        self.boilerplate = {fold(line) for msgid in ("mail.template.intro", "mail.missing.intro",
                                                    "mail.missing.how")
                            for text in engine.catalogs.all_texts(msgid)
                            for line in text.split("\n") if line.strip()}

    # -- reading -------------------------------------------------------------------------

    def _label_index(self) -> dict[str, str]:
        """Folded label: field key, for every label in every catalog, then the synonyms."""
        form = self.engine.form
        index: dict[str, str] = {}
        for step in form.steps:
            if step.key in NOT_WRITTEN:
                continue
            for label in self.engine.catalogs.all_texts(f"field.{step.key}.label"):
                index.setdefault(fold(label), step.key)
        for key, words in SYNONYMS.items():
            if form.has(key):
                for word in words:
                    index.setdefault(fold(word), key)
        return index

    def label_of(self, line: str) -> tuple[str, str] | None:
        """(field key, value) when the line starts with a known label and a colon."""
        match = _LABEL.match(line)
        if match is None:
            return None
        key = self.labels.get(fold(match.group("label").strip(" *")))
        return (key, match.group("value").strip()) if key else None

    def read(self, text: str) -> Reading:
        """The labelled values (a value runs on to a blank line or the next label; the first
        of a repeated label wins) and the rest of the text."""
        fields: dict[str, list[str]] = {}
        rest: list[str] = []
        current: str | None = None
        for line in text.split("\n"):
            labelled = self.label_of(line)
            if labelled and labelled[0] not in fields:
                current = labelled[0]
                fields[current] = [labelled[1]] if labelled[1] else []
            elif not line.strip():
                current = None
                rest.append("")
            elif current and not labelled:
                fields[current].append(line.strip())
            else:
                current = None
                rest.append(line)
        values = {key: "\n".join(lines).strip() for key, lines in fields.items()}
        return Reading({key: value for key, value in values.items() if value},
                       self._account("\n".join(rest)))

    def _account(self, text: str) -> str:
        """The paragraphs of the writer's own account: greetings, thanks and the form's
        instructions left out."""
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        if len(paragraphs) > 1 and _signed(paragraphs[-1]):
            paragraphs.pop()
        kept = []
        for paragraph in paragraphs:
            lines = [line for line in paragraph.split("\n")
                     if fold(line) not in self.boilerplate]
            if not lines or self._courtesy("\n".join(lines)):
                continue
            kept.append("\n".join(lines))
        return "\n\n".join(kept)

    @staticmethod
    def _courtesy(paragraph: str) -> bool:
        """"Dear secretariat,", "Merci de votre aide.", "Thank you,\nJane": no account."""
        short = len(paragraph) <= _COURTESY_MAX_CHARS and paragraph.count("\n") <= 1
        return short and bool(_COURTESY.match(paragraph.strip()))

    def language_of(self, letter: Letter) -> str:
        """The writer's language: their own words, or the forwarded mail when they wrote
        next to nothing; the mail's Content-Language weighs in."""
        sample = letter.text
        if sum(ch.isalpha() for ch in sample) < 20:
            sample = "\n".join([sample, *(f.text for f in letter.forwards)])
        engine = self.engine
        return guess_language(sample, letter.hints, engine.form.languages, engine.detector,
                              engine.catalogs.default_language)

    def asks_for_form(self, letter: Letter) -> bool:
        """Whether a letter with nothing to file asks for the form ("Please send the form")."""
        if letter.attachments or letter.forwards or self.read(letter.text).fields:
            return False
        words = {fold(w) for text in self.engine.catalogs.all_texts("mail.words.template")
                 for w in text.split(",") if w.strip()}
        subject, text = fold(letter.subject), fold(letter.text)
        if subject in words or text in words:
            return True
        return len(text) <= 200 and any(_names(word, text) for word in words if len(word) > 1)

    # -- filing --------------------------------------------------------------------------

    def file(self, state: State, letter: Letter, joins_draft: bool) -> LetterTurn:
        """Apply a letter to the draft (`joins_draft`: a reply to it); say what is missing."""
        if state.status == "new":
            state.status, state.current = "filling", None
            state.language = self.language_of(letter)
            state.answers["language"] = state.language
            if self.asks_for_form(letter):
                return LetterTurn(message=self._message(state, [
                    self._t(state, "mail.template.intro"),
                    self.template(state.language, self.template_keys())]))
        turn = LetterTurn()
        refused = self._apply(state, letter, joins_draft, turn)
        missing = self.missing(state.answers)
        if missing:
            turn.message = self._missing_message(state, missing, refused)
            return turn
        self._finish(state, turn)
        return turn

    def _apply(self, state: State, letter: Letter, joins_draft: bool, turn: LetterTurn
               ) -> dict[str, Invalid]:
        """Set every usable value the letter gives; the values refused, by key."""
        values, defaults = self._values(state, letter, joins_draft)
        refused: dict[str, Invalid] = {}
        for key, text in values.items():
            try:
                value = self.engine.parse_answer(state, key, text)
            except Invalid as invalid:
                refused[key] = invalid
                continue
            if value is not None:
                self._set(state, turn, key, value)
        for key, value in defaults.items():
            if key not in state.answers and key not in refused:
                self._set(state, turn, key, value)
        if letter.attachments:
            self._set(state, turn, "evidence", [a.as_dict() for a in letter.attachments])
        return refused

    def _values(self, state: State, letter: Letter, joins_draft: bool
                ) -> tuple[dict[str, str], dict[str, Any]]:
        """The written values by key, and the values that stand when none is written (the
        writer's own address as contact, the forwarded mail's author as the applicant)."""
        own = self.read(letter.text)
        readings = [self.read(f.text) for f in letter.forwards]
        forwarded: dict[str, str] = {}
        for reading in readings:
            for key, value in reading.fields.items():
                forwarded.setdefault(key, value)
        accounts = [r.leftover for r in readings]
        defaults: dict[str, Any] = {}
        author = next((f for f in letter.forwards if f.address != letter.sender), None)
        if author is not None:
            # Someone else's mail: their words win.
            values = {**self._covering_note(letter, author, own, defaults), **forwarded}
        else:
            values = {**forwarded, **own.fields}
            if not letter.forwards:
                accounts = [own.leftover]
            on_behalf = state.answers.get("applicant.on_behalf") or \
                ("agent" if "agent.name" in values else "self")
            defaults["applicant.on_behalf"] = on_behalf
            defaults["agent.contact" if on_behalf == "agent" else "applicant.contact"] = \
                letter.sender
        if joins_draft:
            for key, value in self.read(letter.quoted).fields.items():
                if key not in values and key not in state.answers:
                    values[key] = value
        account = "\n\n".join(a for a in accounts if a)
        if account and (not joins_draft or "dispute.facts" not in state.answers):
            labelled = values.get("dispute.facts")
            values["dispute.facts"] = f"{labelled}\n\n{account}" if labelled else account
        return values, defaults

    def _covering_note(self, letter: Letter, author: ForwardedMail, own: Reading,
                       defaults: dict[str, Any]) -> dict[str, str]:
        """The forwarder's own values. The author of the forwarded mail is the applicant; the
        forwarder is their agent when the note says so (its name and contact are the agent's)."""
        values = dict(own.fields)
        if author.name and not is_refusal(author.name):
            defaults["applicant.name"] = author.name
        if author.address:
            defaults["applicant.contact"] = author.address
        if not AGENCY.search(letter.text):
            return values
        for mine, theirs in (("applicant.name", "agent.name"),
                             ("applicant.contact", "agent.contact")):
            if mine in values:
                values.setdefault(theirs, values.pop(mine))
        defaults["applicant.on_behalf"] = "agent"
        if letter.sender_name and not is_refusal(letter.sender_name):
            defaults["agent.name"] = letter.sender_name
        defaults["agent.contact"] = letter.sender
        defaults["agent.authorisation"] = "to_be_supplied"
        return values

    def _set(self, state: State, turn: LetterTurn, key: str, value: Any) -> None:
        if not self.engine.form.has(key):
            return
        if key == "evidence":
            items = list(state.answers.get("evidence") or [])
            known = {item.get("sha256") or item.get("text") for item in items}
            value = items + [item for item in value
                             if (item.get("sha256") or item.get("text")) not in known]
        state.answers[key] = value
        if key not in turn.changed_fields:
            turn.changed_fields.append(key)

    def missing(self, answers: dict[str, Any]) -> list[str]:
        """The items still missing: the nine of Ch.3 §2, and the required items of a branch
        an answer opened (agent, representatives, the confidentiality request), in form order."""
        required = set(REQUIRED_ITEMS.values())
        return [step.key for step in self.engine.form.applicable(answers)
                if step.required and (step.key in required or step.when is not None)
                and answers.get(step.key) in (None, "", [], {})]

    def _finish(self, state: State, turn: LetterTurn) -> None:
        """Complete: keep the answers that apply, and ask the gateway to submit."""
        applicable = {step.key for step in self.engine.form.applicable(state.answers)}
        state.answers = {k: v for k, v in state.answers.items() if k in applicable}
        turn.submit = True
        if state.answers.get("agent.authorisation") == "to_be_supplied":
            turn.notes.append(self._t(state, "mail.authorisation",
                                      applicant=state.answers.get("applicant.name", "")))

    # -- writing back --------------------------------------------------------------------

    def _missing_message(self, state: State, missing: list[str], refused: dict[str, Invalid]
                         ) -> OutboundMessage:
        """Which required items are missing, why a value could not be used, and the form."""
        language = self._lang(state)
        labels = "\n".join(f"- {self._label(language, key)}" for key in missing)
        parts = [f"{self._t(state, 'mail.missing.intro')}\n{labels}"]
        anonymous = any(i.msgid == "error.anonymous" for i in refused.values())
        if anonymous:
            parts.append(self._t(state, "mail.anonymous"))
        unusable = [self._t(state, "mail.unusable", label=self._label(language, key),
                            reason=self.engine.catalogs.text(language, i.msgid, **i.values))
                    for key, i in refused.items() if i.msgid != "error.anonymous"]
        if unusable:
            parts.append("\n".join(unusable))
        parts.append(self._t(state, "mail.missing.how"))
        keys = missing + [k for k in CONFIDENTIALITY_KEYS if anonymous and k not in missing]
        parts.append(self.template(language, [k for k in keys if self.engine.form.has(k)]))
        return self._message(state, parts)

    def template(self, language: str, keys: list[str]) -> str:
        """The plain-text form: one "Label*: " line per item (* when required), with the
        choices in brackets where there are choices."""
        lines = []
        for key in keys:
            step = self.engine.form.step(key)
            mark = "*" if step.required and (key in REQUIRED_ITEMS.values()) else ""
            colon = "：" if language == "zh" else ": "
            lines.append(f"{self._label(language, key)}{mark}{self._choices(language, step)}"
                         f"{colon}")
        return "\n".join(lines)

    def template_keys(self) -> list[str]:
        """The items of the form sent on request."""
        return [key for key in TEMPLATE_KEYS if self.engine.form.has(key)]

    def _choices(self, language: str, step: Step) -> str:
        catalogs = self.engine.catalogs
        if step.type == "boolean":
            names = [catalogs.text(language, "choice.yes"), catalogs.text(language, "choice.no")]
        elif step.type in ("choice", "multichoice"):
            names = [catalogs.text(language, f"choice.{step.key}.{c.id}") for c in step.choices]
        else:
            return ""
        return f" ({' / '.join(names)})"

    def _label(self, language: str, key: str) -> str:
        return self.engine.catalogs.text(language, f"field.{key}.label")

    def _message(self, state: State, parts: list[str]) -> OutboundMessage:
        language = self._lang(state)
        direction = "rtl" if language == "ar" else "ltr"
        return OutboundMessage("\n\n".join(p for p in parts if p.strip()), ends_turn=True,
                               direction=direction)

    def _t(self, state: State, msgid: str, **values: object) -> str:
        return self.engine.catalogs.text(self._lang(state), msgid, **values)

    def _lang(self, state: State) -> str:
        return state.language or self.engine.catalogs.default_language


def _signed(paragraph: str) -> bool:
    """Whether the last paragraph is only the writer's name ("Jane", "李秀英")."""
    return "\n" not in paragraph and len(paragraph) <= _SIGNATURE_MAX_CHARS and \
        not re.search(r"[.!?。！？:：,，]", paragraph)


def _names(word: str, text: str) -> bool:
    """Whether the text names the word: as a whole word, or anywhere for Chinese."""
    if re.search("[\u4e00-\u9fff]", word):
        return word in text
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text) is not None
