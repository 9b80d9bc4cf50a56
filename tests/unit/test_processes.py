"""A service started by a process that is then SIGKILLed does not outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SERVICE = textwrap.dedent(
    """
    import time
    from ampc.platform.processes import die_with_parent
    die_with_parent()
    print("ready", flush=True)
    time.sleep(120)
    """
)

STARTER = textwrap.dedent(
    f"""
    import os, subprocess, sys, time
    from ampc.platform.processes import PARENT_PID_VARIABLE
    env = {{**os.environ, PARENT_PID_VARIABLE: str(os.getpid())}}
    child = subprocess.Popen([sys.executable, "-c", {SERVICE!r}], env=env)
    print(child.pid, flush=True)
    time.sleep(120)
    """
)


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may never be reaped in a container)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_a_service_ends_when_the_process_that_started_it_is_killed() -> None:
    starter = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True)
    assert starter.stdout is not None
    service_pid = int(starter.stdout.readline())
    assert starter.stdout.readline().strip() == "ready"
    try:
        starter.send_signal(signal.SIGKILL)
        starter.wait(timeout=10)
        deadline = time.monotonic() + 10
        while running(service_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(service_pid)
    finally:
        if running(service_pid):
            os.kill(service_pid, signal.SIGKILL)
