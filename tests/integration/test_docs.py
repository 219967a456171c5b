"""The docs' shell examples work as written, in a fresh shell after `make run`.

Every command in a ```sh block of the README and of every page in docs/ is either run
here, in a bash with nothing of Fleet exported (no SECRET_KEY: the settings read
var/secret-key, as `make run` leaves it), or named below with the reason it is not; a new
example fails this test until someone decides which. The only variables set point the
commands at the tests' own database, Redis and lab, never at what a `make run` on this
machine uses.
"""

import json
import os
import re
import secrets
import shlex
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.system import ROOT, _start, _stop, free_port, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOKEN = r"TOKEN=\$\(curl -s -X POST localhost:8000/api/auth/token/ "
NODES = r'curl -H "Authorization: Token \$TOKEN" localhost:8000/api/nodes/$'
EVENTS = r"curl -H \"Authorization: Token \$TOKEN\" 'localhost:8000/api/events/\?node=web-3'$"
ROLE = r"\.venv/bin/python manage\.py role ann operator "
LAB_STATUS = r"\.venv/bin/python -m lab status --json$"
LAB_CA = r"\.venv/bin/python -m lab status --json \| jq -r '\.nodes\[0\]\.tls\.ca'$"
RUN = [TOKEN, NODES, EVENTS, ROLE, LAB_STATUS, LAB_CA]
NOT_RUN = {
    r"(FLEET_LAB_ENGINES=\S+ )?make (run|test) ": (
        "starts everything, or the whole suite this test is part of"
    ),
    r"make docs ": "builds the site: tests/unit/test_docs_paths.py runs mkdocs build --strict",
    r"jq -n --rawfile ca ca\.pem": "needs an engine's TLS files, on a host outside the lab",
    r"jq -n --rawfile key fleet-key ": (
        "needs a host outside the lab whose sshd lets that key in: test_node_ssh registers one"
    ),
    r"\.venv/bin/python -m lab status --json \| jq '\.nodes\[3\]\.ssh'$": (
        "shows lab-4, which only the `lab up --ssh lab-4` above makes"
    ),
    r"curl .*/api/nodes/web-3/drain$": "acts on web-3, which only the example above registers",
    r"curl .*/api/services/": "deploys containers: test_api_services does, through this API",
    r"curl .* localhost:8000/api/registries/ ": (
        "keeps a made-up login: test_api_registries does, through this API"
    ),
    r"HOOK=\$\(curl .*/api/services/web/webhooks/": "needs web, made by an example not run here",
    r'curl -s -X POST "\$HOOK"': "deploys containers: test_webhooks does, through this URL",
    r"(FLEET_LAB_ENGINES=\S+ )?\.venv/bin/python -m lab (up|stop|down)": (
        "changes the lab every test shares"
    ),
    r"TLS=\$\(\.venv/bin/python -m lab status --json \| jq": "flags for the docker calls below",
    r"docker -H tcp://10\.250\.7\.11:2376 \$TLS (ps|kill) ": (
        "kills a replica on make run's lab: test_services_faults kills them on the tests' own"
    ),
    r"PASSWORD=\$\(\.venv/bin/python -m lab status --json \| jq": "for the login below",
    r'echo "\$PASSWORD" \| docker -H tcp://10\.250\.7\.11:2376 \$TLS login ': (
        "logs in on make run's lab: test_lab logs in on the tests' own private registry"
    ),
    r"docker -H tcp://10\.250\.7\.11:2376 \$TLS pull 10\.250\.7\.1:5443/": (
        "pulls on make run's lab: test_lab pulls from the tests' own private registry"
    ),
    r"(BENCH_[A-Z_]+=\S+ )*\.venv/bin/python -m bench(\.\w+)?( |$)": (
        "a benchmark, minutes long, on a Fleet and lab of its own; never part of make test"
    ),
}


def commands(text):
    """Each command of each ```sh block: continued lines joined, quoted newlines kept."""
    found = []
    for _indent, block in re.findall(r"^( *)```sh\n(.*?)^\1```", text, re.M | re.S):
        pending = ""
        for line in textwrap.dedent(block).splitlines():
            pending += line + "\n"
            try:
                shlex.split(pending, comments=True)
            except ValueError:
                continue  # inside a quoted string that spans lines
            if pending.rstrip().endswith(("\\", "|")):
                continue
            if pending.strip() and not pending.lstrip().startswith("#"):
                found.append(pending.strip())
            pending = ""
    return found


def documented_commands():
    """Every command of every page, each once, in the order the pages show them."""
    return list(dict.fromkeys(c for page in DOCS for c in commands(page.read_text())))


def test_every_example_is_either_run_or_skipped_for_a_stated_reason():
    found = documented_commands()
    assert len(found) > 20
    for command in found:
        runs = any(re.match(p, command) for p in RUN)
        skipped = [reason for p, reason in NOT_RUN.items() if re.match(p, command)]
        assert runs != bool(skipped), f"decide whether this documented command runs here: {command}"
    for pattern in RUN:
        assert any(re.match(pattern, c) for c in found), f"no page shows {pattern} any more"


@pytest.fixture
def secret_key_file():
    """var/secret-key as `make run` leaves it; made (and removed afterwards) if missing."""
    path = ROOT / "var" / "secret-key"
    made = not path.exists()
    if made:
        path.parent.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(50) + "\n")
        path.chmod(0o600)
    yield path
    if made:
        path.unlink()


@pytest.fixture
def fresh_env(process_env, secret_key_file):
    """A new shell's environment, plus where the tests keep their database, Redis and lab."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    isolation = ("DATABASE_URL", "REDIS_URL", "FLEET_LAB_NAME", "FLEET_LAB_SUBNET")
    env |= {k: process_env[k] for k in isolation if k in process_env}
    return env


@pytest.fixture
def web(fresh_env):
    port = free_port()
    proc = _start(
        "web",
        ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "fleet.asgi:application"],
        fresh_env,
    )

    def up():
        return (
            subprocess.run(["curl", "-s", "-o", "/dev/null", f"127.0.0.1:{port}/"]).returncode == 0
        )

    wait_for(up, 30, message="daphne to listen")
    yield port
    _stop([proc])


def sh(command, env):
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{command}\n{result.stderr}"
    return result.stdout


def output_of(out, pattern):
    [text] = [text for command, text in out.items() if re.match(pattern, command)]
    return text


def test_the_docs_safe_examples_work_in_a_fresh_shell(lab_nodes, fresh_env, web):
    from django.contrib.auth.models import User

    assert "SECRET_KEY" not in fresh_env and "SECRET_KEY_FILE" not in fresh_env
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser("admin", password=password)
    User.objects.create_user("ann", password=secrets.token_urlsafe(12))
    run = [c for c in documented_commands() if any(re.match(p, c) for p in RUN)]
    out = {}
    for command in run:
        shown = command.replace("localhost:8000", f"127.0.0.1:{web}")
        shown = shown.replace('"password": "..."', f'"password": "{password}"')
        if shown.startswith("TOKEN="):
            fresh_env = {**fresh_env, "TOKEN": sh(f'{shown}\nprintf %s "$TOKEN"', fresh_env)}
        else:
            out[command] = sh(shown, fresh_env)
    assert len(fresh_env.get("TOKEN", "")) >= 20
    nodes = json.loads(output_of(out, NODES))
    assert [(n["name"], n["insecure"]) for n in nodes] == [
        ("lab-1", False),
        ("lab-2", False),
        ("lab-3", False),
    ]
    assert json.loads(output_of(out, EVENTS))["results"] == []  # no events of web-3
    assert output_of(out, ROLE).strip() == "ann: operator"
    status = json.loads(output_of(out, LAB_STATUS))
    assert all(Path(n["tls"]["ca"]).is_file() for n in status["nodes"])
    assert output_of(out, LAB_CA).strip() == status["nodes"][0]["tls"]["ca"]
