"""Encryption at rest: a copied database or data folder reveals no applicant; the secretariat
and every product path still read everything; keys rotate; tampering is refused loudly.

Runs on SQLite and on PostgreSQL (the `settings` fixture)."""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from pydantic import SecretStr
from sqlalchemy import create_engine, func, inspect, select, text, update

from gateway import keys
from gateway.cli import main
from gateway.decisions import decide
from gateway.keys import KEY_FILE
from gateway.queue import application_detail
from gateway.review import application_view
from gateway.runtime import Runtime, open_runtime
from gateway.service import Delivered, now_utc
from gateway.settings import Settings
from gateway.staff import Staff, add_user
from gateway.translation.worker import TranslationWorker
from intake import workflow
from intake.messages import InboundMessage
from intake.translation import Translation
from storage import crypto, repository
from storage.crypto import KeyConfigError, SealBroken, new_key
from storage.db import alembic_config, open_engine, transaction
from storage.models import Application, Conversation
from storage.models import InboundMessage as InboundRow
from tests.filings import ENGLISH_FILING
from tests.postgres_locks import lock_waited_or_done

PHONE = "243970000001"
# WhatsApp's message ids carry the sender's number, base64-encoded.
WAMID_NUMBER = base64.b64encode(PHONE.encode()).decode()
EVIDENCE = b"Statement of the river committee, signed by forty households: EVIDENCE-7Q2X\n"
EVIDENCE_SHA = hashlib.sha256(EVIDENCE).hexdigest()
SECRETS_OF_JANE = ("Jane Mwamba", "Kasulo", "970 000 001", PHONE, WAMID_NUMBER,
                   "EVIDENCE-7Q2X", "forty households")


class Echo:
    """A translation backend that marks what it translated."""

    engine = "echo"

    def supports(self, source: str, target: str) -> bool:
        return True

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[Translation]:
        return [Translation(f"<{target}> {t}", "echo", "1", source, target) for t in texts]


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    """Settings with the key kept outside the data folder."""
    return settings.model_copy(update={"encryption_key": SecretStr(new_key())})


@pytest.fixture
def opened(keyed: Settings) -> Iterator[Runtime]:
    runtime = open_runtime(keyed)
    yield runtime
    runtime.close()


def file_as_jane(runtime: Runtime, sender: str = PHONE) -> str:
    """Jane files over WhatsApp with a statement as evidence; the reference."""
    statement = runtime.evidence.accept(EVIDENCE, "statement of Jane Mwamba.txt")
    at = ENGLISH_FILING.index("Photos of the river; twelve neighbours saw the pipe.")
    lines: list[tuple[str, tuple[Any, ...]]] = [(line, ()) for line in ENGLISH_FILING]
    lines.insert(at, ("", (statement,)))
    delivered: Any = []
    for line, files in lines:
        delivered = runtime.intake.handle(InboundMessage(
            channel="whatsapp", sender=sender, text=line, attachments=files,
            provider_message_id=f"wamid.HBgM{WAMID_NUMBER}FQIAEhgg{uuid.uuid4().hex}",
            hints={"name": "Jane Mwamba", "contact": f"+{PHONE}"}))
    reference = delivered[-1].message.reference
    assert reference
    return str(reference)


def officer(runtime: Runtime) -> Staff:
    user = add_user(runtime.sessions, "olivia", "supervisor", "correct horse battery")
    return Staff(user.id, "olivia", "supervisor", 0, "", "api")


def everything_stored(runtime: Runtime) -> bytes:
    """The database as someone who copied it sees it, and every file of the data folder."""
    found = b""
    if runtime.database.dialect.name == "postgresql":
        with runtime.database.connect() as connection:
            for table in inspect(connection).get_table_names():
                found += "\n".join(connection.execute(text(
                    f'SELECT t::text FROM "{table}" t')).scalars()).encode()
    for path in runtime.settings.data_dir.rglob("*"):
        if path.is_file():
            found += path.read_bytes()
    return found


def test_a_copied_database_and_data_folder_reveal_no_applicant(opened: Runtime) -> None:
    reference = file_as_jane(opened)
    worker = TranslationWorker(opened, Echo())
    while worker.run_round(now_utc()).busy:
        pass
    decide(opened, officer(opened), reference, workflow.Request(
        "request_supplement", "Jane Mwamba, please send the photos of Kasulo again."))
    opened.intake.handle(InboundMessage("whatsapp", PHONE, "wamid.answer",
                                        "Jane Mwamba here, photos follow"))

    with transaction(opened.sessions) as session:  # what the secretariat reads
        application = repository.application_by_reference(session, reference)
        assert application is not None
        detail = application_detail(session, opened.engine, application)
    assert detail["fields"]["applicant.name"] == "Jane Mwamba"
    assert detail["fields"]["applicant.contact"].endswith("970 000 001")
    statement = next(e for e in detail["evidence"] if e["kind"] == "attachment")
    assert statement["filename"] == "statement of Jane Mwamba.txt"
    assert opened.evidence.read(statement["sha256"]) == EVIDENCE

    stored = everything_stored(opened)
    if opened.database.dialect.name == "sqlite":
        assert (opened.settings.data_dir / "gateway.sqlite3").is_file()
    assert len(stored) > 10_000
    leaked = [secret for secret in SECRETS_OF_JANE
              if secret.encode() in stored or secret.encode("utf-16-le") in stored]
    assert leaked == []
    assert not (opened.settings.data_dir / KEY_FILE).exists()


def test_values_are_bound_to_their_row_and_tampering_is_refused(opened: Runtime) -> None:
    jane, other = file_as_jane(opened), file_as_jane(opened, "243970000002")
    staff = officer(opened)
    with transaction(opened.sessions) as session:
        rows = {a.reference: a for a in session.query(Application)}
        stolen = rows[jane].fields_sealed
        session.execute(update(Application).where(Application.reference == other)
                        .values(fields_sealed=stolen))
    with pytest.raises(SealBroken, match="belongs elsewhere"):
        application_view(opened, staff, other)
    assert application_view(opened, staff, jane)["fields"]["applicant.name"] == "Jane Mwamba"

    with transaction(opened.sessions) as session:
        conversation = repository.current_conversation(session, "whatsapp", PHONE)
        assert conversation is not None
        token = conversation.state_sealed
        flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
        session.execute(update(Conversation).where(Conversation.id == conversation.id)
                        .values(state_sealed=flipped))
    with transaction(opened.sessions) as session, pytest.raises(SealBroken):
        found = repository.current_conversation(session, "whatsapp", PHONE)
        assert found is not None
        _ = found.state

    sha256 = next(iter(opened.evidence.files())).name
    path = opened.evidence.path_of(sha256)
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(SealBroken):
        opened.evidence.read(sha256)


def test_rotation_keeps_everything_readable_and_the_old_key_is_no_longer_needed(
        settings: Settings) -> None:
    runtime = open_runtime(settings)
    reference = file_as_jane(runtime)
    first = runtime.keyring.current_id
    assert (settings.data_dir / KEY_FILE).stat().st_mode & 0o777 == 0o600

    done = keys.rotate(runtime, wait=0)  # no other instance uses the key file
    assert done.new_key and done.new_key != first and done.files == 1
    assert done.values["conversations"] >= 1 and done.values["inbound_messages"] > 30
    state = keys.status(runtime)
    assert not state.unfinished and state.in_use == {done.new_key}
    assert keys.rotate(runtime, wait=0).new_key != done.new_key  # a finished one starts anew
    latest = runtime.keyring.current_id
    assert keys.prune(runtime, wait=0) and runtime.keyring.key_ids == [latest]
    runtime.close()

    only_new = open_runtime(settings)  # the key file now holds the newest key alone
    try:
        with transaction(only_new.sessions) as session:
            application = repository.application_by_reference(session, reference)
            assert application is not None and application.fields["applicant.name"] == \
                "Jane Mwamba"
            assert repository.current_conversation(session, "whatsapp", PHONE) is not None
        sha256 = only_new.evidence.files()[0].name
        assert only_new.evidence.read(sha256) == EVIDENCE
        again = only_new.intake.handle(InboundMessage("whatsapp", PHONE, "wamid.x", "status"))
        assert again and reference in again[-1].message.text
    finally:
        only_new.close()


def test_an_interrupted_rotation_is_finished_without_a_new_key(opened: Runtime,
                                                               keyed: Settings) -> None:
    file_as_jane(opened)
    with pytest.raises(keys.RotationRefused, match="GATEWAY_ENCRYPTION_KEY"):
        keys.rotate(opened)
    old = keyed.encryption_key.get_secret_value()
    both = keyed.model_copy(update={"encryption_key": SecretStr(f"{new_key()},{old}")})
    runtime = open_runtime(both)
    try:
        current = runtime.keyring.current_id
        conversations = keys._reseal(runtime, Conversation, current)  # stopped after one table
        assert conversations >= 1 and keys.status(runtime).unfinished
        done = keys.rotate(runtime)
        assert done.new_key is None and done.values["conversations"] == 0
        assert keys.status(runtime).in_use == {current}
    finally:
        runtime.close()
    newest = both.encryption_key.get_secret_value().split(",")[0]
    alone = open_runtime(keyed.model_copy(update={"encryption_key": SecretStr(newest)}))
    try:
        with transaction(alone.sessions) as session:
            assert repository.current_conversation(session, "whatsapp", PHONE) is not None
    finally:
        alone.close()


def say(runtime: Runtime, text: str, sender: str = PHONE,
        provider_id: str | None = None) -> list[Delivered]:
    """A WhatsApp message to this instance; the replies."""
    replies = runtime.intake.handle(InboundMessage(
        "whatsapp", sender, provider_id or f"wamid.{uuid.uuid4().hex}", text))
    assert replies is not None
    return replies


def answers(runtime: Runtime, sender: str = PHONE) -> list[list[str]]:
    """The answers of each conversation of one sender, oldest first."""
    with transaction(runtime.sessions) as session:
        return [sorted(conversation.state.get("answers", {})) for conversation in
                session.scalars(select(Conversation).where(repository.by_sender(
                    session, Conversation, "whatsapp", sender)).order_by(Conversation.id))]


def test_instances_on_the_rotated_key_file_keep_finding_people_and_no_used_key_is_pruned(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crypto, "REFRESH_SECONDS", 0.5)  # how often instances read the file
    settings = Settings(data_dir=tmp_path)
    serving, command = open_runtime(settings), open_runtime(settings)  # `serve`, `keys …`
    say(serving, "hello")
    say(serving, "English")
    old = command.keyring.current_id

    done = keys.rotate(command, wait=0.7)
    assert done.values["conversations"] == 1
    replies = say(serving, "1")  # Jane's next answer, right after the rotation
    assert replies[-1].message.text == "Who is the applicant?"
    assert answers(serving) == [["applicant.on_behalf", "language"]]  # one conversation
    say(serving, "hello", sender="243970000002")  # someone new writes meanwhile
    assert keys.prune(command, wait=0.7) == [old]
    serving.close()
    command.close()

    restarted = open_runtime(settings)  # the key file holds the new key alone
    try:
        assert answers(restarted) == [["applicant.on_behalf", "language"]]
        assert answers(restarted, "243970000002") == [[]]
    finally:
        restarted.close()


def test_a_providers_retry_after_a_rotation_and_prune_is_recognised(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crypto, "REFRESH_SECONDS", 0.0)  # instances read the file at every use
    settings = Settings(data_dir=tmp_path)
    serving, command = open_runtime(settings), open_runtime(settings)
    say(serving, "hello")
    keys.rotate(command, wait=0)
    say(serving, "English", provider_id="wamid.second")  # the first message after the rotation
    assert keys.prune(command, wait=0)
    serving.close()
    command.close()

    restarted = open_runtime(settings)
    try:
        assert restarted.intake.receive(InboundMessage(
            "whatsapp", PHONE, "wamid.second", "English")) is None  # the provider's retry
        with transaction(restarted.sessions) as session:
            assert session.scalar(select(func.count()).select_from(InboundRow)) == 2
    finally:
        restarted.close()


def read_key_ids(settings: Settings) -> list[str]:
    """The ids of the keys in the data folder's key file, the current one first."""
    return [crypto.DataKey.from_master(master).key_id
            for master in keys.read_key_file(settings.data_dir / KEY_FILE)]


def test_prune_is_refused_until_every_instance_has_read_the_new_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(data_dir=tmp_path)
    runtime = open_runtime(settings)
    say(runtime, "hello")
    keys.rotate(runtime, wait=0)
    both = runtime.keyring.key_ids
    runtime.close()
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))

    assert main(["keys", "prune"]) == 1
    assert "instances read it again only every 10 s" in capsys.readouterr().err
    assert read_key_ids(settings) == both


def test_a_second_rotation_at_the_same_time_is_refused_and_loses_no_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path)
    first, second = open_runtime(settings), open_runtime(settings)
    say(first, "hello")
    interleaved: list[bool] = []

    def new_key_while_another_rotates() -> str:
        if not interleaved:  # the first run has read the key file and is about to write it
            interleaved.append(True)
            with pytest.raises(keys.RotationRefused, match="another `gateway keys rotate` or "
                               "`gateway keys prune` is running"):
                keys.rotate(second, wait=0)
        return new_key()

    monkeypatch.setattr(keys, "new_key", new_key_while_another_rotates)
    done = keys.rotate(first, wait=0)
    assert interleaved
    first.close()
    second.close()

    restarted = open_runtime(settings)
    try:
        assert restarted.keyring.current_id == done.new_key
        assert answers(restarted) == [[]]
    finally:
        restarted.close()


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_a_turn_committed_during_a_rotation_is_kept(runtime: Runtime,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    say(runtime, "hello")
    say(runtime, "English")
    replies: list[Delivered] = []
    turn = threading.Thread(target=lambda: replies.extend(say(runtime, "1")))
    reseal_row = keys._reseal_row

    def reseal_row_while_jane_answers(session: Any, keyring: Any, row: Any) -> None:
        if isinstance(row, Conversation) and turn.ident is None:
            turn.start()  # the instance processes Jane's next answer meanwhile
            lock_waited_or_done(runtime, lambda: not turn.is_alive())
        reseal_row(session, keyring, row)

    monkeypatch.setattr(keys, "_reseal_row", reseal_row_while_jane_answers)
    keys.rotate(runtime, wait=0)
    turn.join()
    assert replies[-1].message.text == "Who is the applicant?"
    assert answers(runtime) == [["applicant.on_behalf", "language"]]
    assert not keys.status(runtime).unfinished


def test_a_lost_key_file_is_not_silently_replaced(settings: Settings) -> None:
    runtime = open_runtime(settings)
    file_as_jane(runtime)
    runtime.close()
    (settings.data_dir / KEY_FILE).unlink()
    with pytest.raises(KeyConfigError, match="not configured"):
        open_runtime(settings)


def test_a_database_from_before_encryption_is_sealed_by_the_upgrade(settings: Settings) -> None:
    database = open_engine(settings.effective_database_url)
    config = alembic_config(database.url.render_as_string(hide_password=False))
    with database.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003_merge")
    now = now_utc()
    with database.begin() as connection:
        connection.execute(text(
            "INSERT INTO conversations (channel, sender, status, language, state, hints, "
            "created_at, updated_at) VALUES ('whatsapp', :sender, 'draft', 'en', :state, "
            "'{}', :now, :now)"),
            {"sender": PHONE, "now": now,
             "state": '{"status": "filling", "answers": {"applicant.name": "Jane Mwamba"}}'})
        connection.execute(text(
            "INSERT INTO inbound_messages (channel, provider_message_id, sender, text, "
            "attachments, hints, received_at, attempts, conversation_id) VALUES ('whatsapp',"
            " :wamid, :sender, 'Jane Mwamba', '[]', '{}', :now, 1, "
            "(SELECT max(id) FROM conversations))"),
            {"wamid": f"wamid.HBgM{WAMID_NUMBER}", "sender": PHONE, "now": now})
    database.dispose()
    clear_file = settings.evidence_dir / EVIDENCE_SHA[:2] / EVIDENCE_SHA
    clear_file.parent.mkdir(parents=True)
    clear_file.write_bytes(EVIDENCE)

    runtime = open_runtime(settings)
    try:
        with transaction(runtime.sessions) as session:
            conversation = repository.current_conversation(session, "whatsapp", PHONE)
            assert conversation is not None
            assert conversation.state["answers"]["applicant.name"] == "Jane Mwamba"
        assert runtime.evidence.read(EVIDENCE_SHA) == EVIDENCE
        assert keys.status(runtime).in_use == {runtime.keyring.current_id}
        duplicate = runtime.intake.receive(InboundMessage(
            "whatsapp", PHONE, f"wamid.HBgM{WAMID_NUMBER}", "Jane Mwamba"))
        assert duplicate is None  # the provider's retry is still recognised
        stored = everything_stored(runtime)
        assert b"Jane Mwamba" not in stored and PHONE.encode() not in stored
    finally:
        runtime.close()


def test_a_bare_alembic_upgrade_without_the_key_changes_nothing(settings: Settings) -> None:
    url = settings.effective_database_url
    database = create_engine(url if not url.startswith("postgresql://") else
                             "postgresql+psycopg://" + url.removeprefix("postgresql://"))
    config = alembic_config(url)
    command.upgrade(config, "0003_merge")
    with database.begin() as connection:
        connection.execute(text(
            "INSERT INTO conversations (channel, sender, status, state, hints, created_at, "
            "updated_at) VALUES ('sms-twilio', '+243970000001', 'draft', '{}', '{}', :now, "
            ":now)"), {"now": now_utc()})
    database.dispose()
    with pytest.raises(RuntimeError, match="gateway db upgrade"):
        command.upgrade(config, "head")
