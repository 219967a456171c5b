"""Users in the admin, with their Fleet role shown and set through fleet.access.roles."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from fleet import live
from fleet.access import roles, tokens
from fleet.admin.base import ReadOnlyAdmin
from fleet.models import Actor, ApiToken

User = get_user_model()


def _role_action(role):
    label = role or "no role"

    @admin.action(description=f"Set role: {label}", permissions=["change"])
    def action(modeladmin, request, queryset):
        done = 0
        for user in queryset:
            try:
                roles.assign(user, role, Actor.of_request(request, "admin"))
                done += 1
            except ValueError as exc:
                modeladmin.message_user(request, str(exc), level=messages.ERROR)
        modeladmin.message_user(request, f"{done} user(s) now have {label}.", messages.SUCCESS)

    action.__name__ = f"set_role_{role or 'none'}"
    return action


class FleetUserAdmin(UserAdmin):
    """Users; their role changes only through the "Set role" actions, which keep groups and
    admin access in step and record who changed what."""

    list_display = ["username", "role", "is_active", "is_superuser", "last_login"]
    actions = [_role_action(role) for role in (*roles.ROLES, None)]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        ("Personal info", {"fields": ["first_name", "last_name", "email"]}),
        ("Access", {"fields": ["is_active", "role", "is_superuser"]}),
        ("Important dates", {"fields": ["last_login", "date_joined"]}),
    ]
    readonly_fields = ["role", "is_superuser", "last_login", "date_joined"]

    @admin.display(description="role")
    def role(self, user):
        return roles.role_of(user) or "—"

    # Every change the admin saves to a user (deactivated, password set, deleted) may end
    # their logins: their open sockets check theirs at once.
    def log_change(self, request, obj, message):
        live.login_changed(obj.pk)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for user in queryset:
            live.login_changed(user.pk)
        return super().log_deletions(request, queryset)


class RoleGroupAdmin(ReadOnlyAdmin, GroupAdmin):
    """The role groups, as Fleet keeps them: shown, not edited."""


admin.site.unregister(User)
admin.site.register(User, FleetUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, RoleGroupAdmin)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens as an admin sees them: whose, what for, since and until when. Only hashes
    are stored, so no one can read a token here; an admin may revoke (delete) one."""

    list_display = ["name", "user", "created", "expiry"]
    list_filter = ["user"]
    fields = ["name", "user", "created", "expiry"]
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # made by their owner, with a password (POST /api/auth/token/)

    def has_change_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # revoke records who did it
        return actions

    def delete_model(self, request, obj):
        tokens.revoke(obj, Actor.of_request(request, "admin"))

    @admin.action(description="Revoke selected tokens", permissions=["delete"])
    def revoke(self, request, queryset):
        for token in queryset.select_related("user"):
            tokens.revoke(token, Actor.of_request(request, "admin"))
        self.message_user(request, "Token(s) revoked.", messages.SUCCESS)
