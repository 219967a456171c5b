"""Deploy webhooks in the admin: name, service, made, rotated and last used; never a secret.

Whoever may deploy a service (fleet.change_service) may make, rotate and revoke its
webhooks here, as on the service page and in the API; every role may see them. A secret
URL is shown once, on the page that answers the making or rotating, and never stored.
"""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse

from fleet.models import Actor, Webhook
from fleet.services import webhooks

CHANGE, READ = "fleet.change_service", "fleet.view_service"


class WebhookForm(forms.ModelForm):
    """The service and a name unique within it: the rest is Fleet's to fill in."""

    class Meta:
        model = Webhook
        fields = ["service", "name"]


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookForm
    list_display = ["name", "service", "created_at", "created_by", "rotated_at", "last_used_at"]
    list_filter = ["service"]
    search_fields = ["name", "service__name"]
    readonly_fields = ["created_at", "created_by", "rotated_at", "last_used_at"]
    actions = ["rotate", "revoke"]

    def get_fields(self, request, obj=None):
        return ["service", "name"] if obj is None else ["service", "name", *self.readonly_fields]

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(READ)

    def has_add_permission(self, request):
        return request.user.has_perm(CHANGE)

    def has_change_permission(self, request, obj=None):
        return False  # nothing to edit: rotate or revoke instead

    def has_delete_permission(self, request, obj=None):
        return request.user.has_perm(CHANGE)

    def has_manage_permission(self, request):
        return request.user.has_perm(CHANGE)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # revoke records who did it
        return actions

    def shown_once(self, request, hooks):
        for hook in hooks:
            hook.url = request.build_absolute_uri(reverse("hook-deploy", args=[hook.secret]))
        context = {**self.admin_site.each_context(request), "hooks": hooks}
        return TemplateResponse(request, "admin/fleet/webhook/secret_urls.html", context)

    def save_model(self, request, obj, form, change):
        made, obj.secret = webhooks.create(
            obj.service, obj.name, Actor.of_request(request, "admin")
        )
        obj.pk = made.pk

    def response_add(self, request, obj, post_url_continue=None):
        # The URL on this page only: a message would keep the secret in the session.
        return self.shown_once(request, [obj])

    def delete_model(self, request, obj):
        webhooks.revoke(obj, Actor.of_request(request, "admin"))

    @admin.action(
        description="Rotate selected webhooks (new URLs, old ones dead)", permissions=["manage"]
    )
    def rotate(self, request, queryset):
        hooks = list(queryset.select_related("service"))
        for hook in hooks:
            hook.secret = webhooks.rotate(hook, Actor.of_request(request, "admin"))
        return self.shown_once(request, hooks)

    @admin.action(description="Revoke selected webhooks", permissions=["manage"])
    def revoke(self, request, queryset):
        for hook in queryset.select_related("service"):
            webhooks.revoke(hook, Actor.of_request(request, "admin"))
        self.message_user(request, "Webhook(s) revoked.", messages.SUCCESS)
