"""Fleet's own processes for the tests (worker, beat, watch, web), started once and kept.

Each kind is started when a test first asks for it (by its fixture) and kept for the tests
after it that ask for it with the same arguments and environment, so a module's tests
share one worker, one beat, one watch and one web server. A kind a test does not ask for
is stopped before the test begins: its being there would change what the test sees (beat
checks the nodes, the watch follows their events, a worker takes the queued work). A
process a test killed is started again for the next test that asks for it.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# FLEET_TEST_LOGS keeps the logs of parallel runs (other labs) apart.
LOGS = Path(os.environ.get("FLEET_TEST_LOGS") or ROOT / "var" / "test-logs")

# The fixture that asks for each kind of process.
FIXTURES = {
    "celery_worker": "worker",
    "celery_beat": "beat",
    "watch_process": "watch",
    "server": "web",
}


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


class Processes:
    """The running processes, one of each kind at most."""

    def __init__(self):
        self.held = {}  # kind -> (args, env, Popen)
        self.started = dict.fromkeys(FIXTURES.values(), 0)

    def get(self, kind, args, env):
        """The running process of this kind, started anew unless it was started with the
        same arguments and environment and still runs."""
        held = self.held.get(kind)
        if held and held[:2] == (args, env) and held[2].poll() is None:
            return held[2]
        self.stop(kind)
        proc = start(kind, args, env)
        self.held[kind] = (args, env, proc)
        self.started[kind] += 1
        return proc

    def running(self, kind):
        held = self.held.get(kind)
        return held[2] if held and held[2].poll() is None else None

    def stop(self, kind):
        held = self.held.pop(kind, None)
        if held is None:
            return
        if kind == "worker":
            # Killed, not stopped: a warm shutdown of its pool takes some 3 s. What it had
            # not acked stays unacked for the visibility timeout (an hour), so no later
            # worker picks it up.
            kill(held[2])
        else:
            stop([held[2]])

    def keep_only(self, kinds):
        for kind in list(self.held):
            if kind not in kinds:
                self.stop(kind)

    def stop_all(self):
        self.keep_only(())


POOL = Processes()
