"""The secretariat's queue as data: used by `gateway queue`, the queue page and the API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from intake.engine import Engine
from storage import repository, translations
from storage.models import Application, FieldTranslation

MACHINE_TRANSLATION = "machine translation"


def queue_entry(engine: Engine, application: Application,
                translation_states: Mapping[str, int] | None = None) -> dict[str, Any]:
    """One line of the queue: no identity data, only what the review needs.

    With `translation_states` (jobs by state, from `storage.translations`), the entry says
    whether the machine translations are done, pending (no model yet, or not yet run) or failed.
    """
    entry = {
        "reference": application.reference,
        "status": application.status,
        "channel": application.channel,
        "language": application.language,
        "submitted_at": application.submitted_at.isoformat(),
        "formal_review_deadline": application.formal_review_deadline.isoformat(),
        "formal_review_deadline_provisional": application.formal_review_deadline_provisional,
        "confidentiality_requested": application.confidentiality_requested,
        "confidentiality_decision_deadline": (
            application.confidentiality_decision_deadline.isoformat()
            if application.confidentiality_decision_deadline else None),
        "completeness": engine.completeness(application.fields),
    }
    if translation_states is not None:
        entry["translation"] = translation_summary(translation_states)
    return entry


def translation_summary(states: Mapping[str, int]) -> dict[str, Any]:
    """"pending" while any job waits, else "failed" if one failed, "done", or "none" when
    there was no free text to translate; with the counts."""
    counts = {state: int(states.get(state, 0)) for state in ("pending", "done", "failed")}
    status = next((state for state in ("pending", "failed", "done") if counts[state]), "none")
    return {"status": status, **counts}


def application_detail(session: Session, engine: Engine, application: Application
                       ) -> dict[str, Any]:
    """Everything about one application: its fields by stable key, evidence, transcript."""
    evidence = repository.evidence_of(session, application.id)
    states = translations.states_by_application(session, [application.id])
    return queue_entry(engine, application, states.get(application.id, {})) | {
        "fields": application.fields,
        "evidence": [
            {"kind": item.kind, "filename": item.filename, "media_type": item.media_type,
             "size": item.size, "sha256": item.sha256, "description": item.description,
             "added_at": item.added_at.isoformat(), "after_submission": item.after_submission}
            for item in evidence
        ],
        "translations": translated_texts(engine, translations.of_application(
            session, application.id)),
    }


def translated_texts(engine: Engine, rows: Sequence[FieldTranslation]) -> list[dict[str, Any]]:
    """Each translated text (a field, one name or evidence item, a text sent after
    submission): the original, and its Chinese and English machine translations or their
    state, in form order."""
    order = {step.key: index for index, step in enumerate(engine.form.steps)}
    texts: dict[tuple[str, int], dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (order.get(r.field_key, len(order)), r.item)):
        text = texts.setdefault((row.field_key, row.item), {
            "field": row.field_key, "item": row.item, "source_language": row.source_language,
            "original": row.source_text})
        text[row.target_language] = {
            "status": row.state, "text": row.text, "machine_translation": row.machine_translation,
            "label": MACHINE_TRANSLATION if row.machine_translation else None,
            "engine": row.engine, "package_version": row.package_version, "pivot": row.pivot,
            "translated_at": row.translated_at.isoformat() if row.translated_at else None,
            "attempts": row.attempts, "error": row.last_error}
    return list(texts.values())
