"""What a console may be asked to run: the command as typed, split as a shell would."""

import pytest

from fleet.console.sessions import DEFAULT_COMMAND, MAX_COMMAND, ConsoleRefused, parse_command


@pytest.mark.parametrize("empty", [None, ""])
def test_no_command_means_the_default_shell(empty):
    assert parse_command(empty) == [DEFAULT_COMMAND]


def test_a_typed_command_is_split_like_a_shell_would():
    assert parse_command("sh -c 'echo a b'") == ["sh", "-c", "echo a b"]


@pytest.mark.parametrize(
    "bad, why",
    [
        ("x" * (MAX_COMMAND + 1), "at most 512 characters"),
        ("sh\x00-c", "without NUL"),
        ("sh -c 'unclosed", "cannot read the command"),
        ("   ", "the command is empty"),
        (["sh"], "must be text"),
    ],
)
def test_an_unusable_command_is_refused_with_the_reason(bad, why):
    with pytest.raises(ConsoleRefused, match=why):
        parse_command(bad)
