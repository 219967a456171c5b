"""An engine's events stream, decoded and checked: a garbled line is reported, never acted
on, and never ends the stream."""

import json

import pytest

from fleet.engine.events import LONGEST_EVENT, GarbledEvent, decoded, problem_of

ID = "0123456789abcdef" * 4


def event(**changes):
    good = {
        "Type": "container",
        "Action": "start",
        "status": "start",
        "id": ID,
        "Actor": {"ID": ID, "Attributes": {"fleet.replica": "7"}},
        "time": 1_765_000_000,
        "timeNano": 1_765_000_000_123_456_789,
    }
    return {**good, **changes}


def line(value):
    return json.dumps(value).encode() + b"\n"


def test_a_well_formed_event_passes_even_split_across_chunks():
    text = line(event()) + line(event(Action="die"))
    chunks = [text[:10], text[10:150], text[150:]]
    assert [e["Action"] for e in decoded(chunks)] == ["start", "die"]


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"timeNano": "1765000000123456789"}, "timeNano is not a time"),
        ({"timeNano": -1}, "timeNano is not a time"),
        ({"timeNano": 2**64}, "timeNano is not a time"),
        ({"timeNano": True}, "timeNano is not a time"),
        ({"time": 1.5}, "time is not a time"),
        ({"id": "abc;shutdown sessions", "Actor": {"Attributes": {}}}, "container id"),
        ({"Actor": {"ID": ID.upper(), "Attributes": {}}}, "container id"),
        ({"Actor": {"ID": ID, "Attributes": {"fleet.replica": 7}}}, "map of strings"),
        ({"Actor": ["x"]}, "Actor is not an object"),
        ({"Action": ["start"]}, "Action is not a string"),
        ({"Type": "network"}, "not a container event"),
    ],
)
def test_a_garbled_field_makes_a_garbled_event(changes, reason):
    assert reason in problem_of(event(**changes))


def test_a_line_that_is_not_json_is_garbled_and_the_next_one_still_comes():
    found = list(decoded([b'{"Action": "st\n', line(event()), b"[1, 2]\n"]))
    assert isinstance(found[0], GarbledEvent) and found[0].reason == "not JSON"
    assert found[1]["Action"] == "start"
    assert isinstance(found[2], GarbledEvent) and found[2].reason == "not a JSON object"


def test_an_endless_line_is_cut_off_once_and_memory_stays_bounded():
    flood = [b"x" * 8192] * ((LONGEST_EVENT // 8192) * 4)
    found = list(decoded([*flood, b"tail of the flood\n", line(event())]))
    assert len(found) == 2
    assert isinstance(found[0], GarbledEvent) and "longer than" in found[0].reason
    assert len(found[0].line) <= LONGEST_EVENT + 8192
    assert found[1]["Action"] == "start"


def test_the_same_garbled_line_has_the_same_key_and_shows_shortened():
    first, again = (next(decoded([b"z" * 500 + b"\n"])) for _ in range(2))
    assert first.key == again.key
    assert len(str(first)) < 300 and str(first).endswith("...")
