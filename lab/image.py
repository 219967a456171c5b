"""The lab's demo image: a static busybox httpd that serves its own version."""

import shutil
import tempfile
from pathlib import Path

from lab.host import LabError, docker_cli, host_env, run

DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
EXPOSE 80
# httpd runs as PID 1, which ignores SIGTERM: without this every stop waits 10 s before killing.
STOPSIGNAL SIGKILL
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
"""


def build_and_push(images, engine_sock, workdir, api_version=None):
    """Build each {"demo_vN": ref} image on the engine at engine_sock and push it, asking
    api_version of the Engine API if given (an engine may refuse the client's own)."""
    busybox = Path("/bin/busybox")
    if not busybox.exists() or b"ld-linux" in busybox.read_bytes()[:8192]:
        raise LabError("the demo image needs a static /bin/busybox: apt-get install busybox-static")
    docker, env = _cli(engine_sock, workdir / "docker-cli", api_version)
    for key, ref in images.items():
        version = key.removeprefix("demo_v")
        ctx = workdir / "build" / key
        (ctx / "www").mkdir(parents=True, exist_ok=True)
        shutil.copy2(busybox, ctx / "busybox")
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        for page in ("index.html", "health"):
            (ctx / "www" / page).write_text(f"{version}\n")
        run(*docker, "build", "-q", "-t", ref, str(ctx), env=env)
        run(*docker, "push", "-q", ref, env=env)
    shutil.rmtree(workdir / "build", ignore_errors=True)


def push_with_login(source, target, login, engine_sock, workdir, api_version=None):
    """Push image source (pulled first unless the engine has it) as target, to a registry
    that needs login, a {"address", "username", "password"}: the CLI logs in through the
    engine for this push alone, in a CLI config that is removed after it."""
    with tempfile.TemporaryDirectory(dir=workdir) as config:
        docker, env = _cli(engine_sock, Path(config), api_version)
        run(*docker, "pull", "-q", source, env=env)
        run(*docker, "tag", source, target, env=env)
        user = ["-u", login["username"], "--password-stdin", login["address"]]
        run(*docker, "login", *user, env=env, input=login["password"])
        run(*docker, "push", "-q", target, env=env)


def _cli(engine_sock, config, api_version):
    """The docker CLI's argv for the engine at engine_sock, and its environment."""
    # Classic builder (no buildx plugin needed); a CLI config of our own (no user proxies).
    env = {k: v for k, v in host_env().items() if not k.startswith("DOCKER_")}
    env |= {"DOCKER_BUILDKIT": "0", "DOCKER_CONFIG": str(config)}
    if api_version:
        env["DOCKER_API_VERSION"] = api_version
    return [docker_cli(), "-H", f"unix://{engine_sock}"], env
