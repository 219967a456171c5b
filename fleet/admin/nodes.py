"""Nodes in the admin, with operator actions (drain, activate, lift a hold, check now)."""

from django import forms
from django.contrib import admin, messages
from django.template.defaultfilters import filesizeformat

from fleet import nodes
from fleet.models import Actor, Node
from fleet.models.nodes import HOST_FACTS
from fleet.models.validation import validate_labels

# Keys that are written and never shown: each field's name and label.
WRITE_ONLY = {"tls_key": "TLS client key", "ssh_key": "SSH private key"}


def _write_only(label):
    return forms.CharField(
        label=label,
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Never shown. Leave blank to keep the stored key.",
    )


class NodeForm(forms.ModelForm):
    """Node form whose private keys are write-only: left blank, the stored key is kept."""

    tls_key = _write_only(WRITE_ONLY["tls_key"])
    ssh_key = _write_only(WRITE_ONLY["ssh_key"])

    class Meta:
        model = Node
        fields = [
            "name",
            "endpoint",
            "labels",
            "availability",
            "tls_ca",
            "tls_cert",
            "tls_key",
            "ssh_key",
            "ssh_host_key",
        ]

    def _kept(self, field):
        value = self.cleaned_data.get(field)
        return value or (getattr(self.instance, field) if self.instance.pk else "")

    def clean_tls_key(self):
        return self._kept("tls_key")

    def clean_ssh_key(self):
        return self._kept("ssh_key")

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
        "api_version",
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
        "api_version",
        *HOST_FACTS,
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
        # Read-only, the admin would print every field's value: a key shows as set or not.
        return [(f"{f}_set" if f in WRITE_ONLY else f) for f in fields]

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if self.has_change_permission(request, obj):
            return readonly
        return [*readonly, *(f"{f}_set" for f in WRITE_ONLY)]

    @admin.display(description="transport")
    def transport(self, node):
        if node.insecure:
            return "insecure: plain TCP"
        return "TLS" if node.uses_tls else node.endpoint.split(":", 1)[0]

    @admin.display(description=WRITE_ONLY["tls_key"])
    def tls_key_set(self, node):
        return "set (never shown)" if node.tls_key else "—"

    @admin.display(description=WRITE_ONLY["ssh_key"])
    def ssh_key_set(self, node):
        return "set (never shown)" if node.ssh_key else "—"

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
