"""The service spec: defaults, refusals with their field paths, merge and Docker's form."""

import pytest

from fleet.converge.containers import docker_healthcheck
from fleet.services.spec import SPEC_FIELDS, ServiceSpecSerializer, default_spec, merge

DIGEST = "sha256:" + "a" * 64
MIB = 1024 * 1024


def validate(**fields):
    """The validated data of a spec named web running busybox, with these fields."""
    serializer = ServiceSpecSerializer(data={"name": "web", "image": "busybox", **fields})
    assert serializer.is_valid(), serializer.errors
    return serializer.validated_data


def errors_of(**fields):
    """The errors of a spec named web running busybox, with these fields."""
    serializer = ServiceSpecSerializer(data={"name": "web", "image": "busybox", **fields})
    assert not serializer.is_valid()
    return serializer.errors


def messages(errors):
    return " ".join(str(message) for message in errors)


# Defaults and normalisation


def test_a_spec_of_only_name_and_image_comes_out_complete():
    assert validate() == {
        "name": "web",
        "image": "busybox",
        "command": [],
        "env": {},
        "secrets": {},
        "ports": [],
        "replicas": 1,
        "healthcheck": None,
        "constraints": [],
        "resources": {"cpus": None, "memory_bytes": None},
        "restart_policy": "any",
        "update": {
            "parallelism": 1,
            "delay": 0,
            "order": "start-first",
            "monitor": 5,
            "failure_action": "rollback",
            "auto": False,
            "drain": 10,
        },
        "ingress": None,
    }


def test_the_default_spec_is_what_each_absent_field_means():
    spec = validate()
    assert default_spec() == {key: spec[key] for key in SPEC_FIELDS if key != "image"}


def test_the_revision_fields_are_all_but_name_and_replicas():
    assert set(SPEC_FIELDS) == set(validate()) - {"name", "replicas"}


def test_defaults_are_fresh_objects_each_time():
    first = validate()
    first["update"]["parallelism"] = 9
    first["env"]["A"] = "1"
    assert validate()["update"]["parallelism"] == 1
    assert default_spec()["env"] == {}


def test_a_full_spec_comes_out_as_given_with_ints_kept_as_ints():
    given = {
        "name": "api",
        "image": "10.250.7.1:5000/fleet/demo:1",
        "command": ["serve", "--port", "80"],
        "env": {"MODE": "prod", "EMPTY": ""},
        "secrets": {},
        "ports": [{"container": 80, "published": 8080, "protocol": "tcp"}],
        "replicas": 3,
        "healthcheck": {
            "command": ["CMD", "true"],
            "interval": 10,
            "timeout": 2.5,
            "retries": 4,
            "start_period": 1,
        },
        "constraints": ["zone==a"],
        "resources": {"cpus": 0.5, "memory_bytes": 64 * MIB},
        "restart_policy": "on-failure",
        "update": {
            "parallelism": 2,
            "delay": 1.5,
            "order": "stop-first",
            "monitor": 10,
            "failure_action": "pause",
            "auto": True,
            "drain": 2.5,
        },
        "ingress": None,
    }
    serializer = ServiceSpecSerializer(data=given)
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == given
    assert type(serializer.validated_data["healthcheck"]["interval"]) is int
    assert type(serializer.validated_data["update"]["delay"]) is float


def test_a_partial_update_policy_gets_defaults_for_the_rest():
    assert validate(update={"parallelism": 2})["update"] == {
        "parallelism": 2,
        "delay": 0,
        "order": "start-first",
        "monitor": 5,
        "failure_action": "rollback",
        "auto": False,
        "drain": 10,
    }


def test_partial_resources_get_null_for_the_missing_limit():
    assert validate(resources={"cpus": 2})["resources"] == {"cpus": 2, "memory_bytes": None}


def test_a_healthcheck_of_only_a_command_gets_default_timings():
    assert validate(healthcheck={"command": ["CMD-SHELL", "curl -f localhost"]})["healthcheck"] == {
        "command": ["CMD-SHELL", "curl -f localhost"],
        "interval": 5,
        "timeout": 3,
        "retries": 3,
        "start_period": 0,
    }


def test_a_port_without_published_is_published_on_a_port_docker_picks():
    assert validate(ports=[{"container": 80}])["ports"] == [
        {"container": 80, "published": None, "protocol": "tcp"}
    ]


def test_constraints_come_out_in_their_canonical_form():
    assert validate(constraints=["zone != b"])["constraints"] == ["zone!=b"]


# Unknown keys


def test_it_refuses_an_unknown_top_level_key():
    assert errors_of(replica=3)["replica"] == ["Unknown field."]


def test_it_refuses_unknown_keys_in_nested_objects():
    errors = errors_of(
        update={"paralelism": 2},
        resources={"memory": 1},
        healthcheck={"command": ["CMD", "true"], "intervall": 5},
        ports=[{"container": 80}, {"container": 81, "host": 8081}],
    )
    assert errors["update"]["paralelism"] == ["Unknown field."]
    assert errors["resources"]["memory"] == ["Unknown field."]
    assert errors["healthcheck"]["intervall"] == ["Unknown field."]
    assert errors["ports"][1]["host"] == ["Unknown field."]


def test_it_reports_unknown_keys_together_with_other_errors():
    errors = errors_of(update={"order": "sideways", "colour": "red"})
    assert errors["update"]["colour"] == ["Unknown field."]
    assert "order" in errors["update"]


# name and image


def test_name_and_image_are_required():
    serializer = ServiceSpecSerializer(data={})
    assert not serializer.is_valid()
    assert set(serializer.errors) == {"name", "image"}


@pytest.mark.parametrize("name", ["Web", "web_1", "-web", "w" * 64, " web", ""])
def test_it_refuses_a_name_that_is_not_a_dns_label(name):
    assert "name" in errors_of(name=name)


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "busybox:1.36",
        "library/nginx:1.25",
        "10.250.7.1:5000/fleet/demo:1",
        "localhost/app",
        "localhost:5000/app:latest",
        "ghcr.io/a/b@" + DIGEST,
        "ghcr.io/a/b:v1.2_rc-3@" + DIGEST,
        "my-org/my__app.v2",
    ],
)
def test_it_accepts_plausible_image_references(image):
    assert validate(image=image)["image"] == image


@pytest.mark.parametrize(
    "image",
    [
        "UPPER/case",
        "Busybox",
        "a b",
        " busybox",
        ":tag",
        "img:",
        "img@sha256:abc",
        "a//b",
        "-a",
        "img:" + "t" * 129,
        "a" * 256,
    ],
)
def test_it_refuses_image_references_docker_would_not_take(image):
    assert "image" in errors_of(image=image)


def test_it_refuses_a_blank_image():
    assert "image" in errors_of(image="")


# command and env


def test_it_refuses_a_command_that_is_not_a_list_of_strings():
    assert "command" in errors_of(command="serve --port 80")
    assert errors_of(command=["serve", 80])["command"][1] == ["Not a valid string."]


def test_it_refuses_more_than_64_command_arguments():
    assert "command" in errors_of(command=["x"] * 65)
    assert validate(command=["x"] * 64)["command"] == ["x"] * 64


def test_it_refuses_a_command_argument_over_4096_characters():
    assert 0 in errors_of(command=["x" * 4097])["command"]


def test_it_refuses_env_names_a_shell_could_not_use():
    errors = errors_of(env={"1ST": "a", "WITH-DASH": "b", "GOOD_1": "c"})
    assert set(errors["env"]) == {"1ST", "WITH-DASH"}


def test_it_refuses_env_values_that_are_not_strings():
    assert errors_of(env={"PORT": 8080})["env"]["PORT"] == ["Not a valid string."]


def test_it_refuses_an_env_value_over_32768_characters():
    assert "BIG" in errors_of(env={"BIG": "x" * 32769})["env"]


def test_it_refuses_more_than_200_env_variables():
    env = {f"VAR_{i}": "x" for i in range(201)}
    assert "at most 200" in messages(errors_of(env=env)["env"])


def test_it_refuses_env_that_is_not_an_object():
    assert "env" in errors_of(env=["A=1"])


# ports


def test_it_refuses_a_port_above_65535():
    errors = errors_of(ports=[{"container": 80}, {"container": 81, "published": 65536}])
    assert 0 not in errors["ports"]
    assert "65535" in messages(errors["ports"][1]["published"])


def test_it_refuses_port_zero():
    assert "container" in errors_of(ports=[{"container": 0}])["ports"][0]


def test_a_port_needs_its_container_port():
    errors = errors_of(ports=[{"published": 8080}])
    assert errors["ports"][0]["container"] == ["This field is required."]


def test_it_refuses_a_protocol_other_than_tcp_or_udp():
    assert "protocol" in errors_of(ports=[{"container": 80, "protocol": "sctp"}])["ports"][0]


def test_it_refuses_the_same_container_port_twice():
    errors = errors_of(ports=[{"container": 80}, {"container": 80}])
    assert "listed twice" in messages(errors["ports"][1]["container"])


def test_it_refuses_the_same_published_port_twice():
    ports = [{"container": 80, "published": 8080}, {"container": 81, "published": 8080}]
    errors = errors_of(ports=ports)
    assert errors["ports"][1]["published"] == ["Port 8080/tcp is published twice."]


def test_the_same_port_number_may_be_used_once_per_protocol():
    ports = [
        {"container": 53, "published": 53, "protocol": "tcp"},
        {"container": 53, "published": 53, "protocol": "udp"},
    ]
    assert len(validate(ports=ports)["ports"]) == 2


def test_several_ports_may_be_published_on_ports_docker_picks():
    assert len(validate(ports=[{"container": 80}, {"container": 81}])["ports"]) == 2


def test_it_refuses_more_than_32_ports():
    ports = [{"container": port} for port in range(1, 34)]
    assert "ports" in errors_of(ports=ports)


# replicas


def test_it_refuses_more_replicas_than_fleet_max_replicas(settings):
    settings.FLEET_MAX_REPLICAS = 5
    assert validate(replicas=5)["replicas"] == 5
    assert "5" in messages(errors_of(replicas=6)["replicas"])


def test_it_accepts_zero_replicas():
    assert validate(replicas=0)["replicas"] == 0


@pytest.mark.parametrize("replicas", [-1, 1.5, "3", True, None])
def test_it_refuses_replicas_that_are_not_a_whole_number_from_zero(replicas):
    assert "replicas" in errors_of(replicas=replicas)


# healthcheck


def test_a_healthcheck_may_be_null():
    assert validate(healthcheck=None)["healthcheck"] is None


def test_a_healthcheck_needs_a_command():
    errors = errors_of(healthcheck={"interval": 5})
    assert errors["healthcheck"]["command"] == ["This field is required."]


@pytest.mark.parametrize("command", [[], ["curl", "-f", "localhost"], ["cmd", "true"], "CMD true"])
def test_a_healthcheck_command_must_start_with_cmd_or_cmd_shell(command):
    assert "command" in errors_of(healthcheck={"command": command})["healthcheck"]


def test_a_healthcheck_command_needs_something_to_run_after_cmd():
    errors = errors_of(healthcheck={"command": ["CMD"]})
    assert "after 'CMD'" in messages(errors["healthcheck"]["command"])


@pytest.mark.parametrize("field", ["interval", "timeout"])
def test_a_healthcheck_interval_and_timeout_must_be_at_least_a_millisecond(field):
    for seconds in (0, -1, 0.0005):
        errors = errors_of(healthcheck={"command": ["CMD", "true"], field: seconds})
        assert field in errors["healthcheck"]
    assert validate(healthcheck={"command": ["CMD", "true"], field: 0.001})


def test_a_healthcheck_start_period_may_be_zero_but_not_under_a_millisecond():
    assert validate(healthcheck={"command": ["CMD", "true"], "start_period": 0})
    errors = errors_of(healthcheck={"command": ["CMD", "true"], "start_period": 0.0001})
    assert "start_period" in errors["healthcheck"]


@pytest.mark.parametrize("field", ["interval", "timeout", "start_period"])
def test_a_healthcheck_duration_is_at_most_an_hour(field):
    errors = errors_of(healthcheck={"command": ["CMD", "true"], field: 3601})
    assert field in errors["healthcheck"]


@pytest.mark.parametrize("retries", [0, 101, 2.5])
def test_healthcheck_retries_are_a_whole_number_from_1_to_100(retries):
    errors = errors_of(healthcheck={"command": ["CMD", "true"], "retries": retries})
    assert "retries" in errors["healthcheck"]


@pytest.mark.parametrize("interval", ["5", True, float("nan"), float("inf")])
def test_durations_must_be_real_numbers(interval):
    errors = errors_of(healthcheck={"command": ["CMD", "true"], "interval": interval})
    assert "interval" in errors["healthcheck"]


# constraints


def test_it_refuses_a_constraint_it_cannot_read_naming_the_accepted_forms():
    errors = errors_of(constraints=["zone==a", "zone=b"])
    assert 0 not in errors["constraints"]
    assert "KEY==VALUE or KEY!=VALUE" in messages(errors["constraints"][1])


def test_it_refuses_more_than_32_constraints():
    assert "constraints" in errors_of(constraints=[f"k{i}==v" for i in range(33)])


# resources


@pytest.mark.parametrize("cpus", [0, -1, 1025])
def test_it_refuses_cpus_outside_0_to_1024(cpus):
    assert "cpus" in errors_of(resources={"cpus": cpus})["resources"]


def test_it_accepts_fractional_cpus():
    assert validate(resources={"cpus": 0.25})["resources"]["cpus"] == 0.25


def test_it_refuses_a_memory_limit_under_4_mib():
    assert "memory_bytes" in errors_of(resources={"memory_bytes": 6 * MIB - 1})["resources"]
    assert validate(resources={"memory_bytes": 6 * MIB})["resources"]["memory_bytes"] == 6 * MIB


def test_it_refuses_a_memory_limit_that_is_not_whole_bytes():
    assert "memory_bytes" in errors_of(resources={"memory_bytes": 6 * MIB + 0.5})["resources"]


# restart policy and update policy


def test_it_refuses_an_unknown_restart_policy():
    assert "restart_policy" in errors_of(restart_policy="always")


def test_it_refuses_an_unknown_update_order():
    assert "order" in errors_of(update={"order": "random"})["update"]


def test_it_refuses_an_unknown_failure_action():
    assert "failure_action" in errors_of(update={"failure_action": "continue"})["update"]


@pytest.mark.parametrize("parallelism", [0, 101])
def test_it_refuses_parallelism_outside_1_to_100(parallelism):
    assert "parallelism" in errors_of(update={"parallelism": parallelism})["update"]


@pytest.mark.parametrize("field", ["delay", "monitor"])
def test_update_delay_and_monitor_are_from_0_to_an_hour(field):
    assert validate(update={field: 0})["update"][field] == 0
    assert field in errors_of(update={field: -1})["update"]
    assert field in errors_of(update={field: 3601})["update"]


def test_it_refuses_a_null_update_policy():
    assert "update" in errors_of(update=None)


# merge


def current_spec():
    spec = validate(image="app:1", env={"A": "1"}, resources={"cpus": 1, "memory_bytes": 64 * MIB})
    return {key: spec[key] for key in SPEC_FIELDS}


def test_merge_replaces_a_plain_field():
    assert merge(current_spec(), {"image": "app:2"})["image"] == "app:2"


def test_merge_changes_the_update_policy_key_by_key():
    merged = merge(current_spec(), {"update": {"parallelism": 2}})
    assert merged["update"] == {**current_spec()["update"], "parallelism": 2}


def test_merge_changes_resources_key_by_key():
    merged = merge(current_spec(), {"resources": {"cpus": None}})
    assert merged["resources"] == {"cpus": None, "memory_bytes": 64 * MIB}


def test_merge_replaces_env_ports_and_healthcheck_whole():
    merged = merge(current_spec(), {"env": {"B": "2"}, "ports": [], "healthcheck": None})
    assert merged["env"] == {"B": "2"}
    assert merged["ports"] == []
    assert merged["healthcheck"] is None


def test_merge_leaves_the_current_spec_untouched():
    current = current_spec()
    merged = merge(current, {"update": {"parallelism": 2}})
    merged["env"]["B"] = "2"
    assert current == current_spec()


def test_a_merged_spec_validates_again():
    merged = merge(current_spec(), {"update": {"order": "stop-first"}})
    assert validate(**merged)["update"]["order"] == "stop-first"


def test_a_merge_that_breaks_the_policy_is_caught_by_validation():
    merged = merge(current_spec(), {"update": {"order": "sideways"}})
    assert "order" in errors_of(**merged)["update"]


# docker_healthcheck


def test_no_healthcheck_gives_none_to_docker():
    assert docker_healthcheck(None) is None


def test_docker_gets_the_healthcheck_in_nanoseconds():
    healthcheck = validate(healthcheck={"command": ["CMD", "true"], "timeout": 0.5})["healthcheck"]
    assert docker_healthcheck(healthcheck) == {
        "test": ["CMD", "true"],
        "interval": 5_000_000_000,
        "timeout": 500_000_000,
        "retries": 3,
        "start_period": 0,
    }


def test_nanoseconds_are_rounded_not_truncated():
    healthcheck = {"command": ["CMD", "true"], "interval": 1.001, "timeout": 3, "retries": 3}
    result = docker_healthcheck({**healthcheck, "start_period": 0})
    assert result["interval"] == 1_001_000_000
    assert type(result["interval"]) is int


def test_update_auto_takes_json_true_or_false_only():
    assert validate(update={"auto": True})["update"]["auto"] is True
    for value in ("true", 1, 0, "yes", [True], {"on": True}):
        assert errors_of(update={"auto": value})["update"]["auto"] == ["Must be a valid boolean."]
    assert errors_of(update={"auto": None})["update"]["auto"] == ["This field may not be null."]


def test_a_revision_stored_before_update_auto_compares_equal_to_it_off():
    from fleet.services.spec import comparable

    stored = {"image": "busybox", "secrets": {}, "update": {"parallelism": 1}}
    fresh = {"image": "busybox", "secrets": {}, "update": {"parallelism": 1, "auto": False}}
    assert comparable(stored) == comparable(fresh)
    assert comparable(stored) != comparable({**fresh, "update": {"parallelism": 1, "auto": True}})
