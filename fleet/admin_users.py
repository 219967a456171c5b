"""Users in the admin, with their Fleet role shown and set through fleet.roles."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from . import roles
from .admin import actor_of

User = get_user_model()


def _role_action(role):
    label = role or "no role"

    @admin.action(description=f"Set role: {label}", permissions=["change"])
    def action(modeladmin, request, queryset):
        for user in queryset:
            roles.assign(user, role, actor_of(request))
        modeladmin.message_user(
            request, f"{queryset.count()} user(s) now have {label}.", level=messages.SUCCESS
        )

    action.__name__ = f"set_role_{role or 'none'}"
    return action


class FleetUserAdmin(UserAdmin):
    list_display = ["username", "role", "is_active", "is_superuser", "last_login"]
    actions = [_role_action(role) for role in (*roles.ROLES, None)]

    @admin.display(description="role")
    def role(self, user):
        return roles.role_of(user) or "—"


admin.site.unregister(User)
admin.site.register(User, FleetUserAdmin)
