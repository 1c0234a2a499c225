"""cli.torchrun: an interrupted ``kolmo train --nproc`` leaves no process of torchrun's group behind."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import cli.torchrun
from cli.torchrun import _stop

# A stand-in for torchrun that ignores SIGINT (as a stuck launcher would) and has a worker in its group.
STUCK_LAUNCHER = """
import signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(worker.pid, flush=True)
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" in status.read_text()
    except FileNotFoundError:
        return True


def test_an_interrupt_stops_the_launcher_and_its_workers_even_when_the_launcher_ignores_it(monkeypatch):
    monkeypatch.setattr(cli.torchrun, "STOP_GRACE_S", 0.5)
    proc = subprocess.Popen([sys.executable, "-c", STUCK_LAUNCHER], start_new_session=True, stdout=subprocess.PIPE,
                            text=True)
    worker = int(proc.stdout.readline())
    _stop(proc)
    assert proc.poll() is not None
    deadline = time.monotonic() + 10  # the worker got SIGTERM with its launcher; give it time to die
    while not _gone(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(worker)
