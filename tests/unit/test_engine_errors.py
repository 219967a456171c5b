"""Engine errors read as short sentences an operator can act on."""

import docker.errors
import requests

from fleet.engine import describe


def raised_from(outer, inner):
    try:
        try:
            raise inner
        except Exception as exc:
            raise outer from exc
    except Exception as exc:
        return exc


def test_a_refused_connection_deep_in_the_chain_says_so():
    exc = raised_from(
        docker.errors.DockerException("Error while fetching server API version: ..."),
        raised_from(
            requests.exceptions.ConnectionError("pool"),
            ConnectionRefusedError(111, "Connection refused"),
        ),
    )
    assert describe(exc) == "cannot connect: Connection refused"


def test_a_timeout_names_the_limit():
    assert describe(requests.exceptions.ReadTimeout("read"), timeout=3) == "no answer within 3 s"


def test_an_engine_refusal_carries_its_explanation():
    response = requests.Response()
    response.status_code = 500
    exc = docker.errors.APIError("500 Server Error", response=response, explanation="no space left")
    assert describe(exc) == "engine refused: no space left"


def test_silence_is_unreachable_and_a_refusal_is_not():
    from fleet.engine import EngineError, EngineUnreachable, failure

    refused = raised_from(
        docker.errors.DockerException("fetching"),
        requests.exceptions.ConnectionError("Connection refused"),
    )
    assert isinstance(failure(refused), EngineUnreachable)
    assert isinstance(failure(requests.exceptions.ReadTimeout("read"), 60), EngineUnreachable)
    response = requests.Response()
    response.status_code = 404
    missing = docker.errors.ImageNotFound("404", response=response, explanation="no such image")
    error = failure(missing)
    assert type(error) is EngineError
    assert str(error) == "engine refused: no such image"
