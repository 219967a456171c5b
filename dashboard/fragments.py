"""Each live object as data (the REST API's fields) and HTML (the fragment its page renders).

register() tells fleet.live how to render each kind; the dashboard's app calls it when ready.
"""

from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from fleet import live
from fleet.api.alert_serializers import DeliverySerializer, IncidentSerializer
from fleet.api.serializers import EventSerializer, NodeSerializer
from fleet.api.service_serializers import DeploymentSerializer, ReplicaSerializer, ServiceSerializer
from fleet.converge.containers import reservations
from fleet.ingress import status as ingress_status
from fleet.metrics.latest import node_usage, round_message
from fleet.models import Delivery, Deployment, Event, Incident, Node, Replica, Service
from fleet.services.image_updates import status_of


def with_reservations(nodes):
    """Nodes with what Fleet's replicas reserve there and, where sampled, what they use now,
    for the CPU and memory bars."""
    nodes = list(nodes)
    reserved = reservations([n.pk for n in nodes])
    used = node_usage([n.pk for n in nodes])
    for node in nodes:
        node.reserved_cpus, node.reserved_memory, node.replica_count = reserved.get(
            node.pk, (0.0, 0, 0)
        )
        node.used_cpus, node.used_memory = used.get(node.pk, (None, None))
    return nodes


# The overview's service tiles: each status counts under one of these.
SERVICE_GROUPS = {
    "running": "healthy",
    "degraded": "degraded",
    "failed": "failed",
    "paused": "failed",  # a rollout that failed and was paused
    "deploying": "deploying",
    "new": "deploying",
    "deleting": "deleting",
}


def _mark(state, health, slot, node):
    """One replica's mark in a strip, as the strip's template shows it."""
    title = f"slot {slot}: {state}" + (f", {health}" if health != "none" else "")
    title += f" on {node}" if node else ""
    return format_html('<i class="mark rep-{} health-{}" title="{}"></i>', state, health, title)


def with_strips(services):
    """Services with their replicas' marks in slot order (the strip) and their group.

    The marks are made here from plain rows, not rendered per replica by the template:
    at 1,000 replicas that loop was most of the overview's time.
    """
    services = list(services)
    rows = Replica.objects.filter(service__in=services).order_by("slot", "-deployment__revision")
    marks = {}
    for service_id, state, health, slot, node in rows.values_list(
        "service_id", "state", "health", "slot", "node__name"
    ):
        marks.setdefault(service_id, []).append(_mark(state, health, slot, node))
    for service in services:
        service.strip = mark_safe("".join(marks.get(service.pk, [])))  # noqa: S308 - escaped above
        service.group = SERVICE_GROUPS.get(service.status, "degraded")
    return services


def node(name):
    found = Node.objects.filter(name=name).first()
    if found is None:
        return None, ""
    with_reservations([found])
    html = render_to_string("dashboard/fragments/node_row.html", {"node": found})
    return NodeSerializer(found).data, html


def node_summary(name):
    found = Node.objects.filter(name=name).first()
    if found is None:
        return ""
    return render_to_string("dashboard/fragments/node_summary.html", {"node": found})


def service(name):
    found = Service.objects.filter(name=name).with_counts().first()
    if found is None:
        return None, ""
    with_strips([found])
    html = render_to_string("dashboard/fragments/service_row.html", {"service": found})
    return ServiceSerializer(found).data, html


def service_image(name):
    """The service page's image-updates card (its badge and buttons)."""
    found = Service.objects.filter(name=name).with_counts().first()
    if found is None:
        return ""
    context = {"service": found, "image": status_of(found)}
    return render_to_string("dashboard/fragments/image_update.html", context)


def service_ingress(name):
    found = Service.objects.select_related("current_deployment").filter(name=name).first()
    if found is None:
        return ""
    context = {"service": found, "ingress": ingress_status.of(found)}
    return render_to_string("dashboard/fragments/ingress.html", context)


def replica(pk):
    found = Replica.objects.select_related("service", "node", "deployment").filter(pk=pk).first()
    if found is None:
        return None, ""
    html = render_to_string("dashboard/fragments/replica.html", {"replica": found})
    data = {"id": found.pk, "service": found.service.name, **ReplicaSerializer(found).data}
    return data, html


def deployment(pk):
    found = Deployment.objects.select_related("service").filter(pk=pk).first()
    if found is None:
        return None, ""
    html = render_to_string("dashboard/fragments/deployment_row.html", {"deployment": found})
    return DeploymentSerializer(found).data, html


def event(pk):
    found = Event.objects.filter(pk=pk).first()
    if found is None:
        return None, ""
    html = render_to_string("dashboard/fragments/event_row.html", {"event": found})
    return EventSerializer(found).data, html


def open_incidents():
    """How many incidents are open (alerted, not yet resolved): the overview's alert tile."""
    return Incident.objects.filter(
        state__in=[Incident.State.OPEN, Incident.State.RESOLVING]
    ).count()


def incident(pk):
    found = Incident.objects.filter(pk=pk).first()
    if found is None or found.state == Incident.State.PENDING:
        return None, ""
    html = render_to_string("dashboard/fragments/incident_row.html", {"incident": found})
    return IncidentSerializer(found).data, html


def incidents_tile(key):
    count = open_incidents()
    html = render_to_string("dashboard/fragments/incidents_tile.html", {"incidents_open": count})
    return {"open": count}, html


def delivery(pk):
    found = Delivery.objects.select_related("alert", "channel").filter(pk=pk).first()
    if found is None:
        return None, ""
    html = render_to_string("dashboard/fragments/delivery_row.html", {"delivery": found})
    return DeliverySerializer(found).data, html


def register():
    """Tell fleet.live how the dashboard shows each kind of object."""
    live.register("node", node)
    live.register_view("node", "node-summary", node_summary)
    live.register("service", service)
    live.register_view("service", "service-image", service_image)
    live.register_view("service", "service-ingress", service_ingress)
    live.register("replica", replica)
    live.register("deployment", deployment)
    live.register("event", event)
    live.register("incident", incident)
    live.register("incidents", incidents_tile)
    live.register("delivery", delivery)
    live.register("metrics", round_message)  # data only: the charts draw it
