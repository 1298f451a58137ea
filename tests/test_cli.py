"""The `gateway` command as a person or a script uses it: chat, queue, db, serve."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from gateway.runtime import open_runtime
from gateway.settings import Settings
from storage.crypto import new_key
from storage.db import transaction
from storage.models import AuditEvent, InboundMessage
from tests.filings import CHINESE_FILING, ENGLISH_FILING
from tests.test_secretariat import CONFIDENTIAL_FILING

GATEWAY = [sys.executable, "-m", "gateway.cli"]


def gateway(data_dir: Path, *args: str, stdin: bytes = b"", env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """Run the command with a data folder of its own."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    environment |= {"GATEWAY_DATA_DIR": str(data_dir)} | (env or {})
    return subprocess.run([*GATEWAY, *args], input=stdin, capture_output=True, timeout=timeout,
                          env=environment, cwd=data_dir)


def chat(data_dir: Path, lines: list[str], sender: str = "jane") -> list[dict]:
    """`gateway chat --json`: the bot's messages as parsed JSON objects."""
    result = gateway(data_dir, "chat", "--json", "--sender", sender,
                     stdin=("\n".join(lines) + "\n").encode())
    assert result.returncode == 0, result.stderr.decode()
    assert b"Traceback" not in result.stderr
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def turns(messages: list[dict]) -> list[list[dict]]:
    """Messages grouped by turn: a turn ends with the message that carries `awaiting`."""
    grouped, current = [], []
    for message in messages:
        current.append(message)
        if "awaiting" in message:
            grouped.append(current)
            current = []
    assert current == [], "every turn ends with an `awaiting` message"
    return grouped


def test_chat_json_files_an_application_turn_by_turn(tmp_path: Path) -> None:
    messages = chat(tmp_path, ENGLISH_FILING)
    by_turn = turns(messages)
    assert len(by_turn) == len(ENGLISH_FILING) + 1  # the greeting comes before any line
    awaiting = [turn[-1]["awaiting"] for turn in by_turn]
    assert awaiting[0] == "language"
    assert awaiting[-3:] == ["review", "declaration.accepted", None]
    assert {"applicant.name", "dispute.facts", "evidence"} <= set(awaiting)
    language = by_turn[0][-1]
    assert {"id": "en", "label": "English"} in language["choices"]
    receipt = messages[-1]
    assert receipt["reference"].startswith("MCM-")
    assert receipt["reference"] in receipt["text"]


def test_queue_lists_and_shows_the_filed_application(tmp_path: Path) -> None:
    reference = chat(tmp_path, ENGLISH_FILING)[-1]["reference"]
    listing = json.loads(gateway(tmp_path, "queue", "list", "--json").stdout)
    assert [entry["reference"] for entry in listing] == [reference]
    entry = listing[0]
    assert entry["status"] == "submitted" and entry["channel"] == "terminal"
    assert entry["language"] == "en"
    assert entry["submitted_at"] and entry["formal_review_deadline"]
    assert entry["completeness"] == {
        "applicant.name": True, "applicant.address": True, "applicant.contact": True,
        "respondent.name": True, "respondent.address": True, "dispute.facts": True,
        "dispute.claims": True, "dispute.reasons": True, "evidence": True}

    detail = json.loads(gateway(tmp_path, "queue", "show", reference.lower(), "--json").stdout)
    assert detail["fields"]["applicant.name"] == "Jane Mwamba"
    assert detail["fields"]["respondent.name"] == "Kolwezi Mining SARL"
    assert detail["fields"]["dispute.minerals"] == ["cobalt"]
    assert detail["evidence"][0]["description"].startswith("Photos of the river")

    text = gateway(tmp_path, "queue", "list").stdout.decode()
    assert reference in text and "9/9 items" in text


def test_chinese_filing_in_the_terminal(tmp_path: Path) -> None:
    messages = chat(tmp_path, CHINESE_FILING, sender="wang")
    assert "请选择语言" in messages[1]["text"]
    assert "申请编号" in messages[-1]["text"]
    detail = json.loads(gateway(tmp_path, "queue", "show", messages[-1]["reference"],
                                "--json").stdout)
    assert detail["language"] == "zh"
    assert detail["fields"]["dispute.facts"] == "冶炼厂的废水流进了村里的水田。"


def test_unfinished_chat_continues_in_a_later_session(tmp_path: Path) -> None:
    chat(tmp_path, ENGLISH_FILING[:10])
    later = chat(tmp_path, ENGLISH_FILING[10:])
    assert "Welcome back" in later[0]["text"]
    assert later[-1]["reference"]


def test_attach_keeps_the_file_and_a_missing_file_is_a_clear_notice(tmp_path: Path) -> None:
    photo = tmp_path / "river photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff fake jpeg")
    at = ENGLISH_FILING.index("Photos of the river; twelve neighbours saw the pipe.")
    lines = [*ENGLISH_FILING[:at], f"/attach {photo}", f"/attach {tmp_path}/nothing.jpg",
             *ENGLISH_FILING[at:]]
    messages = chat(tmp_path, lines)
    assert any("river photo.jpg" in m["text"] for m in messages)
    assert any(m.get("error") and "nothing.jpg" in m["text"] for m in messages)
    detail = json.loads(gateway(tmp_path, "queue", "show", messages[-1]["reference"],
                                "--json").stdout)
    files = [item for item in detail["evidence"] if item["kind"] == "attachment"]
    assert files[0]["filename"] == "river photo.jpg"
    assert files[0]["size"] == len(photo.read_bytes())


def test_bad_input_gets_clear_replies_and_nothing_is_lost(tmp_path: Path) -> None:
    paste = "The river. " * 10_000  # 110 kB, over the facts limit
    at = ENGLISH_FILING.index("Since March 2026 the river next to the mine is orange.")
    lines = [line.encode() for line in ENGLISH_FILING[:at]]
    lines += [b"", b"\xff\xfe broken \xc3 bytes", "\U0001F622\U0001F622".encode(),
              b"tab\tand \x07bell \x1b[31m", paste.encode()]
    result = gateway(tmp_path, "chat", "--json", "--sender", "jane",
                     stdin=b"\n".join(lines) + b"\n")
    assert result.returncode == 0 and b"Traceback" not in result.stderr
    replies = [json.loads(line) for line in result.stdout.decode().splitlines()]
    last_five = turns(replies)[-5:]
    assert "empty" in last_five[0][0]["text"]
    assert all(turn[-1]["awaiting"] == "dispute.facts" for turn in last_five)
    assert "Please answer in words" in last_five[2][0]["text"]
    assert "limit is 100000" in last_five[4][0]["text"]
    runtime = open_runtime(Settings(data_dir=tmp_path))
    with transaction(runtime.sessions) as session:
        stored = [row.text for row in session.scalars(select(InboundMessage))]
    runtime.close()
    assert paste.rstrip() in [text.rstrip() for text in stored]
    assert any("\ufffd broken" in text for text in stored)


def test_invalid_setting_is_a_clear_error(tmp_path: Path) -> None:
    result = gateway(tmp_path, "queue", "list", env={"GATEWAY_HTTP_PORT": "eighty"})
    assert result.returncode == 2
    assert b"http_port" in result.stderr and b"Traceback" not in result.stderr


def test_unknown_reference_is_a_clear_error(tmp_path: Path) -> None:
    gateway(tmp_path, "db", "upgrade")
    result = gateway(tmp_path, "queue", "show", "MCM-2026-NOPE00")
    assert result.returncode == 1 and b"no application MCM-2026-NOPE00" in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_stats_counts_messages_replies_applications_and_translations(tmp_path: Path) -> None:
    chat(tmp_path, ENGLISH_FILING)
    chat(tmp_path, ENGLISH_FILING[:3], sender="amani")  # a draft
    result = gateway(tmp_path, "stats", "--json", env={"GATEWAY_TRANSLATION_BACKEND": "none"})
    assert result.returncode == 0, result.stderr.decode()
    counts = json.loads(result.stdout)
    assert counts["inbound_messages"] == {"terminal": len(ENGLISH_FILING) + 3}
    assert counts["inbound_unprocessed"] == 0
    assert counts["outbox"]["sent"] > len(ENGLISH_FILING)
    assert counts["outbox"]["pending"] == counts["outbox"]["failed"] == 0
    assert counts["applications"]["submitted"] == 1
    assert counts["applications"]["accepted"] == 0
    assert counts["translation_jobs"]["pending"] > 0  # no translation package installed
    text = gateway(tmp_path, "stats").stdout.decode()
    assert f"inbound messages: terminal {len(ENGLISH_FILING) + 3}" in text
    assert "applications: submitted 1" in text


def test_serve_with_no_settings_runs_on_sqlite_under_var(tmp_path: Path) -> None:
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    environment["GATEWAY_HTTP_PORT"] = str(port)
    server = subprocess.Popen([*GATEWAY, "serve"], cwd=tmp_path, env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        health = _wait_for(f"http://127.0.0.1:{port}/healthz")
        assert json.loads(health) == {"status": "ok"}
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/chat", timeout=10).read()
        assert b"<form" in page
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        assert b"# TYPE gateway_applications gauge" in metrics
        assert (tmp_path / "var" / "gateway.sqlite3").is_file()
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert b"Traceback" not in output, output.decode()


def _wait_for(url: str, seconds: float = 30) -> bytes:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return urllib.request.urlopen(url, timeout=2).read()
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"{url} did not answer within {seconds} s")
            time.sleep(0.2)


# -- bad input: one clear line and a nonzero exit, never a traceback or a secret ------------


@pytest.mark.parametrize(("url", "status", "said"), [
    ("postgresql://gateway:s3cret-pw@127.0.0.1:9/mcm", 3, "the database is unavailable"),
    ("postgres://gateway:s3cret-pw@127.0.0.1:9/mcm", 3, "the database is unavailable"),
    ("postgre://gateway:s3cret-pw@127.0.0.1/mcm", 2, "GATEWAY_DATABASE_URL"),
    ("gateway:s3cret-pw", 2, "GATEWAY_DATABASE_URL"),
], ids=["unreachable", "postgres:// is PostgreSQL too", "unknown scheme", "not a URL"])
def test_a_database_that_cannot_be_opened_is_a_clear_error(tmp_path: Path, url: str,
                                                           status: int, said: str) -> None:
    result = gateway(tmp_path, "queue", "list", env={"GATEWAY_DATABASE_URL": url})
    error = result.stderr.decode()
    assert result.returncode == status, error
    assert said in error and "Traceback" not in error and "s3cret-pw" not in error


def test_a_missing_or_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "keys" / "gateway.key"
    result = gateway(tmp_path, "db", "upgrade", env={"GATEWAY_ENCRYPTION_KEY_FILE": str(missing)})
    assert result.returncode == 2
    assert b"gateway.key, which does not exist" in result.stderr
    assert b"Traceback" not in result.stderr

    chat(tmp_path, ENGLISH_FILING[:5])  # sealed under the key file made in the data folder
    other = new_key()
    result = gateway(tmp_path, "queue", "list", env={"GATEWAY_ENCRYPTION_KEY": other})
    assert result.returncode == 2 and b"sealed under key" in result.stderr
    assert b"Traceback" not in result.stderr and other.encode() not in result.stderr


def test_a_database_of_a_newer_version_is_a_clear_error(tmp_path: Path) -> None:
    assert gateway(tmp_path, "db", "upgrade").returncode == 0
    database = create_engine(Settings(data_dir=tmp_path).effective_database_url)
    with database.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    database.dispose()
    for command in (("db", "upgrade"), ("queue", "list")):
        result = gateway(tmp_path, *command)
        assert result.returncode == 2
        assert b"0099_future" in result.stderr and b"Traceback" not in result.stderr


def test_users_add_without_a_terminal_says_how_to_give_the_password(tmp_path: Path) -> None:
    result = gateway(tmp_path, "users", "add", "carol", "--role", "officer")  # stdin: empty
    assert result.returncode == 1
    assert b"--password-stdin" in result.stderr and b"Traceback" not in result.stderr
    assert b"No users yet" in gateway(tmp_path, "users", "list").stdout


def test_queue_list_refuses_a_status_that_does_not_exist(tmp_path: Path) -> None:
    result = gateway(tmp_path, "queue", "list", "--status", "submited")
    assert result.returncode == 2 and b"invalid choice: 'submited'" in result.stderr


def test_queue_show_masks_identity_a_confidentiality_request_protects(tmp_path: Path) -> None:
    reference = chat(tmp_path, CONFIDENTIAL_FILING)[-1]["reference"]
    identity = ("Mwamba", "Kasulo, Kolwezi, Lualaba", "970 000 001", "jane")

    masked = gateway(tmp_path, "queue", "show", reference, "--json")
    assert masked.returncode == 0
    detail = json.loads(masked.stdout)
    assert detail["fields"]["applicant.name"] == "[confidential]"
    assert detail["fields"]["respondent.name"] == "Kolwezi Mining SARL"
    assert not [value for value in identity if value in masked.stdout.decode()]
    assert b"confidentiality request" in masked.stderr
    text_view = gateway(tmp_path, "queue", "show", reference).stdout.decode()
    assert "[confidential]" in text_view
    assert not [value for value in identity if value in text_view]

    revealed = gateway(tmp_path, "queue", "show", reference, "--json", "--reveal")
    assert json.loads(revealed.stdout)["fields"]["applicant.name"] == "Jane Mwamba"
    open_reference = chat(tmp_path, ENGLISH_FILING, sender="ben")[-1]["reference"]
    shown = json.loads(gateway(tmp_path, "queue", "show", open_reference, "--json").stdout)
    assert shown["fields"]["applicant.name"] == "Jane Mwamba"

    runtime = open_runtime(Settings(data_dir=tmp_path))
    try:
        with transaction(runtime.sessions) as session:
            audit = [(event.action, event.reference, event.username.startswith("cli:"))
                     for event in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    finally:
        runtime.close()
    assert audit == [("identity.reveal", reference, True),
                     ("identity.view", open_reference, True)]


@pytest.mark.parametrize("command", [("queue", "list"), ("stats", "--json"), ("keys", "status"),
                                     ("users", "list")])
def test_a_command_that_looks_at_a_mistyped_data_folder_makes_nothing_there(
        tmp_path: Path, command: tuple[str, ...]) -> None:
    typo = tmp_path / "var-typo"
    result = gateway(tmp_path, *command, env={"GATEWAY_DATA_DIR": str(typo)})
    error = result.stderr.decode()
    assert result.returncode == 2, error
    assert "no gateway database" in error and "GATEWAY_DATA_DIR" in error
    assert "Traceback" not in error and b"empty" not in result.stdout
    assert not typo.exists()  # no database, no new encryption key


def test_a_command_that_looks_at_an_empty_postgresql_database_says_so(tmp_path: Path) -> None:
    import uuid

    import sqlalchemy

    name = f"gateway_empty_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test",
                                     isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    try:
        result = gateway(tmp_path, "queue", "list", env={
            "GATEWAY_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{name}"})
        assert result.returncode == 2, result.stderr.decode()
        assert b"no gateway database" in result.stderr
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f"DROP DATABASE {name}"))
        admin.dispose()
