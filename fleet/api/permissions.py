"""API permissions: reading needs a login, acting needs the model permission for that action."""

from rest_framework.permissions import SAFE_METHODS, BasePermission


class ActionPermission(BasePermission):
    """Grant an action when the user holds the permission the view names for it.

    Views declare `action_permissions = {"create": "fleet.add_node", ...}`; an
    unsafe action the view does not name is refused, so a new action is closed
    until someone decides who may use it.
    """

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            return True
        perm = getattr(view, "action_permissions", {}).get(view.action)
        return bool(perm) and user.has_perm(perm)
