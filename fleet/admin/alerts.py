"""Alerts in the admin: channels for admins (their URL never shown, only replaced), and the
incidents, alerts and deliveries Fleet records, read-only."""

from django import forms
from django.contrib import admin, messages

from fleet.admin.base import ReadOnlyAdmin
from fleet.alerts import channels, delivery
from fleet.models import Actor, Alert, AlertChannel, Delivery, Incident
from fleet.models.alerts import Topic


class AlertChannelForm(forms.ModelForm):
    """The URL field starts empty on an existing channel: empty keeps the stored URL."""

    url = forms.CharField(
        label="Apprise URL",
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "size": 80}),
    )
    events = forms.MultipleChoiceField(
        choices=Topic.choices, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = AlertChannel
        fields = ["name", "url", "events", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["url"] = ""
        if self.instance.pk:
            self.fields[
                "url"
            ].help_text = (
                f"Stored: {self.instance.redacted_url} (never shown whole). Leave empty to keep it."
            )

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        if not url and self.instance.pk:
            return AlertChannel.objects.get(pk=self.instance.pk).url
        return channels.clean_url(url)

    def clean_events(self):
        return channels.clean_events(list(self.cleaned_data["events"]))


@admin.register(AlertChannel)
class AlertChannelAdmin(admin.ModelAdmin):
    form = AlertChannelForm
    list_display = ["name", "redacted_url", "events", "enabled", "updated_at"]
    list_filter = ["enabled"]
    search_fields = ["name"]
    actions = ["send_test"]

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if self.has_change_permission(request, obj):
            return fields
        # Read-only, the admin would print every field's value: the URL shows redacted.
        return [("redacted_url" if f == "url" else f) for f in fields]

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        return readonly if self.has_change_permission(request, obj) else [*readonly, "redacted_url"]

    @admin.display(description="URL (redacted)")
    def redacted_url(self, channel):
        return channel.redacted_url

    def save_model(self, request, obj, form, change):
        actor = Actor.of_request(request, "admin")
        if not change:
            channels.create(obj, actor)
            return
        stored = AlertChannel.objects.get(pk=obj.pk)
        changes = {field: form.cleaned_data[field] for field in form.changed_data}
        channels.update(stored, changes, actor)

    def delete_model(self, request, obj):
        channels.delete(obj, Actor.of_request(request, "admin"))

    def delete_queryset(self, request, queryset):
        for channel in queryset:
            channels.delete(channel, Actor.of_request(request, "admin"))

    @admin.action(description="Send a test message", permissions=["change"])
    def send_test(self, request, queryset):
        for channel in queryset:
            row = delivery.send_test(channel)
            if row.outcome == Delivery.Outcome.SENT:
                self.message_user(request, f"Test message sent to {channel.name}.")
            else:
                level = messages.ERROR
                self.message_user(request, f"{channel.name}: test failed: {row.error}", level)


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = ["opened_at", "kind", "subject", "state", "occurrences", "resolved_at"]
    list_filter = ["state", "kind"]
    search_fields = ["subject", "summary"]
    ordering = ["-opened_at", "-id"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "phase", "title", "incident"]
    list_filter = ["phase"]
    search_fields = ["title"]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "channel", "alert", "attempt", "outcome", "final", "error"]
    list_filter = ["outcome", "channel"]
    list_select_related = ["channel", "alert"]
