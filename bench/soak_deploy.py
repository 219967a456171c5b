"""The soak's rolling deploys: one service rolled out again and again, in a thread of its own."""

import threading
import time

from bench.harness import api

DEPLOY_GAP_S = 10  # after a rollout ends, the next one starts this much later
ROLLING = ("pending", "running")


class Deployer:
    """Deploys demo:2, then demo:1, and so on, each once the last rollout has ended (however:
    succeeded, failed or rolled back) and DEPLOY_GAP_S more have passed."""

    def __init__(self, stack, service):
        self.stack, self.service = stack, service
        self.images = [stack.lab["images"]["demo_v2"], stack.lab["images"]["demo_v1"]]
        self.started = 0
        self.errors = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def step(self, ended_at):
        """Deploy if it is time; return when the last rollout ended (None: one is running)."""
        path = f"/api/services/{self.service}/"
        current = api(self.stack, "GET", path, timeout=10).get("current_deployment") or {}
        if current.get("status") in ROLLING:
            return None
        ended_at = ended_at or time.monotonic()
        if time.monotonic() - ended_at < DEPLOY_GAP_S:
            return ended_at
        image = self.images[self.started % 2]
        api(self.stack, "POST", path + "deploy", {"image": image}, timeout=10)
        self.started += 1
        return None

    def run(self):
        ended_at = None
        while not self.stop.wait(1):
            try:
                ended_at = self.step(ended_at)
            except Exception as exc:  # a slow API during a fault: try again next second
                self.errors.append(repr(exc)[:200])

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)
