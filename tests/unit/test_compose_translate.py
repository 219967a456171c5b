"""A checked Compose file -> the specs of Fleet's services: each Compose form in Fleet's
terms, which the service spec's own validation then accepts; what cannot be said is named."""

import pytest

from fleet.services.spec import ServiceSpecSerializer
from fleet.stacks.compose import ComposeError, load
from fleet.stacks.translate import service_specs
from fleet.stacks.units import seconds, size

SHOP = """
services:
  web:
    image: registry.example/shop/web:1.4
    command: gunicorn --bind 0.0.0.0:8000 'shop.wsgi:application'
    environment:
      DEBUG: false
      WORKERS: 4
      SECRET_KEY:
      REGION:
    ports: ["8000", "8080:80", "9000-9001:9000-9001/udp", {target: 443, published: "8443"}]
    healthcheck:
      test: wget -q -O /dev/null http://127.0.0.1:8000/health || exit 1
      interval: 1m30s
      timeout: 500ms
      start_period: 10s
      retries: 5
    restart: unless-stopped
    deploy:
      replicas: 3
      update_config: {parallelism: 2, delay: 5s, order: stop-first, monitor: 30s,
                      failure_action: pause}
      placement:
        constraints: [node.labels.zone == eu-1, node.hostname!=lab-2, node.platform.os==linux]
      resources: {limits: {cpus: "0.5", memory: 256M}}
  worker:
    image: registry.example/shop/web:1.4
    command: [celery, -A, shop, worker]
    environment: [QUEUE=default, "EMPTY=", FROM_ENV]
    healthcheck: {test: [NONE]}
    deploy:
      restart_policy: {condition: on-failure}
"""


def specs(text, env_text=""):
    loaded = load(text, env_text)
    return service_specs(loaded.model, loaded.env)


def problems(text, env_text=""):
    with pytest.raises(ComposeError) as caught:
        specs(text, env_text)
    return caught.value.problems


def test_a_real_file_becomes_specs_fleet_accepts():
    found = specs(SHOP, "SECRET_KEY=s3cret\nFROM_ENV=yes\n")
    web, worker = found["web"], found["worker"]
    assert web == {
        "image": "registry.example/shop/web:1.4",
        "command": ["gunicorn", "--bind", "0.0.0.0:8000", "shop.wsgi:application"],
        "env": {"DEBUG": "false", "WORKERS": "4", "SECRET_KEY": "s3cret"},
        "ports": [
            {"container": 8000, "published": None, "protocol": "tcp"},
            {"container": 80, "published": 8080, "protocol": "tcp"},
            {"container": 9000, "published": 9000, "protocol": "udp"},
            {"container": 9001, "published": 9001, "protocol": "udp"},
            {"container": 443, "published": 8443, "protocol": "tcp"},
        ],
        "healthcheck": {
            "command": ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8000/health || exit 1"],
            "interval": 90.0,
            "timeout": 0.5,
            "start_period": 10.0,
            "retries": 5,
        },
        "restart_policy": "any",
        "replicas": 3,
        "update": {
            "parallelism": 2,
            "delay": 5.0,
            "order": "stop-first",
            "monitor": 30.0,
            "failure_action": "pause",
        },
        "constraints": ["zone==eu-1", "node.name!=lab-2", "node.os==linux"],
        "resources": {"cpus": 0.5, "memory_bytes": 256 * 1024 * 1024},
    }
    assert worker == {
        "image": "registry.example/shop/web:1.4",
        "command": ["celery", "-A", "shop", "worker"],
        "env": {"QUEUE": "default", "EMPTY": "", "FROM_ENV": "yes"},
        "healthcheck": None,
        "restart_policy": "on-failure",
    }
    for name, spec in found.items():
        serializer = ServiceSpecSerializer(data={"name": name, **spec})
        assert serializer.is_valid(), serializer.errors


@pytest.mark.parametrize(
    "ports, problem",
    [
        ('["127.0.0.1:80:80"]', "services.a.ports[0]: '127.0.0.1:80:80' names a host address"),
        ('["80:80/sctp"]', "services.a.ports[0]: '80:80/sctp': Fleet publishes tcp or udp"),
        ('["8000-8001:80"]', "services.a.ports[0]: '8000-8001:80': the two ranges are not"),
        ('["80:8000-8001"]', "services.a.ports[0]: '80:8000-8001': one host port for several"),
        ('["70000"]', "services.a.ports[0]: '70000' is not a port or a range of ports from 1"),
        ("[{target: 80, host_ip: 127.0.0.1}]", "services.a.ports[0].host_ip: Fleet does not"),
        ("[{target: 80, mode: ingress}]", "services.a.ports[0].mode: 'ingress': Fleet publishes"),
        ('["1000-1040"]', "services.a.ports: 41 ports; a service publishes at most 32"),
    ],
)
def test_ports_fleet_cannot_publish_are_named(ports, problem):
    found = problems(f"services:\n  a:\n    image: x\n    ports: {ports}\n")
    assert len(found) == 1 and found[0].startswith(problem), found


def test_every_form_fleet_cannot_honour_is_named_with_its_service():
    text = """
services:
  a:
    image: x
    command: echo 'unclosed
    restart: on-failure:3
    healthcheck: {test: [CMD, "true"], interval: 10 seconds, start_interval: 1s}
    deploy:
      restart_policy: {condition: any, max_attempts: 3}
      update_config: {parallelism: 0, failure_action: continue, max_failure_ratio: 0.1}
      placement: {constraints: [node.role==manager]}
      resources: {limits: {memory: lots}}
"""
    assert problems(text) == [
        'services.a.command: "echo \'unclosed" cannot be split into words: No closing quotation',
        "services.a.healthcheck.start_interval: Fleet does not support 'start_interval'",
        "services.a.restart: 'on-failure:3': use no, always, unless-stopped or on-failure "
        "(Fleet retries with a backoff of its own, not a count)",
        "services.a.deploy.restart_policy.max_attempts: Fleet does not support 'max_attempts' "
        "(it retries with a backoff of its own)",
        "services.a.deploy.update_config.parallelism: 0 (all at once) is not a rolling update; "
        "give how many replicas to update at a time",
        "services.a.deploy.placement.constraints[0]: 'node.role==manager': Fleet places by "
        "node.labels.*, node.hostname, node.platform.os and node.platform.arch",
        "services.a.deploy.resources.limits.memory: 'lots' is not a size such as 512m, 1g or "
        "1048576",
    ]


@pytest.mark.parametrize(
    "text, expected",
    [("30s", 30), ("1m30s", 90), ("1.5h", 5400), ("250ms", 0.25), ("0", 0), ("2h45m10.5s", 9910.5)],
)
def test_go_durations(text, expected):
    assert seconds(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "10", "1 m", "5 minutes", "1m30", "-1s", "s"])
def test_what_is_not_a_go_duration_is_refused(text):
    with pytest.raises(ValueError):
        seconds(text)


@pytest.mark.parametrize(
    "value, expected",
    [
        (1048576, 1048576),
        ("512m", 512 * 1024**2),
        ("1g", 1024**3),
        ("256MB", 256 * 1024**2),
        ("1GiB", 1024**3),
        ("1.5k", 1536),
        ("100", 100),
        ("2 M", 2 * 1024**2),
    ],
)
def test_sizes_in_powers_of_1024(value, expected):
    assert size(value) == expected
