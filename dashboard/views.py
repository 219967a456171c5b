"""Dashboard views: complete pages on a plain GET, built from the same fragments a push will use."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect
from django.views import View
from django.views.generic import DetailView, TemplateView

from dashboard import fragments, overview
from dashboard.fragments import with_reservations, with_strips
from fleet import nodes
from fleet.access.roles import READ_FLEET
from fleet.api.filters import EventFilter
from fleet.ingress import status as ingress_status
from fleet.models import Actor, Event, Node, Service
from fleet.services.image_updates import status_of

RECENT_EVENTS = 20  # lines of a feed, repeats folded
# The usage charts' ranges (seconds, label); the first is shown on a plain GET.
USAGE_RANGES = [
    (3600, "1 h"),
    (6 * 3600, "6 h"),
    (86400, "24 h"),
    (7 * 86400, "7 d"),
    (30 * 86400, "30 d"),
]


class FleetReadMixin(LoginRequiredMixin, PermissionRequiredMixin):
    """A page any role may read; a user without a role gets a 403 that says why."""

    permission_required = READ_FLEET


class OverviewView(FleetReadMixin, TemplateView):
    """The fleet's health at a glance, every node and service, and what happened lately.

    The tables are filtered by the query (?node_status=down, ?service_q=web ...): rows
    that do not match are hidden, not left out, so that the tiles count them all and
    the page's script can filter again as things change.
    """

    template_name = "dashboard/overview.html"

    def get_context_data(self, **kwargs):
        nodes = with_reservations(Node.objects.all())
        services = with_strips(Service.objects.with_counts())
        query = self.request.GET
        node_filter = overview.Filter(query, "node")
        service_filter = overview.Filter(query, "service")
        for node in nodes:
            node.hidden = not node_filter.matches(
                node.name, overview.node_states(node), node.labels
            )
        for service in services:
            states = (service.status, service.group)
            service.hidden = not service_filter.matches(service.name, states, {})
        return super().get_context_data(
            can_change=self.request.user.has_perm("fleet.add_service"),
            max_replicas=settings.FLEET_MAX_REPLICAS,
            default_image=settings.FLEET_DEFAULT_IMAGE,
            nodes=nodes,
            services=services,
            glance=overview.glance(nodes, services),
            node_filter=node_filter,
            service_filter=service_filter,
            events=Event.objects.folded(RECENT_EVENTS),
            incidents_open=fragments.open_incidents(),
            **kwargs,
        )


class NodeDetailView(FleetReadMixin, DetailView):
    """One node: its engine, its labels, its history."""

    template_name = "dashboard/node_detail.html"
    model = Node
    slug_field = "name"
    slug_url_kwarg = "name"
    context_object_name = "node"

    def get_context_data(self, **kwargs):
        with_reservations([self.object])
        events = Event.objects.filter(node_name=self.object.name).folded(RECENT_EVENTS)
        replicas = self.object.replica_set.select_related("service", "deployment", "node")
        return super().get_context_data(
            events=events,
            replicas=replicas.order_by("service__name", "slot"),
            availabilities=Node.Availability.choices,
            usage_ranges=USAGE_RANGES,
            can_change=self.request.user.has_perm("fleet.change_node"),
            **kwargs,
        )


class NodeAvailabilityView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """Drain, pause or activate a node from its page."""

    permission_required = "fleet.change_node"

    def post(self, request, name):
        node = get_object_or_404(Node, name=name)
        availability = request.POST.get("availability", "")
        if availability not in Node.Availability.values:
            messages.error(request, f"Unknown availability {availability!r}; nothing changed.")
        else:
            nodes.set_availability(node, availability, Actor.of_request(request, "web"))
            messages.success(request, f"{node.name} is now {availability}.")
        return redirect("dashboard:node-detail", name=node.name)


class ServiceDetailView(FleetReadMixin, DetailView):
    """One service: its replicas by node, its revisions, its history."""

    template_name = "dashboard/service_detail.html"
    slug_field = "name"
    slug_url_kwarg = "name"
    context_object_name = "service"

    def get_queryset(self):
        return Service.objects.with_counts()

    def get_context_data(self, **kwargs):
        service = self.object
        with_strips([service])
        replicas = service.replica_set.select_related("node", "deployment", "service")
        every_node = list(Node.objects.all())
        columns = {node.name: [] for node in every_node}
        insecure = {node.name for node in every_node if node.insecure}
        for replica in replicas.order_by("slot"):
            columns.setdefault(replica.node.name if replica.node else "", []).append(replica)
        return super().get_context_data(
            columns=[
                {"name": name, "replicas": rows, "insecure": name in insecure}
                for name, rows in columns.items()
            ],
            max_replicas=settings.FLEET_MAX_REPLICAS,
            can_change=self.request.user.has_perm("fleet.change_service"),
            deployments=service.deployments.all()[:20],
            image=status_of(service),
            usage_ranges=USAGE_RANGES,
            events=Event.objects.filter(service_name=service.name).folded(RECENT_EVENTS),
            ingress=ingress_status.of(service),
            **kwargs,
        )


class EventsView(FleetReadMixin, TemplateView):
    """The audit trail: every event, filtered by who, which node or service, what and when."""

    template_name = "dashboard/events.html"
    per_page = 100

    def get_context_data(self, **kwargs):
        data = {key: value for key, value in self.request.GET.items() if value and key != "page"}
        filters = EventFilter(data, queryset=Event.objects.all())
        valid = filters.is_valid()
        page = Paginator(filters.qs if valid else Event.objects.none(), self.per_page)
        page = page.get_page(self.request.GET.get("page"))
        # Everyone who did something, and the one asked for even before they have.
        actors = set(Event.objects.order_by().values_list("actor", flat=True).distinct())
        actors = sorted(actors | ({data["actor"]} if "actor" in data else set()))
        return super().get_context_data(
            filters=filters,
            valid=valid,
            page=page,
            events=page.object_list,
            query=urlencode(data),
            limit=self.per_page,
            applied=data,
            # New events join the newest page live only while they could match: no end time.
            live=valid and "until" not in data and page.number == 1,
            actors=actors,
            **kwargs,
        )
