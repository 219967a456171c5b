"""The alerts pages: incidents and deliveries for every role, channels for admins.

A channel's URL is never put on a page: its redacted form is shown, and the edit
form leaves the URL field empty ("leave empty to keep").
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.views import View
from django.views.generic import TemplateView

from dashboard.views import FleetReadMixin
from fleet.alerts import channels, delivery
from fleet.models import Actor, AlertChannel, Delivery, Incident
from fleet.models.alerts import Topic, default_topics

READ_ALERTS = ("fleet.view_incident", "fleet.view_delivery", "fleet.view_alertchannel")
RECENT = 50


def live_incidents():
    return Incident.objects.exclude(state__in=[Incident.State.RESOLVED, Incident.State.PENDING])


class AlertsView(FleetReadMixin, TemplateView):
    """Incidents open and lately resolved, every delivery attempt, and where alerts go."""

    template_name = "dashboard/alerts.html"
    permission_required = READ_ALERTS

    def get_context_data(self, **kwargs):
        resolved = Incident.objects.filter(state=Incident.State.RESOLVED)
        return super().get_context_data(
            open_incidents=live_incidents().order_by("-opened_at", "-id"),
            resolved_incidents=resolved.order_by("-resolved_at", "-id")[:RECENT],
            deliveries=Delivery.objects.select_related("alert", "channel")[:RECENT],
            channels=AlertChannel.objects.all(),
            can_manage=self.request.user.has_perm("fleet.change_alertchannel"),
            recent=RECENT,
            **kwargs,
        )


class ChannelForm(forms.Form):
    """A channel as the page edits it; an empty URL on an existing channel keeps it."""

    name = forms.CharField(max_length=63)
    url = forms.CharField(
        label="Apprise URL",
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    events = forms.MultipleChoiceField(
        choices=Topic.choices, widget=forms.CheckboxSelectMultiple, required=False
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, channel=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.channel = channel
        if channel is None:
            self.fields["url"].required = True
            self.fields["events"].initial = default_topics()
        else:
            self.fields[
                "url"
            ].help_text = f"Stored: {channel.redacted_url}. Leave empty to keep it."

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        taken = AlertChannel.objects.filter(name=name)
        if self.channel is not None:
            taken = taken.exclude(pk=self.channel.pk)
        if taken.exists():
            raise ValidationError(f"A channel named {name!r} exists already.")
        return name

    def clean_url(self):
        url = self.cleaned_data["url"].strip()
        if not url and self.channel is not None:
            return None  # keep the stored one
        return channels.clean_url(url)

    def clean_events(self):
        return channels.clean_events(self.cleaned_data["events"])

    def changes(self):
        data = dict(self.cleaned_data)
        if data["url"] is None:
            del data["url"]
        return data


class ManageChannels(LoginRequiredMixin, PermissionRequiredMixin):
    permission_required = "fleet.change_alertchannel"


class ChannelsView(ManageChannels, TemplateView):
    """Admins: every channel, a form to add one."""

    template_name = "dashboard/alert_channels.html"

    def get_context_data(self, **kwargs):
        kwargs.setdefault("form", ChannelForm())
        return super().get_context_data(channels=AlertChannel.objects.all(), **kwargs)

    def post(self, request):
        form = ChannelForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        channel = channels.create(AlertChannel(**form.changes()), Actor.of_request(request, "web"))
        messages.success(request, f"Channel {channel.name} added; send it a test to check it.")
        return redirect("dashboard:alert-channels")


class ChannelEditView(ManageChannels, TemplateView):
    """Admins: change a channel, replace its URL, or delete it."""

    template_name = "dashboard/alert_channel.html"

    def get_context_data(self, **kwargs):
        channel = kwargs["channel"]
        initial = {"name": channel.name, "events": channel.events, "enabled": channel.enabled}
        kwargs.setdefault("form", ChannelForm(initial=initial, channel=channel))
        return super().get_context_data(**kwargs)

    def get(self, request, pk):
        return self.render_to_response(self.get_context_data(channel=self._channel(pk)))

    def post(self, request, pk):
        channel = self._channel(pk)
        actor = Actor.of_request(request, "web")
        if "delete" in request.POST:
            channels.delete(channel, actor)
            messages.success(request, f"Channel {channel.name} deleted.")
            return redirect("dashboard:alert-channels")
        form = ChannelForm(request.POST, channel=channel)
        if not form.is_valid():
            context = self.get_context_data(channel=channel, form=form)
            return self.render_to_response(context, status=400)
        channels.update(channel, form.changes(), actor)
        messages.success(request, f"Channel {channel.name} saved.")
        return redirect("dashboard:alert-channels")

    def _channel(self, pk):
        return get_object_or_404(AlertChannel, pk=pk)


class ChannelTestView(ManageChannels, View):
    """Admins: send a test message now and show how it went."""

    def post(self, request, pk):
        channel = get_object_or_404(AlertChannel, pk=pk)
        row = delivery.send_test(channel)
        if row.outcome == Delivery.Outcome.SENT:
            messages.success(request, f"Test message sent to {channel.name}.")
        else:
            messages.error(request, f"Test message to {channel.name} failed: {row.error}")
        return redirect("dashboard:alert-channels")
