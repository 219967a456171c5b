"""The admin panel for services: create and change through fleet.services; history read-only."""

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.utils.html import format_html

from fleet import services
from fleet.admin.base import ReadOnlyAdmin
from fleet.models import Actor, Deployment, Replica, Service
from fleet.services.spec import SPEC_FIELDS, ServiceSpecSerializer, merge, shown


def _flatten(errors, prefix=""):
    """DRF's nested errors as lines such as "update.order: not a valid choice"."""
    if isinstance(errors, dict):
        return [line for k, v in errors.items() for line in _flatten(v, f"{prefix}{k}.")]
    if isinstance(errors, list) and errors and not isinstance(errors[0], str):
        return [line for i, v in enumerate(errors) for line in _flatten(v, f"{prefix}{i}.")]
    return [f"{prefix.rstrip('.')}: {' '.join(map(str, errors))}"]


class ServiceForm(forms.ModelForm):
    """A service as an operator edits it: name, image, count, and the rest of the spec as JSON."""

    image = forms.CharField(max_length=255)
    options = forms.JSONField(
        required=False,
        initial=dict,
        help_text='The rest of the spec, e.g. {"ports": [{"container": 80}], '
        '"healthcheck": {"command": ["CMD", "true"]}}. Absent fields take their defaults.',
    )
    # The revision the form was loaded from: the whole spec is posted back, so a change
    # made meanwhile by someone else would silently be undone.
    revision = forms.IntegerField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Service
        fields = ["name", "replicas"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A user who may only view gets a form without fields: the admin shows values instead.
        if self.instance.pk and "name" in self.fields:
            self.fields["name"].disabled = True
            # The count as loaded goes back with the form, so that saving a page with the
            # count untouched does not undo a scale made meanwhile (changed_data compares
            # with it, not with the count as it is by then).
            self.fields["replicas"].show_hidden_initial = True
            spec = self.instance.spec
            self.initial["image"] = spec.get("image", "")
            self.initial["revision"] = getattr(self.instance.current_deployment, "revision", None)
            # Secret values stay out of the form: absent, the stored ones are kept.
            self.initial["options"] = {
                k: v for k, v in spec.items() if k not in ("image", "secrets")
            }
            if names := ", ".join(spec.get("secrets") or {}):
                self.fields["options"].help_text += (
                    f" Secrets set now (values never shown): {names}; send "
                    '{"secrets": {"NAME": "value"}} to set one, {"secrets": {"NAME": null}} '
                    "to remove one."
                )

    def clean(self):
        data = super().clean()
        options = data.get("options") or {}
        if not isinstance(options, dict):
            raise forms.ValidationError("The options must be a JSON object.")
        current = self.instance.spec if self.instance.pk else {}
        loaded, now = data.get("revision"), self.instance.current_deployment
        if self.instance.pk and loaded is not None and now and loaded != now.revision:
            raise forms.ValidationError(
                f"{self.instance.name} is at revision {now.revision} now, not {loaded} as when "
                "this page was loaded: load it again and repeat the change."
            )
        raw = merge(current, {**options, "image": data.get("image", "")})
        raw = {k: v for k, v in raw.items() if k in SPEC_FIELDS} | {
            "name": data.get("name") or self.instance.name,
            "replicas": data.get("replicas", 1),
        }
        spec = ServiceSpecSerializer(data=raw)
        if not spec.is_valid():
            raise forms.ValidationError(_flatten(spec.errors))
        data["spec"] = spec.validated_data
        return data


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    form = ServiceForm
    list_display = ["name", "image", "replicas", "running", "status", "revision", "created_at"]
    search_fields = ["name"]
    actions = ["scale_up", "scale_down", "redeploy", "roll_back"]

    def get_queryset(self, request):
        return super().get_queryset(request).with_counts()

    @admin.display(description="image")
    def image(self, service):
        return service.spec.get("image", "")

    @admin.display(description="options")
    def options(self, service):
        """The spec as a viewer sees it on the read-only page, secret values masked."""
        spec = {k: v for k, v in shown(service.spec).items() if k != "image"}
        return format_html("<pre>{}</pre>", json.dumps(spec, indent=2))

    @admin.display(description="running", ordering="healthy_replicas")
    def running(self, service):
        return f"{service.healthy_replicas} healthy of {service.running_replicas} running"

    @admin.display(description="revision")
    def revision(self, service):
        return service.current_deployment.revision if service.current_deployment else "-"

    def save_model(self, request, obj, form, change):
        spec, actor = form.cleaned_data["spec"], Actor.of_request(request, "admin")
        if not change:
            form.instance = services.create(spec, actor)
            return
        stored = Service.objects.get(pk=obj.pk)
        try:
            revision = form.cleaned_data.get("revision")
            services.deploy(stored, spec, actor, base_revision=revision)
            if "replicas" in form.changed_data:
                services.scale(stored, spec["replicas"], actor)
        except services.ServiceError as exc:
            messages.error(request, str(exc))

    def delete_model(self, request, obj):
        services.delete(obj, Actor.of_request(request, "admin"))

    def delete_queryset(self, request, queryset):
        for service in queryset:
            services.delete(service, Actor.of_request(request, "admin"))

    def _each(self, request, queryset, act, done):
        """Apply act(service, actor) to each selected service; say how each went."""
        actor = Actor.of_request(request, "admin")
        for service in queryset:
            try:
                act(service, actor)
            except services.ServiceError as exc:
                self.message_user(request, f"{service.name}: {exc}", level=messages.ERROR)
            else:
                self.message_user(request, f"{service.name}: {done}")

    @admin.action(description="Scale up by one replica", permissions=["change"])
    def scale_up(self, request, queryset):
        def up(service, actor):
            if service.replicas >= settings.FLEET_MAX_REPLICAS:
                raise services.ServiceError(
                    f"already at the most replicas allowed ({settings.FLEET_MAX_REPLICAS}, "
                    "FLEET_MAX_REPLICAS); nothing changed"
                )
            services.scale(service, service.replicas + 1, actor)

        self._each(request, queryset, up, "scaling up")

    @admin.action(description="Scale down by one replica", permissions=["change"])
    def scale_down(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda s, actor: services.scale(s, max(s.replicas - 1, 0), actor),
            "scaling down",
        )

    @admin.action(description="Redeploy (replace every replica, rolling)", permissions=["change"])
    def redeploy(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda s, actor: services.deploy_changes(s, {}, actor, force=True),
            "redeploying",
        )

    @admin.action(description="Roll back to the previous good revision", permissions=["change"])
    def roll_back(self, request, queryset):
        self._each(request, queryset, services.rollback, "rolling back")


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyAdmin):
    list_display = ["service", "revision", "status", "progress", "actor", "created_at", "reason"]
    list_filter = ["status", "service"]
    readonly_fields = [
        "service",
        "revision",
        "status",
        "progress",
        "reason",
        "actor",
        "via",
        "created_at",
        "started_at",
        "finished_at",
        "pretty_spec",
    ]
    exclude = ["spec"]

    @admin.display(description="spec")
    def pretty_spec(self, deployment):
        return format_html("<pre>{}</pre>", json.dumps(shown(deployment.spec), indent=2))


@admin.register(Replica)
class ReplicaAdmin(ReadOnlyAdmin):
    list_display = [
        "service",
        "slot",
        "revision",
        "node",
        "state",
        "health",
        "container",
        "started_at",
    ]
    list_filter = ["state", "health", "node", "service"]
    list_select_related = ["service", "deployment", "node"]

    @admin.display(description="revision")
    def revision(self, replica):
        return replica.deployment.revision

    @admin.display(description="container")
    def container(self, replica):
        return replica.container_id[:12]
