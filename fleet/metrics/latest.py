"""The newest samples: a round as a live message, and each node's current use.

A round of one node goes to the browsers as one message (kind "metrics", id
"<node id>:<time>"): the node's sum and each of its replicas, so that a chart
appends points as they are sampled without one message per replica.
"""

import time

from django.conf import settings
from django.db.models import Max

from fleet.models import Node, NodeSample, ReplicaSample, Service

REPLICA_FIELDS = ("cpu", "memory", "memory_limit", "net_rx", "net_tx", "blk_read", "blk_write")
NODE_FIELDS = ("cpu", "memory", "memory_total", "cpus", "containers", "replicas", "disk")


def round_message(key):
    """(data, html) of one node's round, for fleet.live; data None if the key is bad."""
    try:
        node_id, t = (int(part) for part in str(key).split(":"))
    except ValueError:
        return None, ""
    name = Node.objects.filter(pk=node_id).values_list("name", flat=True).first()
    if name is None:
        return None, ""
    rows = list(
        ReplicaSample.objects.filter(node_id=node_id, t=t).values(
            "service_id", "slot", *REPLICA_FIELDS
        )
    )
    names = dict(
        Service.objects.filter(pk__in={r["service_id"] for r in rows}).values_list("pk", "name")
    )
    node = NodeSample.objects.filter(node_id=node_id, t=t).values(*NODE_FIELDS).first()
    replicas = [
        {"service": names.get(r.pop("service_id"), ""), **r}
        for r in sorted(rows, key=lambda r: (r["service_id"], r["slot"]))
    ]
    return {"node": name, "t": t, "total": node, "replicas": replicas}, ""


def node_usage(node_ids):
    """{node id: (CPU in cores, memory bytes)} from each node's newest sample of the last
    few rounds; a node without one is left out (its use is not known)."""
    since = int(time.time() - 3 * settings.FLEET_METRICS_INTERVAL)
    recent = NodeSample.objects.filter(node_id__in=node_ids, t__gte=since)
    newest = {
        r["node_id"]: r["t"] for r in recent.values("node_id").annotate(t=Max("t")).order_by()
    }
    found = {}
    for row in recent.values("node_id", "t", "cpu", "memory"):
        if newest.get(row["node_id"]) == row["t"]:
            found[row["node_id"]] = (row["cpu"] / 100, row["memory"])
    return found
