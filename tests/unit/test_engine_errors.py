"""Engine errors read as short sentences an operator can act on."""

import docker.errors
import requests

from fleet.engine.client import describe


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
    from fleet.engine.client import EngineError, EngineUnreachable, failure

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


def test_pull_errors_name_the_image_and_what_went_wrong():
    from fleet.engine.errors import (
        PULL_NOT_FOUND,
        PULL_OTHER,
        PULL_UNAUTHORIZED,
        PULL_UNREACHABLE,
        pull_failure,
    )

    image = "10.250.8.1:5001/team/app:3"
    cases = {
        'Get "http://10.250.8.1:5001/v2/": dial tcp 10.250.8.1:5001: connect: connection refused': (
            PULL_UNREACHABLE,
            "registry 10.250.8.1:5001 cannot be reached",
        ),
        "Get https://10.250.8.1:5001/v2/: net/http: request canceled while waiting": (
            PULL_UNREACHABLE,
            "cannot be reached",
        ),
        "manifest for 10.250.8.1:5001/team/app:3 not found: manifest unknown": (
            PULL_NOT_FOUND,
            "registry 10.250.8.1:5001 does not have it",
        ),
        "unauthorized: authentication required": (PULL_UNAUTHORIZED, "refused access"),
        # What Docker 20.10 and 28 say when the registry answers 401 to a pull with no login.
        'Head "https://10.250.8.1:5443/v2/fleet/private/manifests/1": no basic auth credentials': (
            PULL_UNAUTHORIZED,
            "registry 10.250.8.1:5001 refused access (check its credentials)",
        ),
        "denied: requested access to the resource is denied": (PULL_UNAUTHORIZED, "refused"),
        "write /var/lib/docker/tmp: no space left on device": (PULL_OTHER, "the pull failed"),
    }
    for detail, (reason, summary) in cases.items():
        error = pull_failure(image, detail)
        assert error.reason == reason, detail
        assert str(error).startswith(f"cannot pull {image}: "), error
        assert summary in str(error), error
        assert detail in str(error)


def test_a_pull_error_is_the_service_s_problem_not_the_node_s():
    from fleet.engine.errors import EngineError, EngineUnreachable, pull_failure, registry_of

    error = pull_failure("busybox:1", "dial tcp: lookup registry-1.docker.io: no such host")
    assert isinstance(error, EngineError) and not isinstance(error, EngineUnreachable)
    assert "registry docker.io" in str(error)
    assert registry_of("localhost/app") == "localhost"
    assert registry_of("team/app:1") == "docker.io"
