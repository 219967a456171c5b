"""Names the proxy knows a service by: its backend, its servers and its route."""

from urllib.parse import urlsplit

from fleet.engine import CONTAINER_ID


def backend_name(service_name):
    return f"svc-{service_name}"


def service_of(backend):
    """The service name of one of Fleet's backends, or None."""
    return backend.removeprefix("svc-") if backend.startswith("svc-") else None


def server_name(replica_pk, container_id):
    """A server per container, so that a replica restarted in place is a new server.

    The name goes into HAProxy's runtime API, where `;` or a newline would start another
    command: the engine's ids are checked where they enter (fleet/engine), and here again.
    """
    if not CONTAINER_ID.fullmatch(container_id):
        raise ValueError(f"not a container id: {container_id!r}")
    return f"r{replica_pk}-{container_id[:12]}"


def replica_of(server):
    """The replica id a server name carries, or None."""
    head = server.split("-", 1)[0]
    return int(head[1:]) if head.startswith("r") and head[1:].isdigit() else None


def route_key(ingress):
    """The key of the route map: the host, then the path prefix (HAProxy matches the
    longest key that begins the request's host and path)."""
    return f"{ingress['host']}{ingress['path']}"


def node_address(node):
    """The address the host reaches a node's published ports at: its engine's host."""
    parts = urlsplit(node.endpoint)
    if parts.scheme in ("unix", "npipe", "") or not parts.hostname:
        return "127.0.0.1"
    return parts.hostname


def routed():
    """[(service, its ingress)] of every service whose current revision has one."""
    # Imported here, where the database is read, so that the configuration can be
    # rendered without Django's apps loaded (bench/rollout.py does, for Swarm's proxy).
    from fleet.models import Service

    services = Service.objects.select_related("current_deployment").order_by("name")
    return [
        (service, ingress)
        for service in services
        if service.current_deployment
        and (ingress := service.current_deployment.spec.get("ingress"))
    ]


def taken_by(ingress, except_name):
    """The name of another service that routes the same host and path, or None."""
    key = route_key(ingress)
    for service, theirs in routed():
        if service.name != except_name and route_key(theirs) == key:
            return service.name
    return None
