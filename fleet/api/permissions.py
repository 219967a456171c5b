"""API permissions: reading needs the view permission, acting the permission the view names."""

from rest_framework.permissions import SAFE_METHODS, BasePermission


def read_permission(view):
    """`<app>.view_<model>` for the model the view serves."""
    model = getattr(view, "read_model", None) or view.get_queryset().model
    return f"{model._meta.app_label}.view_{model._meta.model_name}"


class ActionPermission(BasePermission):
    """Grant a read when the user holds the model's view permission (every role does), and
    an action when the user holds the permission the view names for it.

    Views declare `action_permissions = {"create": "fleet.add_node", ...}`; an
    unsafe action the view does not name is refused, so a new action is closed
    until someone decides who may use it.
    """

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            return user.has_perm(read_permission(view))
        perm = getattr(view, "action_permissions", {}).get(view.action)
        return bool(perm) and user.has_perm(perm)


class ReadsFleet(BasePermission):
    """For the schema and the API docs: any role, like the dashboard's pages."""

    def has_permission(self, request, view):
        from fleet.access.roles import READ_FLEET

        user = request.user
        return bool(user and user.is_authenticated and user.has_perms(READ_FLEET))
