"""The admin panel for metric thresholds: rules on a service or a node, validated as in the API."""

from django.contrib import admin

from fleet.models import MetricThreshold


@admin.register(MetricThreshold)
class MetricThresholdAdmin(admin.ModelAdmin):
    """A rule's subject, metric, level and minutes; whether it holds now is read-only."""

    list_display = ["__str__", "metric", "above", "minutes", "enabled", "exceeded_since"]
    list_filter = ["metric", "enabled"]
    fields = ["service", "node", "metric", "above", "minutes", "enabled", "exceeded_since"]
    readonly_fields = ["exceeded_since", "last_value"]
    list_select_related = ["service", "node"]
