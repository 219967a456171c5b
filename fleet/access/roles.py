"""Roles: viewer, operator and admin, each a Django group holding model permissions.

Every door checks the same permissions: the pages and the API through
`has_perm`, the socket on connect and per action, the admin through its own
per-model checks. A role is a group, so Django's admin manages who has which.

- viewer: reads everything (pages, API, live socket, logs, the admin read-only), alerts
  included: incidents, deliveries and the channels (whose URLs are always redacted);
- operator: also creates, deploys, scales, restarts, rolls back and deletes services;
- admin: everything, including nodes, users, alert channels and registry credentials
  (which a viewer sees listed by server and user name, never their passwords).

A logged-in user with no role sees nothing but a page that says so.
"""

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from fleet import live

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
GROUP_NAMES = {VIEWER: "Viewers", OPERATOR: "Operators", ADMIN: "Admins"}

FLEET_MODELS = (
    "node",
    "service",
    "deployment",
    "replica",
    "event",
    "metricthreshold",
    "registry",
)
ALERT_MODELS = ("alertchannel", "incident", "alert", "delivery")
READ = [f"fleet.view_{model}" for model in FLEET_MODELS + ALERT_MODELS]
OPERATE = ["fleet.add_service", "fleet.change_service", "fleet.delete_service"]
PERMISSIONS = {
    VIEWER: READ,
    OPERATOR: READ + OPERATE,
    # Every permission of these apps: nodes, services, events, API tokens (to revoke
    # anyone's; never to read one: only hashes are kept), users, groups, and login
    # lockouts (to lift one early).
    ADMIN: ["fleet.*", "auth.*", "axes.*"],
}

# What the dashboard needs before it shows anything.
READ_FLEET = ("fleet.view_node", "fleet.view_service", "fleet.view_event")


def _permissions(names):
    found = Permission.objects.none()
    for name in names:
        app, codename = name.split(".")
        rows = Permission.objects.filter(content_type__app_label=app)
        found |= rows if codename == "*" else rows.filter(codename=codename)
    return found


def sync_groups(**kwargs):
    """Create the three groups and give each exactly its permissions (run after migrate)."""
    for role, names in PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=GROUP_NAMES[role])
        group.permissions.set(_permissions(names))


def role_of(user):
    """The user's highest role, or None."""
    if not (user and user.is_authenticated and user.is_active):
        return None
    if user.is_superuser:
        return ADMIN
    names = set(user.groups.values_list("name", flat=True))
    for role in reversed(ROLES):
        if GROUP_NAMES[role] in names:
            return role
    return None


@transaction.atomic
def assign(user, role, actor=None):
    """Give the user exactly one role (or none), with admin-panel access to match; record it."""
    from fleet.models import SYSTEM, Event, EventKind

    if role is not None and role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.")
    if user.is_superuser:
        raise ValueError(f"{user.get_username()} is a superuser, an admin whatever the role.")
    sync_groups()
    old = role_of(user)
    user.groups.remove(*Group.objects.filter(name__in=GROUP_NAMES.values()))
    if role is not None:
        user.groups.add(Group.objects.get(name=GROUP_NAMES[role]))
    user.is_staff = role is not None
    user.save(update_fields=["is_staff"])
    if hasattr(user, "_perm_cache"):
        del user._perm_cache
    if hasattr(user, "_group_perm_cache"):
        del user._group_perm_cache
    new = role_of(user)
    if old != new:
        # Queued first: the user's sockets check their role before the news of the change
        # itself is pushed to them (a viewer who lost the role must not see it).
        live.login_changed(user.pk)
        Event.objects.record(
            EventKind.USER_ROLE_CHANGED,
            actor=actor or SYSTEM,
            old=old or "",
            new=new or "",
            reason=f"user {user.get_username()}",
        )
    return user
