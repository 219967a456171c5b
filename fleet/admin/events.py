"""The event log in the admin: read-only, filtered by the same rules as the API and the pages."""

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters

from fleet.admin.base import ReadOnlyAdmin
from fleet.api.filters import EventFilter
from fleet.models import Event, EventKind


def event_list_filter(name, title, choices=None):
    """An admin list filter that applies EventFilter's `name`: the same rule as the API and page."""

    class Filter(admin.SimpleListFilter):
        parameter_name = name

        def lookups(self, request, model_admin):
            if choices is not None:
                return choices
            field = EventFilter.base_filters[name].field_name
            values = Event.objects.order_by(field).values_list(field, flat=True).distinct()
            return [(value, value) for value in values if value]

        def queryset(self, request, queryset):
            if self.value() is None:
                return queryset
            filters = EventFilter({name: self.value()}, queryset=queryset)
            if not filters.is_valid():
                raise IncorrectLookupParameters(filters.errors)
            return filters.qs

    Filter.title = title
    return Filter


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "kind",
        "service_name",
        "node_name",
        "old",
        "new",
        "actor",
        "via",
        "address",
        "reason",
    ]
    list_filter = [
        event_list_filter("kind", "kind", EventKind.choices),
        event_list_filter("service", "service"),
        event_list_filter("node", "node"),
        event_list_filter("actor", "actor"),
    ]
    search_fields = ["service_name", "node_name", "reason", "actor"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
