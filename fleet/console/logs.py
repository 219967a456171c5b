"""Replicas' container logs, followed live (the dashboard's log tail).

The socket asks here, never the engine: which container a replica is and on which
node stays the domain's business.
"""

from fleet import engine
from fleet.models import Replica


class LogsUnavailable(Exception):
    """Why a replica's log cannot be followed; the message is fit to show an operator."""


def follow(replica_pk, tail=100):
    """A stream of the replica's log, as chunks of bytes: the last `tail` lines, then new ones.

    The stream blocks while the container is quiet; close() ends it from another thread.
    """
    replica = Replica.objects.select_related("node").filter(pk=replica_pk).first()
    if replica is None or not replica.container_id or replica.node is None:
        raise LogsUnavailable("no such replica with a container")
    try:
        return engine.follow_logs(replica.node, replica.container_id, tail)
    except engine.EngineError as exc:
        raise LogsUnavailable(f"cannot read logs: {exc}") from exc
