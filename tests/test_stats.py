"""The figures an operator watches (`gateway stats --json`, `GET /metrics`): a message whose
processing gave up waits for a person and is counted as such, not as processing falling
behind; the secretariat's notices count among the translation jobs; and reading the figures
never waits for, nor holds up, the database's writers. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from gateway.runtime import Runtime
from gateway.service import MAX_PROCESSING_ATTEMPTS, now_utc
from gateway.stats import prometheus_text, summary
from intake.messages import InboundMessage
from storage import mail as mail_store
from storage.db import transaction
from tests.filings import ENGLISH_FILING
from tests.test_notice_translation import ask_for_more
from tests.test_translation import FRENCH_FILING, file


def _fails_every_time(runtime: Runtime, monkeypatch: pytest.MonkeyPatch, text: str) -> int:
    """A message whose processing fails (an engine bug), retried until the gateway gives up;
    its id."""
    def broken(*args: Any) -> Any:
        raise RuntimeError("the engine broke")
    monkeypatch.setattr(runtime.intake.engine, "handle", broken)
    inbound_id = runtime.intake.receive(InboundMessage("terminal", "ana", uuid.uuid4().hex,
                                                       text))
    assert inbound_id is not None
    for _ in range(MAX_PROCESSING_ATTEMPTS):
        runtime.intake.process(inbound_id)
    monkeypatch.undo()
    return inbound_id


def test_a_message_processing_gave_up_on_waits_for_a_person_not_for_processing(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime.intake.handle(InboundMessage("terminal", "ana", uuid.uuid4().hex, "Hello"))
    waiting = runtime.intake.receive(InboundMessage("terminal", "ben", uuid.uuid4().hex, "Hi"))
    failed = _fails_every_time(runtime, monkeypatch, "My name is Ana")

    counts = summary(runtime)
    assert counts["inbound_unprocessed"] == 1  # ben's, which the gateway will still process
    assert counts["inbound_needing_person"] == 1
    metrics = prometheus_text(runtime)
    assert "gateway_inbound_unprocessed 1\n" in metrics
    assert "gateway_inbound_needing_person 1\n" in metrics

    assert waiting is not None
    runtime.intake.process(waiting)
    with transaction(runtime.sessions) as session:
        assert mail_store.mark_handled(session, failed, "olivia", now_utc())
    counts = summary(runtime)
    assert (counts["inbound_unprocessed"], counts["inbound_needing_person"]) == (0, 0)


def test_notice_translations_count_among_the_translation_jobs(runtime: Runtime) -> None:
    application = file(runtime, FRENCH_FILING, sender="amani")
    answers = summary(runtime)["translation_jobs"]
    ask_for_more(runtime, application.reference)  # in English, to a French applicant

    jobs = summary(runtime)["translation_jobs"]
    assert isinstance(jobs, dict) and isinstance(answers, dict)
    assert jobs["pending"] == answers["pending"] + 1
    assert 'gateway_notice_translations{language="fr",state="pending"} 1' in \
        prometheus_text(runtime)


def test_the_figures_are_read_while_a_long_write_is_under_way(runtime: Runtime) -> None:
    file(runtime, ENGLISH_FILING)
    read: list[str] = []
    with transaction(runtime.sessions) as writing:
        writing.execute(text("UPDATE conversations SET status = status"))  # a write under way
        reader = threading.Thread(target=lambda: read.append(prometheus_text(runtime)))
        reader.start()
        reader.join(10)
        finished = not reader.is_alive()
    reader.join(30)
    assert finished, "/metrics waited for a writer to finish"
    assert 'gateway_applications{status="submitted"} 1' in read[0]
