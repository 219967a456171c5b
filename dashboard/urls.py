"""Dashboard pages."""

from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.OverviewView.as_view(), name="overview"),
    path("nodes/<str:name>/", views.NodeDetailView.as_view(), name="node-detail"),
    path("services/<str:name>/", views.ServiceDetailView.as_view(), name="service-detail"),
    path(
        "nodes/<str:name>/availability/",
        views.NodeAvailabilityView.as_view(),
        name="node-availability",
    ),
]
