"""Who should serve each routed service now: its serving replicas, as the proxy's servers.

The one definition of who serves, read by the configuration file (written whole) and by
the runtime sync (server by server).
"""

import logging

from fleet import engine
from fleet.engine import labels
from fleet.ingress import config, routes
from fleet.models import Node, Replica

log = logging.getLogger(__name__)


def desired_servers(service, ingress):
    """{server name: Server} for every replica of the service that serves now."""
    rows = (
        Replica.objects.filter(service=service, state=Replica.State.RUNNING)
        .filter(health__in=Replica.SERVING_HEALTH, node__isnull=False)
        .exclude(container_id="")
        .exclude(node__status=Node.Status.DOWN)
        .select_related("node")
    )
    port_key = f"{ingress['port']}/tcp"
    servers = {}
    for row in rows:
        port = row.host_ports.get(port_key) or _published_port(row, port_key)
        if port:
            name = routes.server_name(row.pk, row.container_id)
            servers[name] = config.Server(name, routes.node_address(row.node), int(port))
    return servers


def _published_port(row, port_key):
    # Events do not carry ports, so a replica that has just started may not have them on
    # its row until the next listing; ask its node rather than wait for that.
    try:
        found = engine.list_containers(row.node, f"{labels.REPLICA}={row.pk}")
    except engine.EngineError as exc:
        log.info("cannot read the ports of %s: %s", row, exc)
        return None
    for container in found:
        if container.id == row.container_id:
            return container.host_ports.get(port_key)
    return None


def current_backends():
    """What the configuration should say now, from the database."""
    return [
        config.Backend(
            routes.backend_name(service.name),
            routes.route_key(ingress),
            sorted(desired_servers(service, ingress).values(), key=lambda s: s.name),
        )
        for service, ingress in routes.routed()
    ]
