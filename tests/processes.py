"""`gateway` commands as processes of their own, for the crash tests and the benchmarks: start
one with its settings, wait until it answers on 127.0.0.1, stop it or kill it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
GATEWAY = [sys.executable, "-m", "gateway.cli"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A process that was started, and where it listens."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def rss_mib(self) -> float:
        """Resident memory now, in MiB (Linux /proc)."""
        return resident_mib(self.process.pid)

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish anything."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (a clean stop), then SIGKILL if it does not end in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def resident_mib(pid: int) -> float:
    """The resident set size of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start(name: str, args: Sequence[str], port: int, folder: Path,
          env: dict[str, str] | None = None, ready_path: str | None = "/healthz",
          timeout: float = 90.0) -> Server:
    """Start a process (its output in folder/NAME.log, GATEWAY_ variables only from `env`)
    and wait until it answers on 127.0.0.1:port, when `ready_path` is given."""
    log = folder / f"{name}.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    environment |= env or {}
    with log.open("ab") as output:
        process = subprocess.Popen(list(args), stdout=output, stderr=subprocess.STDOUT,
                                   env=environment, cwd=folder)
    server = Server(name, process, port, log)
    if ready_path is not None:
        wait_ready(server, ready_path, timeout)
    return server


def wait_ready(server: Server, path: str, timeout: float) -> None:
    """Until the server answers `path` with anything but a 5xx."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {server.output()[-3000:]}")
        try:
            with urllib.request.urlopen(server.url + path, timeout=2):
                return
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.name} did not answer within {timeout:g} s: "
                       f"{server.output()[-3000:]}")


def start_gateway(command: str, folder: Path, env: dict[str, str], name: str | None = None
                  ) -> Server:
    """`gateway serve` on a free port (waits for /healthz) or `gateway worker`."""
    port = free_port()
    environment = {"GATEWAY_HTTP_HOST": HOST, "GATEWAY_HTTP_PORT": str(port)} | env
    return start(name or f"gateway-{command}", [*GATEWAY, command], port, folder, environment,
                 ready_path="/healthz" if command == "serve" else None)
