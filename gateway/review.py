"""What the secretariat reads: the queue with its filters, one application in full, exports
and statistics. Shared by the pages under /secretariat and the JSON API under /api/.

Identity data (the form's `identity: true` fields and the channel address) is shown only where
the rules allow it, and every time it is shown the audit log says who saw it, when and where:
- no confidentiality request (or a refused one): shown, and the view is logged;
- a pending or granted request: masked for everyone, in lists, exports, fields, evidence file
  names and the transcript (every version of an answer, a corrected name too, in any case);
  a supervisor or admin may reveal it for one application, an explicit action that is logged;
- anything for a named audience (respondent, experts, public) never carries identity data, and
  leaves out applications whose pending or granted request names that audience.
The web chat's address is the applicant's cookie, which opens their chat: no one is shown it.
"""

from __future__ import annotations

import csv
import io
import re
import statistics as stats
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway.decisions import NotFound, applicant_language, confidentiality_of
from gateway.queue import queue_entry
from gateway.runtime import Runtime
from gateway.service import now_utc
from gateway.staff import Staff, audit_event
from intake import workflow
from intake.deadlines import receipt_date, working_days_between
from intake.engine import Engine, Invalid, State
from intake.form import Form, Step
from intake.places import country_of
from intake.translation import FREE_TEXT_TYPES, base_language
from storage import repository, translations
from storage.db import transaction
from storage.models import Application

PAGE_LANGUAGE = "en"
AUDIENCES = ("secretariat", "respondent", "experts", "public")
SORTS = ("deadline", "-deadline", "submitted", "-submitted")
IDENTITY_COLUMNS = ("applicant.name", "applicant.address", "applicant.contact", "agent.name",
                    "agent.contact")
YES = frozenset({"1", "yes", "true", "on"})
NO = frozenset({"0", "no", "false", "off"})
MAX_FILTER_CHARS = 80
WEB_CHAT_SENDER = "web chat"
WEB_CHAT_CHANNEL = "web"  # gateway.web.chat.CHANNEL, not imported: the CLI reads this module


class BadFilter(ValueError):
    """A filter value that is not one of the allowed ones; the message says which."""


@dataclass(frozen=True)
class ReviewFilter:
    """What the queue is narrowed to, and its order."""

    status: str | None = None
    channel: str | None = None
    language: str | None = None
    country: str | None = None
    mineral: str | None = None
    issue_type: str | None = None
    confidentiality: bool | None = None
    overdue: bool = False
    sort: str = "deadline"

    @property
    def active(self) -> bool:
        """Whether anything narrows the queue."""
        return any((self.status, self.channel, self.language, self.country, self.mineral,
                    self.issue_type, self.confidentiality is not None, self.overdue))

    def as_query(self) -> dict[str, str]:
        """The filter as query-string values (for links to exports)."""
        values = {"status": self.status, "channel": self.channel, "language": self.language,
                  "country": self.country, "mineral": self.mineral,
                  "issue_type": self.issue_type,
                  "confidentiality": None if self.confidentiality is None
                  else ("yes" if self.confidentiality else "no"),
                  "overdue": "yes" if self.overdue else None,
                  "sort": None if self.sort == "deadline" else self.sort}
        return {key: value for key, value in values.items() if value}


def parse_filter(query: Mapping[str, str], form: Form) -> ReviewFilter:
    """The filter from a query string; BadFilter names a value that is not allowed."""
    def one_of(name: str, allowed: tuple[str, ...] | list[str]) -> str | None:
        value = (query.get(name) or "").strip()
        if value and value not in allowed:
            raise BadFilter(f"{name} must be one of: {', '.join(allowed)}")
        return value or None

    def text(name: str) -> str | None:
        value = (query.get(name) or "").strip()
        if len(value) > MAX_FILTER_CHARS:
            raise BadFilter(f"{name} is too long")
        return value or None

    def flag(name: str) -> bool | None:
        value = (query.get(name) or "").strip().lower()
        if not value:
            return None
        if value not in YES | NO:
            raise BadFilter(f"{name} must be yes or no")
        return value in YES

    return ReviewFilter(
        status=one_of("status", workflow.STATUSES), channel=text("channel"),
        language=text("language"), country=text("country"),
        mineral=one_of("mineral", choice_ids(form, "dispute.minerals")),
        issue_type=one_of("issue_type", choice_ids(form, "dispute.issue_types")),
        confidentiality=flag("confidentiality"), overdue=bool(flag("overdue")),
        sort=one_of("sort", SORTS) or "deadline")


def choice_ids(form: Form, key: str) -> list[str]:
    """The choice ids of a step, or none when the form has no such step."""
    return [c.id for c in form.step(key).choices] if form.has(key) else []


def identity_keys(form: Form) -> list[str]:
    """The keys of the fields that identify a person."""
    return [step.key for step in form.steps if step.identity]


def sender_shown(channel: str, sender: str) -> str:
    """The channel address as staff may see it: a web chat's address is the applicant's cookie,
    and whoever holds it can read their chat and write as them, so it is never shown."""
    return WEB_CHAT_SENDER if channel == WEB_CHAT_CHANNEL else sender


# -- the queue --------------------------------------------------------------------------------


def queue_rows(runtime: Runtime, staff: Staff, wanted: ReviewFilter, where: str = "queue"
               ) -> list[dict[str, Any]]:
    """The queue for this user; showing unmasked applicant names is logged."""
    today = receipt_date(now_utc())
    with transaction(runtime.sessions) as session:
        applications = repository.applications(session, repository.QueueFilter(
            status=wanted.status, channel=wanted.channel, language=wanted.language,
            confidentiality_requested=wanted.confidentiality))
        states = translations.states_by_application(session, [a.id for a in applications])
        rows = _sorted([row for row in (queue_row(runtime.engine, a, today, states.get(a.id, {}))
                                        for a in applications) if _matches(row, wanted)],
                       wanted.sort)
        shown = [row["reference"] for row in rows if not row["identity_masked"]]
        by_reference = {a.reference: a for a in applications}
        failures = repository.failed_deliveries(session, [a.id for a in applications])
        for row in rows:
            application = by_reference[row["reference"]]
            row["delivery_failures"] = failures.get(application.id, 0)
            row["applicant"] = (workflow.MASK if row["identity_masked"]
                                else application.fields.get("applicant.name"))
        if shown:
            repository.add_audit(session, audit_event(staff, "identity.view", where=where,
                                                      references=shown))
    return rows


def queue_row(engine: Engine, application: Application, today: date,
              translation_states: Mapping[str, int] | None = None) -> dict[str, Any]:
    """One application as the queue shows it: deadlines counted, flags set, no identity;
    with `translation_states`, whether its machine translations are pending."""
    entry = queue_entry(engine, application, translation_states)
    confidentiality = confidentiality_of(application)
    decided = application.status in workflow.DECIDED
    review_left = working_days_between(today, application.formal_review_deadline)
    conf_due = application.confidentiality_decision_deadline
    conf_left = working_days_between(today, conf_due) if conf_due else None
    conf_overdue = bool(confidentiality.pending and conf_left is not None and conf_left < 0)
    review_overdue = not decided and review_left < 0
    fields = application.fields
    return entry | {
        "version": application.version,
        "formal_review_working_days_left": None if decided else review_left,
        "formal_review_overdue": review_overdue,
        "confidentiality_decision": application.confidentiality_decision,
        "confidentiality_pending": confidentiality.pending,
        "confidentiality_working_days_left": conf_left if confidentiality.pending else None,
        "confidentiality_overdue": conf_overdue,
        "overdue": review_overdue or conf_overdue,
        "identity_masked": confidentiality.protects_identity,
        "country": country_of(fields.get("dispute.location")),
        "minerals": list(fields.get("dispute.minerals") or []),
        "issue_types": list(fields.get("dispute.issue_types") or []),
        "decided_at": application.decided_at.isoformat() if application.decided_at else None,
    }


def _matches(row: dict[str, Any], wanted: ReviewFilter) -> bool:
    if wanted.country and (row["country"] or "").casefold() != wanted.country.casefold():
        return False
    if wanted.mineral and wanted.mineral not in row["minerals"]:
        return False
    if wanted.issue_type and wanted.issue_type not in row["issue_types"]:
        return False
    return not wanted.overdue or row["overdue"]


def _sorted(rows: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    """Rows by formal-review deadline (the default) or by submission, either way round."""
    field = "submitted_at" if sort.lstrip("-") == "submitted" else "formal_review_deadline"
    return sorted(rows, key=lambda row: (row[field], row["submitted_at"], row["reference"]),
                  reverse=sort.startswith("-"))


def facets(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The values seen in the queue, for the filter menus."""
    return {"channel": sorted({r["channel"] for r in rows}),
            "language": sorted({r["language"] for r in rows}),
            "country": sorted({r["country"] for r in rows if r["country"]})}


def all_facets(runtime: Runtime) -> dict[str, list[str]]:
    """The filter menus' values over the whole queue (no identity data read)."""
    today = receipt_date(now_utc())
    with transaction(runtime.sessions) as session:
        return facets([queue_row(runtime.engine, a, today)
                       for a in repository.applications(session)])


# -- one application ---------------------------------------------------------------------


def application_view(runtime: Runtime, staff: Staff, reference: str, reveal: bool = False
                     ) -> dict[str, Any]:
    """Everything about one application for this user; every view of identity is logged."""
    if reveal and not workflow.may_reveal(staff.role):
        raise workflow.NotAllowed("forbidden", "Only a supervisor or an admin may reveal "
                                               "identity data under a confidentiality request.")
    with transaction(runtime.sessions) as session:
        application = repository.application_by_reference(session, reference)
        if application is None:
            raise NotFound(reference)
        confidentiality = confidentiality_of(application)
        masked = confidentiality.protects_identity and not reveal
        view = _view(runtime, session, application, masked, staff)
        if not masked:
            action = "identity.reveal" if confidentiality.protects_identity else "identity.view"
            repository.add_audit(session, audit_event(staff, action, application,
                                                      where="application"))
        return view


def _view(runtime: Runtime, session: Session, application: Application, masked: bool,
          staff: Staff) -> dict[str, Any]:
    engine = runtime.engine
    keys = identity_keys(engine.form)
    lines = repository.transcript(session, repository.conversations_of(session, application.id))
    answers, mask = identity_masker(engine, application, lines)
    fields = (masked_with(workflow.mask_fields(application.fields, keys, []), mask) if masked
              else dict(application.fields))

    def shown(text: str) -> str:
        return mask(text) if masked else text

    def said(position: int, text: str) -> str:
        return workflow.MASK if masked and position in answers and text else shown(text)

    confidentiality = confidentiality_of(application)
    today = receipt_date(now_utc())
    states = translations.states_by_application(session, [application.id])
    return queue_row(engine, application, today, states.get(application.id, {})) | {
        "identity_masked": masked,
        "identity_protected": confidentiality.protects_identity,
        "may_reveal": masked and workflow.may_reveal(staff.role),
        "sender": workflow.MASK if masked else sender_shown(application.channel,
                                                            application.sender),
        "correspondence_language": applicant_language(application),
        "fields": fields,
        "field_rows": field_rows(engine, application, fields,
                                 _translations(session, application.id, shown)),
        "required_items": [
            {"key": key, "present": present,
             "label": engine.catalogs.text(PAGE_LANGUAGE, f"field.{key}.label")}
            for key, present in engine.completeness(application.fields).items()],
        "evidence": [
            {"kind": item.kind, "filename": shown(item.filename or ""),
             "media_type": item.media_type, "size": item.size, "sha256": item.sha256,
             "description": shown(item.description or ""), "added_at": item.added_at.isoformat(),
             "after_submission": item.after_submission}
            for item in repository.evidence_of(session, application.id)],
        "transcript": [
            {"side": side, "at": at.isoformat(), "text": said(position, content.get("text") or ""),
             "attachments": [shown(a.get("filename", "")) for a in
                             content.get("attachments") or []],
             "delivery": content.get("delivery"),
             "delivery_error": shown(content.get("delivery_error") or "") or None}
            for position, (side, at, content) in enumerate(lines)],
        "history": [
            {"at": action.at.isoformat(), "actor": action.actor, "action": action.action,
             "from_status": action.from_status, "to_status": action.to_status,
             "message": shown(action.message or "") or None,
             "message_language": action.message_language, "note": action.note,
             "outbox_id": action.outbox_id}
            for action in repository.actions_of(session, application.id)],
        "actions": workflow.available(staff.role, application.status, confidentiality),
    }


Line = tuple[str, datetime, dict[str, Any]]


def identity_masker(engine: Engine, application: Application, lines: Sequence[Line]
                     ) -> tuple[set[int], Callable[[str], str]]:
    """The transcript lines that answer an identity question (masked whole), and the function
    that masks every identifying value in a text, whatever its case: the current answers, the
    channel address, and every earlier answer the applicant gave (a name corrected with "edit"
    included)."""
    keys = identity_keys(engine.form)
    answering, taken = _identity_answers(lines, set(keys))
    values = workflow.identity_values(application.fields, keys, application.sender)
    for position, key in taken.items():
        text = lines[position][2].get("text") or ""
        try:
            value = engine.parse_answer(State(), key, text)
        except Invalid:
            continue
        values += [text.strip(), *workflow.identity_values({key: value}, [key])]
    wanted = sorted({v for v in values if len(v) >= 2}, key=len, reverse=True)
    if not wanted:
        return answering, lambda text: text
    pattern = re.compile("|".join(re.escape(v) for v in wanted), re.IGNORECASE)
    return answering, lambda text: pattern.sub(workflow.MASK, text)


def _identity_answers(lines: Sequence[Line], keys: set[str]) -> tuple[set[int], dict[int, str]]:
    """The positions of the person's messages written while an identity question waited, and
    those the conversation took as the answer (the next question is another one: after a
    "help" or a refused answer the same question comes again), with the question's key."""
    answering: set[int] = set()
    taken: dict[int, str] = {}
    asked: str | None = None
    last: int | None = None
    for position, (side, _, content) in enumerate(lines):
        if side == "in":
            last = position if asked in keys else None
            if last is not None:
                answering.add(last)
        elif "awaiting" in content:
            if last is not None and asked is not None and content["awaiting"] != asked:
                taken[last] = asked
            asked, last = content["awaiting"], None
    return answering, taken


def masked_with(value: Any, mask: Callable[[str], str]) -> Any:
    """A field's value with every identifying text masked, however deep."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list):
        return [masked_with(item, mask) for item in value]
    if isinstance(value, dict):
        return {key: masked_with(item, mask) for key, item in value.items()}
    return value


Translated = dict[tuple[str, str], list[tuple[int, str, str | None, bool]]]


def _translations(session: Session, application_id: int, shown: Any) -> Translated:
    """The machine translations of an application's free text by (field key, language):
    (item, state, text as it may be shown, machine-made) in item order."""
    found: Translated = {}
    for row in translations.of_application(session, application_id):
        text = shown(row.text) if row.text else None
        found.setdefault((row.field_key, row.target_language), []).append(
            (row.item, row.state, text, row.machine_translation))
    return found


def field_rows(engine: Engine, application: Application, fields: dict[str, Any],
               translated: Translated | None = None) -> list[dict[str, Any]]:
    """Each answered field: its label, the original, and the Chinese and English versions.

    Choices come from the catalogs (exact, not machine translations). Free text is shown in
    the original; where the applicant wrote in Chinese or English that column is the original
    too; other columns show the machine translation, marked as such, or say it is pending.
    """
    rows = []
    for step in engine.form.applicable(fields):
        if step.key not in fields or step.key == "language":
            continue
        value = fields[step.key]
        row: dict[str, Any] = {"key": step.key,
                               "label": engine.catalogs.text(PAGE_LANGUAGE,
                                                             f"field.{step.key}.label"),
                               "original": _display(engine, step, value, application.language)}
        for language in ("zh", "en"):
            row[language] = _version(engine, step, value, application.language, language,
                                     (translated or {}).get((step.key, language), []))
        rows.append(row)
    return rows


def _version(engine: Engine, step: Step, value: Any, original: str, language: str,
             translated: list[tuple[int, str, str | None, bool]]) -> dict[str, Any]:
    """One field in one working language: the original, the catalog's words, or a translation."""
    if language == base_language(original) or value == workflow.MASK:
        return {"text": _display(engine, step, value, language), "kind": "original"}
    if not _is_free_text(step, value):
        return {"text": _display(engine, step, value, language), "kind": "catalog"}
    states = {state for _, state, _, _ in translated}
    if not translated or "pending" in states:
        return {"text": None, "kind": "pending"}
    if states != {"done"}:
        return {"text": None, "kind": "failed"}
    text = "; ".join(text or "" for _, _, text, _ in sorted(translated))
    machine = any(machine for _, _, _, machine in translated)
    return {"text": text, "kind": "machine" if machine else "human"}


def _is_free_text(step: Step, value: Any) -> bool:
    return step.type in FREE_TEXT_TYPES and isinstance(value, str | list)


def _display(engine: Engine, step: Step, value: Any, language: str) -> str:
    """An answer in words: choice labels from the catalog, lists joined, files by name."""
    catalogs = engine.catalogs
    if value is None:
        return ""
    if value == workflow.MASK:
        return workflow.MASK
    if isinstance(value, bool):
        return catalogs.text(language, "choice.yes" if value else "choice.no")
    if step.key == "correspondence.language" and isinstance(value, str):
        return catalogs.text(language, f"choice.language.{value}")
    if step.type in ("choice", "attachment") and isinstance(value, str):
        return catalogs.text(language, f"choice.{step.key}.{value}")
    if step.type == "multichoice" and isinstance(value, list):
        return ", ".join(catalogs.text(language, f"choice.{step.key}.{v}") for v in value)
    if step.type == "evidence" and isinstance(value, list):
        return "; ".join(str(item.get("filename") or item.get("text") or "")
                         for item in value if isinstance(item, dict))
    if isinstance(value, dict):
        return str(value.get("filename", ""))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def evidence_file(runtime: Runtime, staff: Staff, reference: str, sha256: str
                  ) -> tuple[str, int]:
    """The name and size of an application's evidence file, the name masked as the
    application's page shows it; the download is logged."""
    with transaction(runtime.sessions) as session:
        application = repository.application_by_reference(session, reference)
        if application is None:
            raise NotFound(reference)
        item = next((e for e in repository.evidence_of(session, application.id)
                     if e.sha256 == sha256), None)
        if item is None:
            raise NotFound(sha256)
        filename = item.filename or "evidence"
        if confidentiality_of(application).protects_identity:
            lines = repository.transcript(session, repository.conversations_of(
                session, application.id))
            filename = identity_masker(runtime.engine, application, lines)[1](filename)
        repository.add_audit(session, audit_event(staff, "evidence.download", application,
                                                  sha256=sha256))
        return filename, item.size or 0


# -- exports ------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "reference", "status", "channel", "language", "country", "submitted_at",
    "formal_review_deadline", "formal_review_working_days_left", "formal_review_overdue",
    "confidentiality_requested", "confidentiality_decision", "confidentiality_decision_deadline",
    "confidentiality_overdue", "required_items_present", "missing_items", "minerals",
    "issue_types", "decided_at")
# Cells a spreadsheet would run as a formula (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_rows(runtime: Runtime, staff: Staff, wanted: ReviewFilter, audience: str,
                reveal: bool) -> list[dict[str, Any]]:
    """The queue as flat rows for CSV or JSON; identity columns only for the secretariat."""
    if audience not in AUDIENCES:
        raise BadFilter(f"audience must be one of: {', '.join(AUDIENCES)}")
    if reveal and (audience != "secretariat" or not workflow.may_reveal(staff.role)):
        raise workflow.NotAllowed("forbidden", "Only a supervisor or an admin may export "
                                               "identity data under a confidentiality request.")
    today = receipt_date(now_utc())
    with transaction(runtime.sessions) as session:
        applications = repository.applications(session, repository.QueueFilter(
            status=wanted.status, channel=wanted.channel, language=wanted.language,
            confidentiality_requested=wanted.confidentiality))
        by_reference = {a.reference: a for a in applications
                        if not (audience != "secretariat"
                                and workflow.withheld_for(audience, confidentiality_of(a)))}
        listed = _sorted([row for row in (queue_row(runtime.engine, a, today)
                                          for a in by_reference.values())
                          if _matches(row, wanted)], wanted.sort)
        pairs = [(by_reference[row["reference"]], row) for row in listed]
        rows = [_flat(runtime.engine, row) for row in listed]
        if audience == "secretariat":
            shown, revealed = _add_identity(runtime.engine, pairs, rows, reveal)
            if shown:
                repository.add_audit(session, audit_event(
                    staff, "identity.export", references=shown, audience=audience))
            if revealed:
                repository.add_audit(session, audit_event(
                    staff, "identity.reveal", references=revealed, where="export"))
        repository.add_audit(session, audit_event(staff, "export", audience=audience,
                                                  count=len(rows), filter=wanted.as_query()))
    return rows


def _flat(engine: Engine, row: dict[str, Any]) -> dict[str, Any]:
    labels = {key: engine.catalogs.text(PAGE_LANGUAGE, f"field.{key}.label")
              for key in row["completeness"]}
    return {column: row.get(column) for column in EXPORT_COLUMNS} | {
        "required_items_present": sum(row["completeness"].values()),
        "missing_items": "; ".join(labels[k] for k, ok in row["completeness"].items() if not ok),
        "minerals": "; ".join(row["minerals"]),
        "issue_types": "; ".join(row["issue_types"]),
    }


def _add_identity(engine: Engine, pairs: list[tuple[Application, dict[str, Any]]],
                  rows: list[dict[str, Any]], reveal: bool) -> tuple[list[str], list[str]]:
    """Identity columns, masked where protected unless revealed; which references showed it."""
    shown: list[str] = []
    revealed: list[str] = []
    for (application, queue_item), row in zip(pairs, rows, strict=True):
        masked = queue_item["identity_masked"] and not reveal
        for key in IDENTITY_COLUMNS:
            value = application.fields.get(key)
            row[key] = workflow.MASK if masked and value else value
        if not masked:
            (revealed if queue_item["identity_masked"] else shown).append(application.reference)
    return shown, revealed


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV (UTF-8 with BOM for spreadsheets), every formula-like cell defused."""
    out = io.StringIO()
    columns = list(rows[0]) if rows else list(EXPORT_COLUMNS)
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: safe_cell(value) for key, value in row.items()})
    return "\ufeff" + out.getvalue()


def safe_cell(value: Any) -> str:
    """A cell as text; one that starts like a formula is prefixed with an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


# -- statistics ---------------------------------------------------------------------------


def statistics(runtime: Runtime) -> dict[str, Any]:
    """Counts and medians for the mechanism's published reports; no identity, no free text."""
    today = receipt_date(now_utc())
    with transaction(runtime.sessions) as session:
        applications = repository.applications(session)
        started = repository.filing_started_at(session)
        rows = [queue_row(runtime.engine, a, today) for a in applications]
    to_complete = [(a.submitted_at - started[a.id]).total_seconds() / 86400
                   for a in applications if a.id in started]
    to_decide = [(a.decided_at - a.submitted_at).total_seconds() / 86400
                 for a in applications if a.decided_at and a.status in ("accepted", "rejected")]
    return {
        "total": len(rows),
        "by_status": _count(r["status"] for r in rows),
        "by_channel": _count(r["channel"] for r in rows),
        "by_language": _count(r["language"] for r in rows),
        "by_country": _count(r["country"] or "unknown" for r in rows),
        "by_issue_type": _count(t for r in rows for t in r["issue_types"] or ["not given"]),
        "by_mineral": _count(m for r in rows for m in r["minerals"] or ["not given"]),
        "confidentiality_requested": sum(1 for r in rows if r["confidentiality_requested"]),
        "overdue": sum(1 for r in rows if r["overdue"]),
        "median_days_to_complete": _median(to_complete),
        "median_days_to_decide": _median(to_decide),
        "decided": len(to_decide),
    }


def _count(values: Any) -> dict[str, int]:
    return dict(sorted(Counter(values).items(), key=lambda item: (-item[1], item[0])))


def _median(values: list[float]) -> float | None:
    return round(stats.median(values), 1) if values else None
