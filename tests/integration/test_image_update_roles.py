"""Who may see and act on image updates: viewers read the check, operators ask and deploy."""

import pytest

from fleet.models import Deployment, ImageCheck, Service
from fleet.services.spec import ServiceSpecSerializer
from tests.conftest import api_for

pytestmark = pytest.mark.django_db

REPO = "10.250.7.1:5000/fleet/demo"
NEW = "sha256:" + "b" * 64


@pytest.fixture
def web(db):
    """A service whose last check found a newer digest of its tag."""
    spec = ServiceSpecSerializer(data={"name": "web", "image": f"{REPO}:1"})
    spec.is_valid(raise_exception=True)
    fields = {k: v for k, v in spec.validated_data.items() if k not in ("name", "replicas")}
    service = Service.objects.create(name="web", replicas=1)
    service.current_deployment = Deployment.objects.create(service=service, revision=1, spec=fields)
    service.save()
    ImageCheck.objects.create(
        service=service, image=f"{REPO}:1", outcome="update_available", update_digest=NEW
    )
    return service


def test_a_viewer_sees_the_update_but_may_neither_check_nor_deploy_it(viewer, web):
    api = api_for(viewer)
    seen = api.get("/api/services/web/image-check").json()
    assert (seen["outcome"], seen["update_available"], seen["update_digest"]) == (
        "update_available",
        True,
        NEW,
    )
    assert api.get("/api/services/web/").json()["image_update"]["update_short"] == NEW[:19]
    assert api.post("/api/services/web/image-check").status_code == 403
    assert api.post("/api/services/web/image-update").status_code == 403
    assert ImageCheck.objects.get().requested_at is None
    assert Deployment.objects.count() == 1


def test_an_operator_asks_for_a_check_and_deploys_the_update_pinned(operator, web):
    api = api_for(operator)
    asked = api.post("/api/services/web/image-check")
    assert asked.status_code == 202
    assert asked.json()["requested_at"] is not None
    deployed = api.post("/api/services/web/image-update", {"digest": NEW}, format="json")
    assert deployed.status_code == 202, deployed.json()
    assert deployed.json()["spec"]["image"] == f"{REPO}:1@{NEW}"
    assert deployed.json()["actor"] == "operator"
    # Pinned now: the update is no longer on offer, and a second click has nothing to do.
    assert api.get("/api/services/web/image-check").json()["update_available"] is False
    assert api.post("/api/services/web/image-update").status_code == 409


def test_anonymous_requests_get_401(anon_api, web):
    assert anon_api.get("/api/services/web/image-check").status_code == 401
    assert anon_api.post("/api/services/web/image-update").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_asking_for_a_check_refreshes_the_card_on_the_service_page_live(
    admin_user, web, redis_server
):
    from fleet.services import image_updates
    from tests.conftest import token_for
    from tests.integration.test_live import ORIGIN, auth, connect, in_thread, run

    key = token_for(admin_user)

    async def scenario():
        socket, _, _ = await connect(ORIGIN, auth(key))
        await socket.receive_json_from(timeout=5)  # the snapshot
        await in_thread(image_updates.request_check)(web)
        changed = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return changed

    changed = run(scenario)
    assert (changed["type"], changed["id"]) == ("service", "web")
    assert changed["data"]["image_update"]["requested_at"] is not None
    card = changed["views"]["service-image"]
    assert 'data-live="service-image"' in card and "checking…" in card
    assert "Update available" in card and 'data-act="image-update"' in card
