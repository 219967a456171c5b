"""The overview's glance and filters: what the tiles count and which rows a query shows.

The page's script (static/js/fleet.js) applies the same rules as things change, from
the rows' data attributes: data-states (the words a status filter matches) and
data-search (what the search box matches).
"""

from fleet.models import Node


def node_states(node):
    """The words a node's status filter matches: its status, and "drained" when it is."""
    states = [node.status]
    if node.availability == Node.Availability.DRAIN:
        states.append("drained")
    return states


def glance(nodes, services):
    """The tiles: nodes by state, services by group, and the rollouts under way."""
    nodes_by = {state: 0 for state in ("ready", "unreachable", "down", "drained")}
    for node in nodes:
        for state in node_states(node):
            if state in nodes_by:
                nodes_by[state] += 1
    services_by = {group: 0 for group in ("healthy", "degraded", "failed", "deploying")}
    for service in services:
        if service.group in services_by:
            services_by[service.group] += 1
    rollouts = [s for s in services if s.status == "deploying" and s.current_deployment]
    return {"nodes": nodes_by, "services": services_by, "rollouts": rollouts}


class Filter:
    """One table's filter from the query: `<table>_q` (name or label text), `<table>_status`."""

    def __init__(self, query, table):
        self.table = table
        self.text = query.get(f"{table}_q", "").strip()[:100]
        self.status = query.get(f"{table}_status", "").strip()[:20]

    def matches(self, name, states, labels):
        if self.status and self.status not in states:
            return False
        if not self.text:
            return True
        haystack = " ".join([name, *(f"{k}={v}" for k, v in labels.items())]).lower()
        return all(word in haystack for word in self.text.lower().split())
