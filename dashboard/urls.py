"""Dashboard pages."""

from django.urls import path, register_converter

from dashboard import alerts, registries, views
from fleet.models.validation import NAME_IN_URL


class NameConverter:
    """A node or service name; a path that cannot be one is a 404 without a query."""

    regex = NAME_IN_URL

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(NameConverter, "name")
app_name = "dashboard"

urlpatterns = [
    path("", views.OverviewView.as_view(), name="overview"),
    path("events/", views.EventsView.as_view(), name="events"),
    path("alerts/", alerts.AlertsView.as_view(), name="alerts"),
    path("alerts/channels/", alerts.ChannelsView.as_view(), name="alert-channels"),
    path("alerts/channels/<int:pk>/", alerts.ChannelEditView.as_view(), name="alert-channel"),
    path(
        "alerts/channels/<int:pk>/test/",
        alerts.ChannelTestView.as_view(),
        name="alert-channel-test",
    ),
    path("registries/", registries.RegistriesView.as_view(), name="registries"),
    path("registries/<int:pk>/", registries.RegistryEditView.as_view(), name="registry"),
    path("nodes/<name:name>/", views.NodeDetailView.as_view(), name="node-detail"),
    path("services/<name:name>/", views.ServiceDetailView.as_view(), name="service-detail"),
    path(
        "nodes/<name:name>/availability/",
        views.NodeAvailabilityView.as_view(),
        name="node-availability",
    ),
]
