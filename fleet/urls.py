"""Top-level URLs: the dashboard at /, the admin at /admin/, the API at /api/ (and
Prometheus' scrape at /metrics)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from fleet.api.hooks import DeployHook
from fleet.api.prometheus import PrometheusMetricsView

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("fleet.api.urls")),
    # Anything after the prefix reaches the view, which never logs it: it may be a secret.
    re_path(r"^hooks/deploy/(?P<secret>.*)$", DeployHook.as_view(), name="hook-deploy"),
    path("metrics", PrometheusMetricsView.as_view(), name="prometheus-metrics"),
    path("", include("dashboard.urls")),
]
