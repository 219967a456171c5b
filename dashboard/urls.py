"""Dashboard pages."""

from django.urls import path, register_converter

from fleet.validation import NAME_IN_URL

from . import views


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
    path("nodes/<name:name>/", views.NodeDetailView.as_view(), name="node-detail"),
    path("services/<name:name>/", views.ServiceDetailView.as_view(), name="service-detail"),
    path(
        "nodes/<name:name>/availability/",
        views.NodeAvailabilityView.as_view(),
        name="node-availability",
    ),
]
