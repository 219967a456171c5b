"""The admin panel: nodes with operator actions, and the read-only event log."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.template.defaultfilters import filesizeformat
from django.urls import reverse_lazy

from fleet import nodes
from fleet.filters import EventFilter
from fleet.models import Actor, Event, EventKind, Node
from fleet.validation import validate_labels

# Fleet's admin, not Django's: its name on every page, and "View site" leads to the dashboard.
admin.site.site_header = "Fleet admin"
admin.site.site_title = "Fleet admin"
admin.site.index_title = "Nodes, services, events and users"
admin.site.site_url = reverse_lazy("dashboard:overview")


class NodeForm(forms.ModelForm):
    """Node form whose TLS key is write-only: left blank, the stored key is kept."""

    tls_key = forms.CharField(
        label="TLS client key",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Never shown. Leave blank to keep the stored key.",
    )

    class Meta:
        model = Node
        fields = ["name", "endpoint", "labels", "availability", "tls_ca", "tls_cert", "tls_key"]

    def clean_tls_key(self):
        value = self.cleaned_data.get("tls_key")
        return value or (self.instance.tls_key if self.instance.pk else "")

    def clean_labels(self):
        # An emptied box (or "null") means no labels; the column itself may not be null.
        # Checked here because the model's validators skip "empty" values such as [].
        value = self.cleaned_data.get("labels")
        if value is None:
            return {}
        validate_labels(value)
        return value

    def clean_name(self):
        name = self.cleaned_data["name"]
        if self.instance.pk and name != self.instance.name:
            raise forms.ValidationError("A node's name cannot be changed.")
        return name


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    form = NodeForm
    list_display = [
        "name",
        "status",
        "transport",
        "availability",
        "engine_version",
        "cpus",
        "memory",
        "containers_running",
        "last_seen_at",
        "labels",
    ]
    list_filter = ["status", "availability"]
    search_fields = ["name", "endpoint"]
    readonly_fields = [
        "status",
        "transport",
        "engine_version",
        "cpus",
        "memory",
        "containers_running",
        "last_seen_at",
        "last_error",
        "failures",
    ]
    actions = ["drain", "activate", "release_hold", "check_now"]

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if self.has_change_permission(request, obj):
            return fields
        # Read-only, the admin would print every field's value: the key shows as set or not.
        return [("tls_key_set" if f == "tls_key" else f) for f in fields]

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        return readonly if self.has_change_permission(request, obj) else [*readonly, "tls_key_set"]

    @admin.display(description="transport")
    def transport(self, node):
        if node.insecure:
            return "insecure: plain TCP"
        return "TLS" if node.uses_tls else node.endpoint.split(":", 1)[0]

    @admin.display(description="TLS client key")
    def tls_key_set(self, node):
        return "set (never shown)" if node.tls_key else "—"

    @admin.display(description="memory", ordering="memory_bytes")
    def memory(self, node):
        return filesizeformat(node.memory_bytes) if node.memory_bytes else "-"

    def save_model(self, request, obj, form, change):
        if not change:
            nodes.register(obj, Actor.of_request(request, "admin"))
            return
        stored = Node.objects.get(pk=obj.pk)
        changes = {field: form.cleaned_data[field] for field in form.changed_data}
        nodes.update(stored, changes, Actor.of_request(request, "admin"))

    def delete_model(self, request, obj):
        nodes.remove(obj, Actor.of_request(request, "admin"))

    def delete_queryset(self, request, queryset):
        for node in queryset:
            nodes.remove(node, Actor.of_request(request, "admin"))

    def _set_availability(self, request, queryset, availability):
        for node in queryset:
            nodes.set_availability(node, availability, Actor.of_request(request, "admin"))
        self.message_user(request, f"{queryset.count()} node(s) set to {availability}.")

    @admin.action(description="Drain selected nodes", permissions=["change"])
    def drain(self, request, queryset):
        self._set_availability(request, queryset, Node.Availability.DRAIN)

    @admin.action(description="Activate selected nodes", permissions=["change"])
    def activate(self, request, queryset):
        self._set_availability(request, queryset, Node.Availability.ACTIVE)

    @admin.action(description="Lift the hold-down of selected nodes", permissions=["change"])
    def release_hold(self, request, queryset):
        lifted = []
        for node in queryset:
            try:
                lifted.append(nodes.release_hold(node, Actor.of_request(request, "admin")).name)
            except nodes.NotHeld as exc:
                self.message_user(request, str(exc), level=messages.WARNING)
        if lifted:
            self.message_user(request, f"Hold lifted: {', '.join(lifted)}.", messages.SUCCESS)

    @admin.action(description="Check selected nodes now", permissions=["change"])
    def check_now(self, request, queryset):
        nodes.request_check(queryset)
        self.message_user(
            request, f"Check queued for {queryset.count()} node(s).", level=messages.INFO
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records written only by Fleet itself: shown, never added, changed or deleted."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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


# Services, deployments and replicas register themselves in their own module; so do alerts,
# metric thresholds and webhooks.
from fleet import admin_alerts, admin_metrics, admin_services, admin_users, admin_webhooks  # noqa: E402, F401
