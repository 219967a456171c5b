"""The Engine API version Fleet speaks with an engine (fleet/engine/versions.py)."""

import pytest

from fleet.engine import EngineError
from fleet.engine.versions import NEWEST, OLDEST, EngineTooOld, parse, spoken


@pytest.mark.parametrize(
    ("engine", "speaks"),
    [
        ("1.41", "1.41"),  # Docker 20.10: its own
        ("1.43", "1.43"),  # Docker 24
        ("1.45", "1.45"),  # Docker 26: Fleet's newest
        ("1.51", NEWEST),  # Docker 28: capped at what Fleet knows
        ("1.52", NEWEST),  # Docker 29, which refuses anything below 1.44
        ("1.100", NEWEST),  # a future engine: compared as numbers, not strings
    ],
)
def test_fleet_speaks_the_lower_of_the_engine_s_version_and_its_newest(engine, speaks):
    assert spoken(engine) == speaks


def test_fleet_s_newest_is_one_docker_29_accepts():
    assert parse(NEWEST) >= (1, 44)
    assert parse(OLDEST) <= parse(NEWEST)


@pytest.mark.parametrize("engine", ["1.40", "1.24", "1.9"])
def test_an_engine_older_than_fleet_s_oldest_is_refused_with_what_to_do(engine):
    with pytest.raises(EngineTooOld) as refused:
        spoken(engine)
    message = str(refused.value)
    assert engine in message and OLDEST in message and "Docker 20.10" in message
    assert "upgrade Docker" in message


@pytest.mark.parametrize("header", [None, "", "2.0", "1.", "v1.41", "1.41; drop table", "x" * 500])
def test_a_missing_or_garbled_version_is_an_engine_error_not_a_crash(header):
    with pytest.raises(EngineError) as refused:
        spoken(header)
    assert not isinstance(refused.value, EngineTooOld)
    assert "Api-Version" in str(refused.value)
    assert len(str(refused.value)) < 200
