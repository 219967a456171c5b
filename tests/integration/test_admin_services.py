"""The admin panel for services: it acts through the same functions as the API."""

import json

import pytest

from fleet import services
from fleet.access import sealing
from fleet.models import Deployment, Event, EventKind, Service

pytestmark = pytest.mark.django_db

IMAGE = "10.250.8.1:5000/fleet/demo:1"


@pytest.fixture
def admin_client_(client, admin_user):
    client.force_login(admin_user)
    return client


def add(client, **fields):
    data = {"name": "web", "image": IMAGE, "replicas": "2", "options": "{}", **fields}
    return client.post("/admin/fleet/service/add/", data)


def test_adding_a_service_deploys_revision_1_as_the_admin(admin_client_):
    response = add(admin_client_, options='{"ports": [{"container": 80}]}')
    assert response.status_code == 302
    service = Service.objects.get()
    assert service.replicas == 2
    assert service.spec["ports"] == [{"container": 80, "published": None, "protocol": "tcp"}]
    event = Event.objects.get(kind=EventKind.SERVICE_CREATED)
    assert (event.actor, event.via) == ("root", "admin")


def test_a_bad_spec_shows_where_and_saves_nothing(admin_client_):
    response = add(admin_client_, options='{"update": {"order": "sideways"}}')
    assert response.status_code == 200
    assert "update.order" in response.content.decode()
    assert not Service.objects.exists()
    assert not Event.objects.exists()


def test_changing_the_image_makes_a_new_revision(admin_client_):
    add(admin_client_)
    service = Service.objects.get()
    admin_client_.post(
        f"/admin/fleet/service/{service.pk}/change/",
        {"image": "10.250.8.1:5000/fleet/demo:2", "replicas": "3", "options": "{}"},
    )
    service.refresh_from_db()
    assert (service.replicas, service.current_deployment.revision) == (3, 2)
    assert service.spec["image"].endswith("demo:2")


def test_scale_and_redeploy_actions(admin_client_):
    add(admin_client_)
    service = Service.objects.get()
    admin_client_.post(
        "/admin/fleet/service/", {"action": "scale_up", "_selected_action": [service.pk]}
    )
    admin_client_.post(
        "/admin/fleet/service/", {"action": "redeploy", "_selected_action": [service.pk]}
    )
    service.refresh_from_db()
    assert service.replicas == 3
    assert service.current_deployment.revision == 2
    assert service.current_deployment.spec == Deployment.objects.get(revision=1).spec


def test_deployments_and_replicas_are_read_only(admin_client_):
    add(admin_client_)
    deployment = Deployment.objects.get()
    page = admin_client_.get(f"/admin/fleet/deployment/{deployment.pk}/change/")
    assert page.status_code == 200
    assert IMAGE in page.content.decode()
    assert admin_client_.get("/admin/fleet/deployment/add/").status_code == 403
    assert admin_client_.get("/admin/fleet/replica/add/").status_code == 403
    assert admin_client_.get("/admin/fleet/replica/").status_code == 200


def loaded_form(client, service):
    """What the change page posts back when saved as loaded."""
    change = f"/admin/fleet/service/{service.pk}/change/"
    form = client.get(change).context["adminform"].form
    return change, {
        "name": service.name,
        "image": form.initial["image"],
        "replicas": str(service.replicas),
        "initial-replicas": str(service.replicas),
        "options": json.dumps(form.initial["options"]),
        "revision": str(form.initial["revision"]),
    }


def test_a_change_page_loaded_before_another_deploy_is_refused_and_changes_nothing(
    admin_client_,
):
    add(admin_client_)
    service = Service.objects.get()
    change, posted = loaded_form(admin_client_, service)
    # Meanwhile a secret is set elsewhere (the API, another admin).
    services.deploy_changes(service, {"secrets": {"TOKEN": "rotated"}})
    response = admin_client_.post(change, {**posted, "image": IMAGE[:-1] + "2"})
    assert response.status_code == 200
    assert "is at revision 2 now, not 1" in response.content.decode()
    assert Deployment.objects.count() == 2
    assert sealing.open_all(Service.objects.get().spec["secrets"]) == {"TOKEN": "rotated"}


def test_a_change_page_loaded_from_the_current_revision_deploys(admin_client_):
    add(admin_client_)
    service = Service.objects.get()
    change, posted = loaded_form(admin_client_, service)
    response = admin_client_.post(change, {**posted, "image": IMAGE[:-1] + "2"})
    assert response.status_code == 302
    assert Service.objects.get().current_deployment.revision == 2


def test_saving_a_page_with_its_count_untouched_keeps_a_scale_made_meanwhile(admin_client_):
    add(admin_client_)
    service = Service.objects.get()
    change, posted = loaded_form(admin_client_, service)
    services.scale(service, 5)  # elsewhere, after the page was loaded
    response = admin_client_.post(change, {**posted, "image": IMAGE[:-1] + "2"})
    assert response.status_code == 302
    service.refresh_from_db()
    assert (service.replicas, service.current_deployment.revision) == (5, 2)
    # A count the admin did change is applied.
    change, posted = loaded_form(admin_client_, service)
    assert admin_client_.post(change, {**posted, "replicas": "1"}).status_code == 302
    assert Service.objects.get().replicas == 1


def test_a_whole_spec_from_an_older_revision_is_refused_under_the_lock(admin_client_):
    add(admin_client_)
    service = Service.objects.get()
    spec = service.spec | {"name": "web", "replicas": 2}
    services.deploy_changes(service, {"env": {"A": "1"}})
    with pytest.raises(services.StaleSpec, match="revision 2 now, not 1"):
        services.deploy(service, spec | {"image": IMAGE[:-1] + "2"}, base_revision=1)
    assert Deployment.objects.count() == 2


def test_the_redeploy_action_redeploys_the_spec_as_it_is_now(admin_client_):
    add(admin_client_)
    service = Service.objects.get()
    services.deploy_changes(service, {"env": {"A": "1"}})
    admin_client_.post(
        "/admin/fleet/service/", {"action": "redeploy", "_selected_action": [service.pk]}
    )
    assert Service.objects.get().current_deployment.revision == 3
    assert Deployment.objects.get(revision=3).spec["env"] == {"A": "1"}
