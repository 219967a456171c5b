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


class Kept:
    """Fleet's processes kept running from one test to the next of the same module.

    A test that asks for a process gets the one an earlier test of its module left, if it
    still runs with the same arguments and environment (resumed, should that test have
    frozen it), else a new one, rather than a worker, beat, the watch and daphne started
    and ended for every test. A process a test killed or stopped is started again
    for the next; one a test does not ask for is ended before it runs (`end_all_but`), so
    that no test meets a process it did not ask for.
    """

    def __init__(self):
        self.procs = {}  # name -> (key, Popen)

    def get(self, name, args, env, owner):
        """(the process, whether it was kept from an earlier test)."""
        key = (owner, tuple(args), tuple(sorted(env.items())))
        found = self.procs.get(name)
        if found and found[0] == key and found[1].poll() is None:
            try:
                os.killpg(found[1].pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            else:
                return found[1], True
        self.end(name)
        proc = start(name, args, env)
        self.procs[name] = (key, proc)
        return proc, False

    def end(self, name):
        found = self.procs.pop(name, None)
        if found:
            kill(found[1])  # at once: a worker's warm shutdown would wait for its tasks

    def end_all_but(self, names):
        for name in list(self.procs):
            if name not in names:
                self.end(name)


kept = Kept()
