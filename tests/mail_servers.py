"""The real mail servers the e-mail tests run against: Dovecot (IMAP, started in a temporary
folder on a free port, as shared/recipes/dovecot-for-tests.md describes) and aiosmtpd
(SMTP, in this process, recording every message it accepts)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from imapclient import IMAPClient

USER = "intake@mcm.example.org"
PASSWORD = "secret-imap-password"
STARTUP_SECONDS = 20.0

DOVECOT_CONF = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={dir}/home/%u
}}
mail_location = maildir:{dir}/home/%u/Maildir
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
first_valid_uid = 1
# Where inotify is not available, IDLE notices new mail by looking this often.
mailbox_idle_check_interval = 1 secs
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dovecot_missing() -> str | None:
    """Why Dovecot cannot run here, or None."""
    if shutil.which("dovecot") is None or shutil.which("doveadm") is None:
        return "Dovecot is not installed (apt-get install dovecot-imapd; tests/run.sh does it)"
    if os.geteuid() != 0:
        return "Dovecot's test server needs root (it switches to the dovenull and nobody users)"
    return None


@dataclass
class Dovecot:
    """A throw-away Dovecot on 127.0.0.1."""

    folder: Path
    port: int

    @classmethod
    def start(cls) -> Dovecot:
        folder = Path(tempfile.mkdtemp(prefix="dovecot-"))
        folder.chmod(0o755)
        port = free_port()
        for name in ("run", "state", "home"):
            (folder / name).mkdir()
        shutil.chown(folder / "home", "nobody", "nogroup")
        (folder / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n", encoding="ascii")
        (folder / "dovecot.conf").write_text(DOVECOT_CONF.format(dir=folder, port=port),
                                             encoding="ascii")
        server = cls(folder, port)
        subprocess.run(["dovecot", "-c", str(server.config)], check=True, timeout=30)
        server.wait_until_listening()
        return server

    @property
    def config(self) -> Path:
        return self.folder / "dovecot.conf"

    def wait_until_listening(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        log = (self.folder / "dovecot.log")
        raise RuntimeError(f"Dovecot did not start: {log.read_text() if log.exists() else ''}")

    def stop(self) -> None:
        subprocess.run(["doveadm", "-c", str(self.config), "stop"], check=False, timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)

    def client(self) -> IMAPClient:
        """A logged-in client, as a mail program delivering test mail."""
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(USER, PASSWORD)
        return client


@dataclass
class SmtpRecorder:
    """What aiosmtpd accepted, as parsed messages; `refuse` makes it answer with an error."""

    received: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    refuse: list[tuple[int, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            code, text = self.refuse.pop(0)
            return f"{code} {text}"
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        assert isinstance(message, EmailMessage)
        self.received.append(message)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def start_smtp(recorder: SmtpRecorder) -> Controller:
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller
