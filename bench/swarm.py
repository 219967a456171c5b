"""Docker Swarm over the bench's lab engines: the reference the scale and node-loss benchmarks
compare Fleet with. Formed for a benchmark's swarm runs and left afterwards, so that Fleet's own
runs never share the engines with a swarm."""

import time

import docker
from docker.types import RestartPolicy, ServiceMode

from bench.harness import remove_containers, wait_for

SERVICE_LABEL = "com.docker.swarm.service.name"


def address(client):
    return client.api.base_url.split("//", 1)[1].rsplit(":", 1)[0]


def form(clients, manager):
    """Init a swarm on `manager` and join every other engine as a worker; return {name: node id}."""
    leave(clients)  # whatever a crashed run left
    boss = clients[manager]
    boss.swarm.init(advertise_addr=address(boss), listen_addr=f"{address(boss)}:2377")
    boss.swarm.reload()
    token = boss.swarm.attrs["JoinTokens"]["Worker"]
    for name, client in clients.items():
        if name != manager:
            client.swarm.join(
                remote_addrs=[f"{address(boss)}:2377"],
                join_token=token,
                advertise_addr=address(client),
                listen_addr=f"{address(client)}:2377",
            )
    return wait_for(lambda: ready_nodes(boss, len(clients)), 60, "the swarm to form", 0.2)


def ready_nodes(boss, count):
    """{hostname: node id} once `count` nodes are ready, else None."""
    nodes = {
        n.attrs["Description"]["Hostname"]: n.id
        for n in boss.nodes.list()
        if n.attrs["Status"]["State"] == "ready"
    }
    return nodes if len(nodes) >= count else None


def leave(clients):
    """Every engine leaves its swarm (workers first); containers a swarm left are removed."""
    for _name, client in sorted(clients.items(), reverse=True):
        try:
            client.swarm.leave(force=True)
        except docker.errors.APIError as exc:
            if "not part of a swarm" not in str(exc):
                raise
    for client in clients.values():
        remove_containers(client, {"label": SERVICE_LABEL})


SECOND = 1_000_000_000  # the Engine API counts durations in nanoseconds
DEFAULT_HEARTBEAT = 5 * SECOND


def create(boss, name, image, replicas, restart_delay=None):
    """A replicated service; restart_delay in seconds (None: Swarm's default of 5 s)."""
    options = {}
    if restart_delay is not None:
        options["restart_policy"] = RestartPolicy("any", delay=int(restart_delay * SECOND))
    return boss.services.create(
        image, name=name, mode=ServiceMode("replicated", replicas), **options
    )


def set_heartbeat(boss, seconds):
    """`docker swarm update --dispatcher-heartbeat <seconds>s`."""
    boss.swarm.reload()
    boss.swarm.update(dispatcher_heartbeat_period=int(seconds * SECOND))
    boss.swarm.reload()
    return boss.swarm.attrs["Spec"]["Dispatcher"]["HeartbeatPeriod"] / SECOND


def node_state(boss, node_id):
    """What the manager says of a node: "ready", "down", "unknown"..."""
    return boss.api.inspect_node(node_id)["Status"]["State"]


def restart_delay(boss, name):
    """The service's restart delay in seconds as the manager stored it (None: not set)."""
    policy = boss.api.inspect_service(name)["Spec"]["TaskTemplate"].get("RestartPolicy") or {}
    delay = policy.get("Delay")
    return None if delay is None else delay / SECOND


def running_tasks(boss, name, node_ids=None):
    """How many of the service's tasks the manager reports running (on the given nodes)."""
    tasks = boss.api.tasks(filters={"service": name, "desired-state": "running"})
    return sum(
        1
        for t in tasks
        if t["Status"]["State"] == "running" and (node_ids is None or t["NodeID"] in node_ids)
    )


def spread(boss, name):
    """{node id: running tasks} of the service."""
    counts = {}
    for t in boss.api.tasks(filters={"service": name, "desired-state": "running"}):
        if t["Status"]["State"] == "running":
            counts[t["NodeID"]] = counts.get(t["NodeID"], 0) + 1
    return counts


def remove(boss, clients, name, timeout=120):
    """Remove the service and wait until no engine holds a container of it."""
    boss.services.get(name).remove()
    filters = {"label": f"{SERVICE_LABEL}={name}"}
    deadline = time.monotonic() + timeout
    while any(c.api.containers(all=True, filters=filters) for c in clients.values()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"containers of swarm service {name} linger")
        time.sleep(0.25)
