"""Plays the testbed's launchpad for Ramp: starts `ramp flags serve` with a configuration's flag
files, edits `changing-flag` to fire change events, and kills and restarts the server to
simulate a lost connection.

One server runs at a time on ports chosen once per session, so a provider that reconnects after
a restart finds the server where it left it. A scenario reuses the running server when it
serves the same configuration with untouched flags; otherwise the server starts afresh from a
new copy of the flag files. The `fractional` bucketing the server evaluates with is part of
what it serves: a scenario written for another version restarts it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import testbed
from .testbed import LaunchpadConfig

#: How long a start may take before the scenario fails.
START_TIMEOUT_S = 15.0
#: How long a stopped server may take to exit on SIGTERM before it is killed.
STOP_TIMEOUT_S = 5.0
#: `ramp flags serve --fractional` when a scenario asks for nothing else.
DEFAULT_FRACTIONAL = "v2"


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports nobody listens on (all held open while choosing, so the
    kernel cannot hand out one twice)."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


@dataclass(frozen=True)
class Serving:
    """What a server start is told; a scenario wanting anything else restarts the server."""

    config: LaunchpadConfig
    #: The token the server requires (`--token`), if any.
    token: str | None = None
    #: The `fractional` bucketing version (`--fractional`).
    fractional: str = DEFAULT_FRACTIONAL


@dataclass(frozen=True)
class Ports:
    ofrep: int
    management: int
    grpc: int
    sync: int

    @staticmethod
    def pick() -> Ports:
        ofrep, management, grpc, sync = free_ports(4)
        return Ports(ofrep=ofrep, management=management, grpc=grpc, sync=sync)


class ServerFailed(RuntimeError):
    """The server did not start or died; the message carries the end of its log."""


class RampServer:
    """The one `ramp flags serve` process of a test session."""

    def __init__(self, binary: Path, work_root: Path):
        self.binary = binary
        self.work_root = work_root
        self.ports = Ports.pick()
        self._lock = threading.RLock()
        self._process: subprocess.Popen[bytes] | None = None
        #: What is being served; `None` forces the next start afresh.
        self._serving: Serving | None = None
        self._flag_dir: Path | None = None
        self._flags_edited = False
        self._pending_restart: threading.Timer | None = None
        self._log_path = work_root / "ramp.log"

    # -- what scenarios call -------------------------------------------------------------

    def serve(
        self,
        config: LaunchpadConfig,
        token: str | None = None,
        fractional: str = DEFAULT_FRACTIONAL,
    ) -> None:
        """Makes the server serve `config`'s sources from pristine flag files, requiring
        `token` from clients when one is given and bucketing `fractional` with the given
        version."""
        with self._lock:
            self._cancel_pending_restart()
            wanted = Serving(config, token, fractional)
            if self._serving == wanted and not self._flags_edited and self._running():
                return
            self._stop_process(signal.SIGTERM)
            self._flag_dir = Path(tempfile.mkdtemp(prefix=f"{config.name}-", dir=self.work_root))
            testbed.prepare_flag_dir(self._flag_dir)
            self._serving = wanted
            self._flags_edited = False
            self._start_process()

    def change_flag(self) -> str:
        """Toggles `changing-flag`'s default variant in the served files; returns the new one."""
        with self._lock:
            if self._flag_dir is None:
                raise ServerFailed("no flags are being served")
            self._flags_edited = True
            return testbed.toggle_changing_flag(self._flag_dir)

    def lose_connection(self, seconds: float) -> None:
        """Kills the server now and starts it again, on the same ports and files, after
        `seconds`; returns at once, like the launchpad's `/restart`."""
        with self._lock:
            self._cancel_pending_restart()
            self._stop_process(signal.SIGKILL)
            timer = threading.Timer(seconds, self._restart)
            timer.daemon = True
            self._pending_restart = timer
            timer.start()

    def settle(self) -> None:
        """Ends a scenario: a restart still pending is dropped and the server marked for a
        fresh start, so the next scenario never meets a half-restarted server."""
        with self._lock:
            if self._cancel_pending_restart():
                self._serving = None

    def shutdown(self) -> None:
        with self._lock:
            self._cancel_pending_restart()
            self._stop_process(signal.SIGTERM)
            self._serving = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self._log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    @property
    def ofrep_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.ofrep}"

    # -- process control -----------------------------------------------------------------

    def _command(self, serving: Serving) -> list[str]:
        config = serving.config
        command = [str(self.binary), "flags", "serve"]
        for source in config.sources:
            command += ["-f", source]
        command += [
            "--ofrep-listen",
            f"127.0.0.1:{self.ports.ofrep}",
            "--management-listen",
            f"127.0.0.1:{self.ports.management}",
            "--grpc-listen",
            f"127.0.0.1:{self.ports.grpc}",
            "--sync-listen",
            f"127.0.0.1:{self.ports.sync}",
            "--fractional",
            serving.fractional,
        ]
        for key, value in config.context.items():
            if not isinstance(value, str):
                raise ValueError(f"{config.name}: context value {key}={value!r} is not a string")
            command += ["--context-value", f"{key}={value}"]
        if serving.token is not None:
            command += ["--token", serving.token]
        return command

    def _start_process(self) -> None:
        assert self._serving is not None and self._flag_dir is not None
        command = self._command(self._serving)
        with self._log_path.open("ab") as log:
            log.write(f"\n$ (cd {self._flag_dir} && {' '.join(command)})\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command,
                cwd=self._flag_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._environment(),
            )
        self._await_ready()

    @staticmethod
    def _environment() -> dict[str, str]:
        """The caller's environment, minus a token it may carry (the scenario decides)."""
        environment = {key: value for key, value in os.environ.items() if key != "RAMP_FLAGS_TOKEN"}
        environment.setdefault("RAMP_LOG", "info")
        environment["NO_COLOR"] = "1"
        return environment

    def _await_ready(self) -> None:
        assert self._process is not None
        url = f"http://127.0.0.1:{self.ports.management}/readyz"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                status = self._process.returncode
                raise ServerFailed(f"ramp exited with {status} while starting:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise ServerFailed(f"{url} not ready within {START_TIMEOUT_S}s:\n{self.log_tail()}")

    def _restart(self) -> None:
        with self._lock:
            if self._pending_restart is None:
                return
            self._pending_restart = None
            if self._serving is not None and not self._running():
                self._start_process()

    def _running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _stop_process(self, how: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(how)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _cancel_pending_restart(self) -> bool:
        timer, self._pending_restart = self._pending_restart, None
        if timer is None:
            return False
        timer.cancel()
        return True
