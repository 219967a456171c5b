"""The HAProxy process itself: started by `make run` (and the tests) when none answers.

Master-worker mode (-W) with a master socket (-S), daemonised: a reload replaces the
worker and keeps the listening socket, so no connection is refused during it.
"""

import os
import signal
import subprocess
import time

from django.conf import settings

from fleet.ingress import config, haproxy, servers


def pidfile():
    return settings.FLEET_INGRESS_DIR / "haproxy.pid"


def start():
    """Write the configuration and start HAProxy unless it runs; return whether it started."""
    if haproxy.running():
        return False
    with config.locked():
        config.write(servers.current_backends)
    cfg, _ = config.paths()
    haproxy.master_socket().unlink(missing_ok=True)
    subprocess.run(
        [settings.FLEET_INGRESS_HAPROXY, "-W", "-D", "-S", f"{haproxy.master_socket()},mode,600"]
        + ["-p", str(pidfile()), "-f", str(cfg)],
        check=True,
        capture_output=True,
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            haproxy.command("show info")
            return True
        except haproxy.Unavailable:
            time.sleep(0.05)
    raise RuntimeError("HAProxy started but its runtime API does not answer")


def stop():
    """Stop the HAProxy this folder's pid file names, and wait until it is gone."""
    try:
        pid = int(pidfile().read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    pidfile().unlink(missing_ok=True)
    return True
