"""Reading a Compose file: YAML as Compose v2 reads it, interpolation as Compose does it,
the Compose Specification's schema, then what Fleet supports; each problem says where."""

import pytest

from fleet.stacks.compose import ComposeError, load
from fleet.stacks.interpolation import EnvError, InterpolationError, interpolate, parse_env

APP = """
name: shop
x-common: &common
  restart: unless-stopped
  environment:
    TZ: UTC
services:
  web:
    <<: *common
    image: ${REGISTRY:-registry.example}/shop/web:${TAG:?set TAG in .env}
    ports: [80:80, "8443:443"]
    environment:
      DEBUG: no
      DATABASE_URL: postgres://shop:$${PASSWORD}@db/shop
    deploy:
      replicas: 3
      update_config: {parallelism: 1, order: start-first}
      resources: {limits: {cpus: "0.5", memory: 256M}}
  db:
    image: registry.example/shop/postgres:16
    healthcheck:
      test: [CMD, pg_isready]
      interval: 2s
"""


def problems(text, env=""):
    with pytest.raises(ComposeError) as caught:
        load(text, env)
    return caught.value.problems


def test_a_real_file_is_read_as_compose_reads_it():
    loaded = load(APP, "TAG=1.4\n")
    web = loaded.model["services"]["web"]
    assert web["image"] == "registry.example/shop/web:1.4"
    assert web["ports"] == ["80:80", "8443:443"]  # YAML 1.1 would make 80:80 the number 4880
    assert web["environment"] == {
        "DEBUG": "no",
        "DATABASE_URL": "postgres://shop:${PASSWORD}@db/shop",
    }
    assert web["restart"] == "unless-stopped"  # merged from the anchor
    assert loaded.model["services"]["db"]["healthcheck"]["interval"] == "2s"
    assert loaded.warnings == []


def test_a_required_variable_that_is_missing_refuses_the_file_with_its_message():
    assert problems(APP) == ["services.web.image: required variable TAG: set TAG in .env"]


def test_an_unset_variable_is_empty_with_a_warning_naming_where_it_is():
    loaded = load("services:\n  a:\n    image: busybox\n    command: echo $GREETING!\n")
    assert loaded.model["services"]["a"]["command"] == "echo !"
    assert loaded.warnings == [
        "services.a.command: variable GREETING is not set; an empty string is used"
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("${SET}", "x"),
        ("$SET/$EMPTY/", "x//"),
        ("${UNSET:-d}|${UNSET-d}|${EMPTY:-d}|${EMPTY-d}", "d|d|d|"),
        ("${SET:+alt}|${EMPTY:+alt}|${EMPTY+alt}|${UNSET+alt}", "alt||alt|"),
        ("${UNSET:-${ALSO:-deep}}", "deep"),
        ("${UNSET:-${SET}}", "x"),
        ("$$SET and $${SET}", "$SET and ${SET}"),
        ("cost: 5$ or $ 5 or $1", "cost: 5$ or $ 5 or $1"),
        ("${SET}${SET}", "xx"),
    ],
)
def test_interpolation_follows_the_compose_specification(text, expected):
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate(text, env, "here", lambda _: None) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("${EMPTY:?must not be empty}", "here: required variable EMPTY: must not be empty"),
        ("${UNSET?}", "here: required variable UNSET: it is not set"),
        ("${EMPTY:?}", "here: required variable EMPTY: it is empty"),
        ("${}", "here: invalid interpolation format ${}"),
        ("${SET:x}", "here: invalid interpolation format ${SET:x}"),
        ("${ SET}", "here: invalid interpolation format ${ SET}"),
        ("a ${SET", "here: '${SET' has no closing brace"),
    ],
)
def test_bad_or_missing_variables_are_errors_that_say_where(text, message):
    with pytest.raises(InterpolationError) as caught:
        interpolate(text, {"SET": "x", "EMPTY": ""}, "here", lambda _: None)
    assert str(caught.value) == message


def test_env_text_is_read_as_compose_reads_a_dot_env_file():
    text = (
        "# settings\n"
        "export HOST=db.internal\n"
        "PORT = 5432   # the default\n"
        "URL=postgres://${HOST}:${PORT}\n"
        "LITERAL='${HOST} stays'\n"
        'QUOTED="a\\tb ${PORT}"\n'
        'MULTI="one\n'
        'two"\n'
        "EMPTY=\n"
    )
    warnings = []
    assert parse_env(text, warnings.append) == {
        "HOST": "db.internal",
        "PORT": "5432",
        "URL": "postgres://db.internal:5432",
        "LITERAL": "${HOST} stays",
        "QUOTED": "a\tb 5432",
        "MULTI": "one\ntwo",
        "EMPTY": "",
    }
    assert warnings == []


@pytest.mark.parametrize(
    "text, message",
    [
        ("1BAD=x", ".env line 1: '1BAD' is not a variable name"),
        ("\nNOVALUE", ".env line 2: NOVALUE has no '=' and no value"),
        ("A='open", ".env line 1: the single quote is never closed"),
        ('A="open\nstill', ".env line 1: the double quote is never closed"),
    ],
)
def test_bad_env_text_says_which_line(text, message):
    with pytest.raises(EnvError) as caught:
        parse_env(text, lambda _: None)
    assert str(caught.value).startswith(message)


def test_env_problems_refuse_the_file():
    assert problems(APP, "TAG") == [
        ".env line 1: TAG has no '=' and no value (Fleet takes no value from its own environment)"
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("services: [", "line 1, column 12: expected the node content, but found '<stream end>'"),
        ("services:\n  a: {image: x}\n  a: {image: y}\n", "line 3, column 3: duplicate key 'a'"),
        ("- a\n- b\n", "the file must be a mapping (services: ...)"),
        ("services: {}\n---\nservices: {}\n", "the file holds 2 YAML documents, not one"),
        (
            "services:\n  a:\n    image: x\n    build: .\n",
            "services.a.build: Fleet does not support 'build'",
        ),
    ],
)
def test_what_is_not_a_compose_file_fleet_can_use_says_where(text, expected):
    found = problems(text)
    assert found[0].startswith(expected), found


def test_the_schema_finds_what_compose_would_refuse():
    found = problems("services:\n  web:\n    image: x\n    replicas: 3\n    ports: {a: b}\n")
    assert found == [
        "services.web.replicas: not a key the Compose Specification knows here",
        "services.web.ports: {'a': 'b'} is not of type 'array'",
    ]


def test_every_key_fleet_does_not_support_is_named_with_its_service():
    text = """
services:
  web:
    image: x
    privileged: true
    deploy:
      endpoint_mode: dnsrr
      mode: replicated-job
      placement: {max_replicas_per_node: 1}
      resources: {limits: {pids: 10}}
  worker:
    build: .
include: [other.yaml]
"""
    assert problems(text) == [
        "include: Fleet does not support 'include' (give Fleet the one file, with what it "
        "includes written in)",
        "services.web.privileged: Fleet does not support 'privileged' (Fleet does not run "
        "privileged containers)",
        "services.web.deploy.endpoint_mode: Fleet does not support 'endpoint_mode'",
        "services.web.deploy.mode: 'replicated-job': Fleet runs 'replicated' services",
        "services.web.deploy.placement.max_replicas_per_node: Fleet does not support "
        "'max_replicas_per_node'",
        "services.web.deploy.resources.limits.pids: Fleet does not support 'pids'",
        "services.worker.build: Fleet does not support 'build' (Fleet does not build images: "
        "push it to a registry Fleet can pull from)",
        "services.worker: needs an image (Fleet does not build images: push it to a registry "
        "Fleet can pull from)",
    ]


def test_keys_fleet_does_not_run_yet_are_refused_by_name_not_ignored():
    text = """
services:
  db:
    image: postgres
    volumes: [data:/var/lib/postgresql/data]
    networks: [back]
volumes:
  data: {}
networks:
  back: {}
"""
    assert problems(text) == [
        "volumes: Fleet does not support 'volumes'",
        "networks: Fleet does not support 'networks'",
        "services.db.volumes: Fleet does not support 'volumes'",
        "services.db.networks: Fleet does not support 'networks'",
    ]


def test_a_file_that_expands_through_aliases_beyond_the_limit_is_refused():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
        f"*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
        for i in range(1, 9)
    ]
    assert problems("\n".join(lines)) == [
        "the file expands to over 50000 values (through aliases?)"
    ]


def test_a_file_over_the_size_limit_or_nested_too_deep_is_refused():
    assert problems("#" * (512 * 1024 + 1)) == ["the file is over 512 KiB"]
    assert problems("a: " + "[" * 5000 + "]" * 5000) == ["the file is nested too deeply"]
