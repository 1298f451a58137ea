"""The `gateway` command: serve, worker, chat, db upgrade, queue list/show, stats, lang detect,
users, translate install/list, keys status/rotate/prune/generate, retention purge."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from alembic.util import CommandError as MigrationError
from pydantic import ValidationError
from sqlalchemy.exc import ArgumentError, OperationalError

from channels import terminal
from gateway.evidence import AttachmentRefused
from gateway.language_detection import build_detector, detector_name
from gateway.queue import application_detail, queue_entry
from gateway.redaction import redact, secrets_of
from gateway.runtime import Runtime, open_runtime, upgrade_and_seal
from gateway.service import Delivered, now_utc
from gateway.settings import Settings
from gateway.staff import StaffError, add_user, disable_user, list_users
from intake.messages import Attachment, InboundMessage, OutboundMessage
from intake.workflow import ROLES, STATUSES
from storage import repository, translations
from storage.crypto import KeyConfigError
from storage.db import DatabaseUnavailable, NoDatabase, transaction
from storage.models import Application

log = logging.getLogger("gateway")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"gateway: invalid settings:\n{error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        return int(args.run(settings, args) or 0)
    except (DatabaseUnavailable, OperationalError) as error:
        reason = error.orig if isinstance(error, OperationalError) else error
        return _fail(settings, f"the database is unavailable: {reason}", 3)
    except ArgumentError as error:
        return _fail(settings, f"cannot open the database GATEWAY_DATABASE_URL names (sqlite:///"
                               f"PATH or postgresql://USER@HOST/NAME): {error}", 2)
    except MigrationError as error:
        return _fail(settings, f"the database schema is not one this version knows (was it "
                               f"upgraded by a newer version?): {error}", 2)
    except KeyConfigError as error:
        return _fail(settings, f"the encryption key: {error}", 2)
    except NoDatabase as error:
        return _fail(settings, f"{error}: is GATEWAY_DATA_DIR (or GATEWAY_DATABASE_URL) right? "
                               "`gateway db upgrade` makes one there", 2)
    except KeyboardInterrupt:
        return 130


def _fail(settings: Settings, message: str, status: int) -> int:
    """Say what went wrong in one line, with every secret masked (a database URL's password
    may be in a driver's message), and return the exit status."""
    try:
        secrets = secrets_of(settings)
    except (OSError, ValueError):
        secrets = []
    print(f"gateway: {redact(message, secrets)}", file=sys.stderr)
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="HTTP server and all workers in one process")
    serve.set_defaults(run=_serve)
    worker = commands.add_parser("worker", help="background workers only (for scale-out)")
    worker.set_defaults(run=_worker)

    chat = commands.add_parser("chat", help="file an application in the terminal")
    chat.add_argument("--json", action="store_true", help="one JSON object per bot message")
    chat.add_argument("--sender", help="who is typing (default: your login name); "
                      "the same sender continues an unfinished application")
    chat.set_defaults(run=_chat)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    db_commands.add_parser("upgrade", help="apply the migrations").set_defaults(run=_db_upgrade)

    queue = commands.add_parser("queue", help="the secretariat's queue")
    queue_commands = queue.add_subparsers(dest="queue_command", required=True, metavar="COMMAND")
    listing = queue_commands.add_parser("list", help="applications by review deadline")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--channel")
    listing.add_argument("--language")
    listing.set_defaults(run=_queue_list)
    show = queue_commands.add_parser("show", help="one application in full")
    show.add_argument("reference")
    show.add_argument("--json", action="store_true")
    show.add_argument("--reveal", action="store_true",
                      help="show identity data a confidentiality request protects (masked "
                           "otherwise); written to the audit log, as every view of identity is")
    show.set_defaults(run=_queue_show)

    stats = commands.add_parser("stats", help="counts from the database: messages in and out, "
                                "applications, translation jobs")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(run=_stats)

    users = commands.add_parser("users", help="the secretariat's users")
    users_commands = users.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    add = users_commands.add_parser("add", help="add a user who can log in to /secretariat")
    add.add_argument("name", help="login name: lower-case letters, digits, . _ -")
    add.add_argument("--role", required=True, choices=ROLES,
                     help="officer: reviews and decides; supervisor: also decides "
                          "confidentiality requests and may reveal identity; admin: all")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input (else asked twice)")
    add.set_defaults(run=_users_add)
    users_list = users_commands.add_parser("list", help="every user with role and state")
    users_list.add_argument("--json", action="store_true")
    users_list.set_defaults(run=_users_list)
    disable = users_commands.add_parser("disable", help="stop a user logging in; ends their "
                                        "logins at once")
    disable.add_argument("name")
    disable.set_defaults(run=_users_disable)

    lang = commands.add_parser("lang", help="language detection, for scripts and benchmarks")
    lang_commands = lang.add_subparsers(dest="lang_command", required=True, metavar="COMMAND")
    detect = lang_commands.add_parser(
        "detect", help="print the language (ISO 639-1) of each line of standard input; "
        "und where the text gives nothing away")
    detect.add_argument("--backend", type=_detector_option, metavar="NAME",
                        help="fasttext, langdetect, lingua or script, or several joined by '+' "
                        "(default: GATEWAY_LANGUAGE_DETECTOR)")
    detect.set_defaults(run=_lang_detect)

    keys = commands.add_parser("keys", help="the encryption keys (docs/security.md)")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    key_status = keys_commands.add_parser("status", help="which key seals how many values and "
                                          "files; whether a rotation is unfinished")
    key_status.add_argument("--json", action="store_true")
    key_status.set_defaults(run=_keys_status)
    keys_commands.add_parser("rotate", help="seal everything again under a new key (or finish "
                             "a rotation that was interrupted); with a key file, it first waits "
                             "until every instance has read the new key"
                             ).set_defaults(run=_keys_rotate)
    keys_commands.add_parser("prune", help="remove from the key file the keys nothing is "
                             "sealed under any more (refused until every instance has read "
                             "the file's last change)"
                             ).set_defaults(run=_keys_prune)
    keys_commands.add_parser("generate", help="print a new random key (for "
                             "GATEWAY_ENCRYPTION_KEY)").set_defaults(run=_keys_generate)

    retention = commands.add_parser("retention", help="drafts abandoned past the retention "
                                    "setting")
    retention_commands = retention.add_subparsers(dest="retention_command", required=True,
                                                  metavar="COMMAND")
    purge = retention_commands.add_parser("purge", help="delete the abandoned drafts, their "
                                          "messages and the files nothing else refers to")
    purge.add_argument("--dry-run", action="store_true", help="only report what would go")
    purge.add_argument("--json", action="store_true")
    purge.set_defaults(run=_retention_purge)

    translate = commands.add_parser("translate", help="machine translation packages")
    translate_commands = translate.add_subparsers(dest="translate_command", required=True,
                                                  metavar="COMMAND")
    install = translate_commands.add_parser(
        "install", help="install Argos Translate packages from .argosmodel files (offline), "
        "or one language pair from the Argos package index")
    install.add_argument("files", nargs="*", type=Path, metavar="FILE.argosmodel")
    install.add_argument("--from-index", nargs=2, metavar=("FROM", "TO"),
                         help="download FROM→TO (through English if need be); needs the network")
    install.set_defaults(run=_translate_install)
    installed = translate_commands.add_parser(
        "list", help="installed packages and the language pairs they translate")
    installed.add_argument("--json", action="store_true")
    installed.set_defaults(run=_translate_list)
    return parser


# -- serve and worker -----------------------------------------------------------------


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from gateway.app import create_app

    print(f"gateway: web chat at http://{_display_host(settings)}:{settings.http_port}/chat, "
          f"queue at /secretariat", file=sys.stderr)
    web.run_app(create_app(settings), host=settings.http_host, port=settings.http_port,
                print=None, access_log=None)
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from gateway.workers import run_workers

    runtime = open_runtime(settings)
    try:
        asyncio.run(run_workers(runtime))
    finally:
        runtime.close()
    return 0


def _display_host(settings: Settings) -> str:
    return "localhost" if settings.http_host in ("127.0.0.1", "0.0.0.0", "::") \
        else settings.http_host


# -- chat -----------------------------------------------------------------------------


def _chat(settings: Settings, args: argparse.Namespace) -> int:
    runtime = open_runtime(settings)
    sender = args.sender or getpass.getuser()
    out = sys.stdout
    interactive = sys.stdin.isatty() and not args.json
    try:
        _show(runtime, _waiting(runtime, sender), args.json, out)
        _show(runtime, runtime.intake.start("terminal", sender), args.json, out)
        for line in _lines(sys.stdin.buffer):
            message = _terminal_message(runtime, sender, line, args.json, out)
            if message is None:
                continue
            try:
                delivered = runtime.intake.handle(message)
            except DatabaseUnavailable as error:
                _notice(f"the database is unavailable ({error}); your last line was not saved, "
                        "please send it again", args.json, out)
                continue
            _show(runtime, delivered or [], args.json, out)
            if interactive:
                print("> ", end="", file=out, flush=True)
    finally:
        runtime.close()
    return 0


def _waiting(runtime: Runtime, sender: str) -> list[Delivered]:
    """What reached this person while they were away: the secretariat's notices."""
    with transaction(runtime.sessions) as session:
        rows = repository.undelivered(session, terminal.CHANNEL, sender)
        return [Delivered(row.id, OutboundMessage.from_dict(row.body)) for row in rows]


def _lines(stream: Any) -> Iterator[str]:
    """Lines of standard input; bytes that are not UTF-8 become U+FFFD, never a crash."""
    for raw in stream:
        text = raw.decode("utf-8", errors="replace")
        if "\ufffd" in text and b"\xef\xbf\xbd" not in raw:
            print("gateway: some bytes were not valid UTF-8 and were replaced", file=sys.stderr)
        yield text.rstrip("\r\n")


def _terminal_message(runtime: Runtime, sender: str, line: str, as_json: bool, out: TextIO
                      ) -> InboundMessage | None:
    """The line as an inbound message; `/attach PATH` attaches a file."""
    attachments: tuple[Attachment, ...] = ()
    text = line
    if line.strip().startswith("/attach"):
        path = Path(line.strip()[len("/attach"):].strip()).expanduser()
        try:
            attachments = (runtime.evidence.store_file(path),)
        except (OSError, AttachmentRefused) as error:
            _notice(f"cannot attach {path}: {error}", as_json, out)
            return None
        text = ""
    return terminal.inbound(sender, text, attachments)


def _show(runtime: Runtime, delivered: list[Delivered], as_json: bool, out: TextIO) -> None:
    """Print the bot's messages and record them as delivered."""
    render = terminal.render_json if as_json else terminal.render_text
    for item in delivered:
        print(render(item.message), file=out)
    out.flush()
    runtime.intake.mark_delivered(delivered)


def _notice(text: str, as_json: bool, out: TextIO) -> None:
    """A message from the terminal itself, not from the conversation."""
    if as_json:
        print(json.dumps({"text": text, "choices": [], "error": True}, ensure_ascii=False),
              file=out, flush=True)
    print(f"gateway: {text}", file=sys.stderr, flush=True)


# -- db and queue ---------------------------------------------------------------------


def _db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    runtime = open_runtime(settings, migrate=False)
    try:
        upgrade_and_seal(runtime.database, runtime.keyring, runtime.evidence)
    finally:
        runtime.close()
    print("gateway: database is up to date", file=sys.stderr)
    return 0


# -- keys and retention ---------------------------------------------------------------


def _keys_status(settings: Settings, args: argparse.Namespace) -> int:
    from gateway import keys

    runtime = open_runtime(settings, existing=True)
    try:
        found = keys.status(runtime).as_dict()
    finally:
        runtime.close()
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"current key: {found['current']}; configured: {', '.join(found['configured'])}")
    print(f"keys from: {found['key_file'] or 'GATEWAY_ENCRYPTION_KEY'}")
    for table, counts in found["values"].items():
        listed = ", ".join(f"{key} {count}" for key, count in sorted(counts.items()))
        print(f"  {table}: {listed or 'empty'}")
    listed = ", ".join(f"{key} {count}" for key, count in sorted(found["files"].items()))
    print(f"  evidence files: {listed or 'none'}")
    if found["rotation_unfinished"]:
        print("a rotation is unfinished: run `gateway keys rotate`")
    if found["no_longer_needed"]:
        print(f"no longer needed: {', '.join(found['no_longer_needed'])} "
              f"(`gateway keys prune` removes them from the key file)")
    return 0


def _keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    from gateway import keys

    runtime = open_runtime(settings, existing=True)
    try:
        done = keys.rotate(runtime)
        left = keys.status(runtime)
    except keys.RotationRefused as refused:
        print(f"gateway: {refused}", file=sys.stderr)
        return 1
    finally:
        runtime.close()
    if done.new_key:
        print(f"new current key {done.new_key}")
    for table, count in done.values.items():
        if count:
            print(f"  {table}: {count} rows sealed again")
    print(f"  evidence files: {done.files} sealed again")
    if left.unfinished:
        print("values written meanwhile under an older key remain: run `gateway keys rotate` "
              "again", file=sys.stderr)
        return 1
    older = [key for key in left.configured if key != left.current]
    print(f"every value and file is sealed under {left.current}"
          + (f"; {', '.join(older)} no longer needed (`gateway keys prune`)" if older else ""))
    return 0


def _keys_prune(settings: Settings, args: argparse.Namespace) -> int:
    from gateway import keys

    runtime = open_runtime(settings, existing=True)
    try:
        removed = keys.prune(runtime)
    except keys.RotationRefused as refused:
        print(f"gateway: {refused}", file=sys.stderr)
        return 1
    finally:
        runtime.close()
    print(f"removed {', '.join(removed)}" if removed else "no key to remove")
    return 0


def _keys_generate(settings: Settings, args: argparse.Namespace) -> int:
    from storage.crypto import new_key

    print(new_key())
    return 0


def _retention_purge(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.retention import purge

    runtime = open_runtime(settings, existing=True)
    try:
        report = purge(runtime, now_utc(), dry_run=args.dry_run)
    finally:
        runtime.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    if report.retention_days is None:
        print("GATEWAY_DRAFT_RETENTION_DAYS is unset: drafts are kept; nothing to purge")
        return 0
    verb = "would delete" if report.dry_run else "deleted"
    print(f"drafts expired before {report.cutoff:%Y-%m-%d %H:%M} UTC "
          f"({report.retention_days:g} days): {len(report.drafts)}")
    for draft in report.drafts:
        print(f"  draft {draft['id']} ({draft['channel']}), started {draft['created_at'][:10]}, "
              f"expired {(draft['expired_at'] or '')[:10]}")
    if report.rows:
        print(f"{verb}: " + ", ".join(f"{count} {table}" for table, count
                                      in sorted(report.rows.items()) if count))
    files = len(report.files) if report.dry_run else report.files_deleted
    print(f"{verb} {files} evidence files; {report.files_kept} kept (a kept message or an "
          f"application refers to them)")
    return 0


def _queue_list(settings: Settings, args: argparse.Namespace) -> int:
    runtime = open_runtime(settings, existing=True)
    try:
        with transaction(runtime.sessions) as session:
            rows = repository.applications(session, repository.QueueFilter(
                status=args.status, channel=args.channel, language=args.language))
            states = translations.states_by_application(session, [row.id for row in rows])
            entries = [queue_entry(runtime.engine, row, states.get(row.id, {})) for row in rows]
    finally:
        runtime.close()
    if args.json:
        print(json.dumps(entries, ensure_ascii=False, indent=2))
        return 0
    if not entries:
        print("The queue is empty.")
    for entry in entries:
        present = sum(entry["completeness"].values())
        flag = " confidentiality requested" if entry["confidentiality_requested"] else ""
        if entry["translation"]["status"] in ("pending", "failed"):
            flag += f" translation {entry['translation']['status']}"
        print(f"{entry['reference']}  {entry['status']:<12} review by "
              f"{entry['formal_review_deadline']}  {entry['channel']:<9} {entry['language']:<3} "
              f"{present}/9 items{flag}")
    return 0


def _queue_show(settings: Settings, args: argparse.Namespace) -> int:
    from intake.reference import normalise_reference

    runtime = open_runtime(settings, existing=True)
    try:
        with transaction(runtime.sessions) as session:
            application: Application | None = repository.application_by_reference(
                session, normalise_reference(args.reference))
            detail = (_detail_as_allowed(session, runtime, application, args.reveal)
                      if application else None)
    finally:
        runtime.close()
    if detail is None:
        print(f"gateway: no application {args.reference}", file=sys.stderr)
        return 1
    if detail["identity_masked"]:
        print("gateway: identity data is masked: a confidentiality request protects it "
              "(--reveal shows it, and the audit log records that)", file=sys.stderr)
    if args.json:
        print(json.dumps(detail, ensure_ascii=False, indent=2))
        return 0
    for key in ("reference", "status", "channel", "language", "submitted_at",
                "formal_review_deadline", "confidentiality_decision_deadline"):
        print(f"{key}: {detail[key]}")
    print("fields:")
    for key, value in detail["fields"].items():
        print(f"  {key}: {json.dumps(value, ensure_ascii=False)}")
    print("evidence:")
    for item in detail["evidence"]:
        print(f"  - {item['filename'] or item['description']}"
              + (f" ({item['media_type']}, {item['size']} bytes)" if item["sha256"] else ""))
    _print_translations(detail["translations"])
    return 0


def _detail_as_allowed(session: Any, runtime: Runtime, application: Application, reveal: bool
                       ) -> dict[str, Any]:
    """The application in full, with identity data masked under a pending or granted
    confidentiality request unless revealed, as the secretariat's pages do; every view of
    identity data is written to the audit log, under the login name of whoever ran this."""
    from gateway.decisions import confidentiality_of
    from storage.models import AuditEvent

    detail = application_detail(session, runtime.engine, application)
    protected = confidentiality_of(application).protects_identity
    detail["identity_masked"] = protected and not reveal
    if detail["identity_masked"]:
        return _masked_detail(session, runtime, application, detail)
    repository.add_audit(session, AuditEvent(
        at=now_utc(), user_id=None, username=f"cli:{_login_name()}"[:64],
        action="identity.reveal" if protected else "identity.view",
        application_id=application.id, reference=application.reference,
        detail={"where": "gateway queue show"}))
    return detail


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this user id (a container)
        return "unknown"


def _masked_detail(session: Any, runtime: Runtime, application: Application,
                   detail: dict[str, Any]) -> dict[str, Any]:
    """`detail` with every identifying value masked: identity answers whole (their
    translations too), and every name, address or contact the applicant gave cut out of the
    other texts, in any case (gateway.review's masking)."""
    from gateway.review import identity_keys, identity_masker, masked_with
    from intake.workflow import MASK, mask_fields

    engine = runtime.engine
    keys = identity_keys(engine.form)
    lines = repository.transcript(session, repository.conversations_of(session, application.id))
    _, mask = identity_masker(engine, application, lines)
    detail["fields"] = masked_with(mask_fields(application.fields, keys, []), mask)
    for item in detail["evidence"]:
        item["filename"] = mask(item["filename"]) if item["filename"] else item["filename"]
        item["description"] = mask(item["description"]) if item["description"] else \
            item["description"]
    for text in detail["translations"]:
        whole = text["field"] in keys
        text["original"] = MASK if whole else mask(text["original"])
        for language in ("zh", "en"):
            version = text.get(language)
            if version is not None and version["text"]:
                version["text"] = MASK if whole else mask(version["text"])
    return detail


def _print_translations(texts: list[dict[str, Any]]) -> None:
    """Free texts with their Chinese and English machine translations, or their state."""
    if texts:
        print("translations (machine translation; the original above prevails):")
    for text in texts:
        item = f"[{text['item']}]" if text["field"] in ("evidence", "supplement") or \
            text["item"] else ""
        print(f"  {text['field']}{item} ({text['source_language']}): "
              f"{json.dumps(text['original'], ensure_ascii=False)}")
        for language in ("zh", "en"):
            version = text.get(language)
            if version is None:
                continue
            if version["status"] == "done":
                print(f"    {language}: {json.dumps(version['text'], ensure_ascii=False)} "
                      f"[{version['label']}: {version['engine']} {version['package_version']}]")
            else:
                print(f"    {language}: translation {version['status']}"
                      + (f" ({version['error']})" if version["error"] else ""))


def _stats(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.stats import summary

    runtime = open_runtime(settings, existing=True)
    try:
        counts = summary(runtime)
    finally:
        runtime.close()
    if args.json:
        print(json.dumps(counts, indent=2))
        return 0
    for name, value in counts.items():
        if isinstance(value, dict):
            listed = ", ".join(f"{key} {count}" for key, count in value.items())
            print(f"{name.replace('_', ' ')}: {listed or 'none'}")
        else:
            print(f"{name.replace('_', ' ')}: {value}")
    return 0


# -- translate ------------------------------------------------------------------------


def _translate_install(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.translation import argos, argos_installed

    if not argos_installed():
        print("gateway: argostranslate is not installed; README.md, \"Machine translation\", "
              "says how to install it without GPU builds", file=sys.stderr)
        return 2
    if not args.files and not args.from_index:
        print("gateway: name .argosmodel files, or --from-index FROM TO", file=sys.stderr)
        return 2
    runtime = open_runtime(settings)
    try:
        with transaction(runtime.sessions) as session:
            waiting = translations.pending_by_pair(session)
    finally:
        runtime.close()
    try:
        done = argos.install_files(settings.argos_dir, args.files)
        if args.from_index:
            source, target = args.from_index
            done += argos.install_from_index(settings.argos_dir, source, target,
                                             settings.argos_package_index)
    except (argos.PackageInvalid, OSError) as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 1
    for package in done:
        print(f"installed {package.source}→{package.target} {package.version}")
    pairs = argos.routes(argos.installed_packages(settings.argos_dir))
    covered = sum(count for pair, count in waiting.items() if pair in pairs)
    print(f"gateway: {covered} waiting translations are covered now; a running `gateway serve` "
          f"or `gateway worker` makes them", file=sys.stderr)
    if settings.translation_backend != "argos":
        print(f"gateway: note: GATEWAY_TRANSLATION_BACKEND is {settings.translation_backend}, "
              f"so these packages are not used", file=sys.stderr)
    return 0


def _translate_list(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.translation import argos, argos_installed

    if not argos_installed():
        print("gateway: argostranslate is not installed; no packages", file=sys.stderr)
        return 2
    packages = argos.installed_packages(settings.argos_dir)
    pairs = argos.routes(packages)
    if args.json:
        print(json.dumps({
            "packages": [{"from": p.source, "to": p.target, "version": p.version,
                          "path": str(p.path)} for p in packages],
            "pairs": [{"from": source, "to": target,
                       "via": route[0].target if len(route) > 1 else None}
                      for (source, target), route in sorted(pairs.items())],
        }, ensure_ascii=False, indent=2))
        return 0
    if not packages:
        print("No translation package is installed: translations stay pending.\n"
              "`gateway translate install FILE.argosmodel` installs one.")
        return 0
    print(f"Installed packages ({settings.argos_dir / 'packages'}):")
    for package in packages:
        print(f"  {package.source}→{package.target}  {package.version}")
    print("Language pairs:")
    for (source, target), route in sorted(pairs.items()):
        print(f"  {source}→{target}" + (f"  (through {route[0].target})"
                                        if len(route) > 1 else ""))
    return 0


# -- lang -----------------------------------------------------------------------------


def _detector_option(value: str) -> str:
    try:
        return detector_name(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _lang_detect(settings: Settings, args: argparse.Namespace) -> int:
    from intake.form import DEFAULT_FORM_PATH, load_form
    from intake.language import detect_language

    languages = load_form(settings.form_path or DEFAULT_FORM_PATH).languages
    detector = build_detector(args.backend or settings.language_detector, languages)
    for line in _lines(sys.stdin.buffer):
        print(detect_language(line, languages, detector) or "und", flush=True)
    return 0


# -- users ----------------------------------------------------------------------------


def _read_password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or typed twice at a terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    try:
        first = getpass.getpass("Password: ")
        again = getpass.getpass("Again: ")
    except EOFError as error:
        raise StaffError("no password given: type it twice at a terminal, or pass "
                         "--password-stdin and write it to standard input") from error
    if again != first:
        raise StaffError("the two passwords differ")
    return first


def _users_add(settings: Settings, args: argparse.Namespace) -> int:
    runtime = open_runtime(settings)
    try:
        password = _read_password(args.password_stdin)
        add_user(runtime.sessions, args.name, args.role, password)
    except StaffError as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 1
    finally:
        runtime.close()
    print(f"gateway: added {args.name} ({args.role})", file=sys.stderr)
    return 0


def _users_list(settings: Settings, args: argparse.Namespace) -> int:
    runtime = open_runtime(settings, existing=True)
    try:
        listed = list_users(runtime.sessions)
    finally:
        runtime.close()
    if args.json:
        print(json.dumps(listed, ensure_ascii=False, indent=2))
        return 0
    if not listed:
        print("No users yet: gateway users add NAME --role ROLE")
    for user in listed:
        state = "disabled" if user["disabled"] else "active"
        print(f"{user['username']:<24} {user['role']:<10} {state:<8} "
              f"last login {user['last_login_at'] or 'never'}")
    return 0


def _users_disable(settings: Settings, args: argparse.Namespace) -> int:
    runtime = open_runtime(settings, existing=True)
    try:
        disable_user(runtime.sessions, args.name)
    except StaffError as error:
        print(f"gateway: {error}", file=sys.stderr)
        return 1
    finally:
        runtime.close()
    print(f"gateway: disabled {args.name}; their logins have ended", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
