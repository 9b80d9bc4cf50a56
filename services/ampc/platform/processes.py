"""ampc services as OS processes (`python -m ampc serve NAME`): how the demo runs the stack on
one machine, and how the fault tests SIGKILL a service like a crash would."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Final

from ampc.settings import Settings

PARENT_PID_VARIABLE: Final = "AMPC_PARENT_PID"
"""Set for a service started by `ServiceProcess`: the pid whose death must end the service."""

_PR_SET_PDEATHSIG: Final = 1


def die_with_parent() -> None:
    """End this service (SIGTERM, a clean stop) when the process that started it dies.

    A demo or test run killed with SIGKILL cannot stop its services itself; without this they
    would keep running, holding ports and consumer groups. Linux only; elsewhere a no-op.
    """
    parent = os.environ.get(PARENT_PID_VARIABLE)
    if parent is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):  # the parent died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


def settings_environment(settings: Settings) -> dict[str, str]:
    """The AMPC_* variables that make a child process use these settings."""
    values = {
        f"AMPC_{name.upper()}": str(value)
        for name, value in settings.model_dump().items()
        if value is not None
    }
    return {**os.environ, **values}


class ServiceProcess:
    """One service in its own process, its output appended to a log file."""

    def __init__(self, name: str, settings: Settings, log_path: Path) -> None:
        self.name = name
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ampc", "serve", self.name],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={
                    **settings_environment(self.settings),
                    # The signal comes when the starting thread ends: start services from the
                    # main thread.
                    PARENT_PID_VARIABLE: str(os.getpid()),
                },
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """SIGKILL: no shutdown hook runs, as in a crash."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM (faust shuts down cleanly), SIGKILL after the grace period."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace")
        return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])
