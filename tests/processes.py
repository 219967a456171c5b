"""Starting and stopping Fleet's own processes (worker, beat, watch, web) for the tests."""

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# FLEET_TEST_LOGS keeps the logs of parallel runs (other labs) apart.
LOGS = Path(os.environ.get("FLEET_TEST_LOGS") or ROOT / "var" / "test-logs")


def start(name, args, env):
    LOGS.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=open(LOGS / f"{name}.log", "a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a test can kill it with its children
    )


def stop(procs):
    """Ask each process to end, and kill what has not ended 20 s later."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()  # the main process shuts its children down itself
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def kill(proc):
    """End a process group at once (a worker: its pool would take seconds to shut down)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
