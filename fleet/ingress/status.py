"""What the proxy says of one service, for its page and the API: its address, its
servers with their state, and each one's request and error figures from `show stat`."""

from django.conf import settings

from fleet.ingress import haproxy, routes
from fleet.models import Replica

# Responses that count as errors: the replica's 5xx, and connections or responses that failed.
ERROR_COLUMNS = ("hrsp_5xx", "econ", "eresp")
# HAProxy's health check results (`check_status`) in words; the code itself stays in the API.
CHECK_WORDS = {
    "INI": "not checked yet",
    "L4OK": "port answers",
    "L4TOUT": "port timed out",
    "L4CON": "connection refused",
    "L6OK": "TLS answers",
    "L6TOUT": "TLS timed out",
    "L6RSP": "bad TLS answer",
    "L7OK": "HTTP answers",
    "L7OKC": "HTTP answers",
    "L7TOUT": "HTTP timed out",
    "L7RSP": "bad HTTP answer",
    "L7STS": "bad HTTP status",
    "SOCKERR": "socket error",
}


def _int(row, key):
    try:
        return int(row.get(key) or 0)
    except ValueError:
        return 0


def of(service):
    """{address, host, path, port, bind, proxy, servers: [...]}, or None without an ingress."""
    spec = service.current_deployment.spec if service.current_deployment else {}
    ingress = spec.get("ingress")
    if not ingress:
        return None
    bind = settings.FLEET_INGRESS_BIND
    found = {
        "host": ingress["host"],
        "path": ingress["path"],
        "port": ingress["port"],
        "bind": bind,
        "address": f"http://{ingress['host']}{ingress['path']}",
        "proxy": "running",
        "servers": [],
    }
    backend = routes.backend_name(service.name)
    try:
        states = haproxy.servers_state(backend)
        stats = {row["svname"]: row for row in haproxy.stats(backend)}
    except haproxy.NoBackend:
        found["proxy"] = "no backend yet"
        return found
    except haproxy.Unavailable:
        found["proxy"] = "not answering"
        return found
    replicas = Replica.objects.filter(service=service).select_related("node")
    by_pk = {r.pk: r for r in replicas}
    for name, state in sorted(states.items()):
        row, replica = stats.get(name, {}), by_pk.get(routes.replica_of(name))
        total, errors = _int(row, "req_tot"), sum(_int(row, key) for key in ERROR_COLUMNS)
        found["servers"].append(
            {
                "name": name,
                "slot": replica.slot if replica else None,
                "node": replica.node.name if replica and replica.node else None,
                "address": f"{state.addr}:{state.port}",
                "state": state.state,
                "check": (check := (row.get("check_status") or "").lstrip("* ")),
                "check_words": CHECK_WORDS.get(check, check),
                "in_flight": _int(row, "scur"),
                "request_rate": _int(row, "rate"),  # sessions a second: servers have no req_rate
                "requests": total,
                "errors": errors,
                "error_share": round(100 * errors / total, 2) if total else 0.0,
            }
        )
    return found
