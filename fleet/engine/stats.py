"""A container's counters and an engine's disk use, for the metrics sampler.

Part of the Docker seam: it reaches engines only through fleet.engine.client's clients (and
imports nothing of Docker's). The Engine API answers GET /containers/{id}/stats with
cgroup v1 or v2 names depending on the host; stats_reading() reads either.
"""

from dataclasses import dataclass
from typing import Any

from fleet.engine.client import SDK_ERRORS, client, failure
from fleet.engine.node import EngineNode


@dataclass(frozen=True)
class StatsReading:
    """One container's cumulative counters at one moment, as a one-shot stats call reads them.

    CPU is a counter (nanoseconds of CPU used), so a share of a core needs two readings:
    fleet.metrics.readings turns consecutive readings into rates.
    """

    container_id: str
    cpu_ns: int  # CPU time the container has used in all, nanoseconds
    system_ns: int  # the host's CPU time in all (every core), nanoseconds
    online_cpus: int
    memory_bytes: int  # used, page cache not counted (as `docker stats` shows it)
    memory_limit: int  # the container's limit, or the host's memory when it has none
    net_rx: int  # bytes received in all, every interface
    net_tx: int
    blk_read: int  # bytes read from block devices in all
    blk_write: int


def _memory_used(memory: dict[str, Any]) -> int:
    stats = memory.get("stats") or {}
    # cgroup v1 names the page cache total_inactive_file, v2 inactive_file.
    cache = stats.get("total_inactive_file", stats.get("inactive_file", 0)) or 0
    used = int(memory.get("usage") or 0)
    return max(0, used - int(cache))


def _block_io(blkio: dict[str, Any]) -> tuple[int, int]:
    read = write = 0
    for row in blkio.get("io_service_bytes_recursive") or []:
        op = str(row.get("op", "")).lower()
        if op == "read":
            read += int(row.get("value") or 0)
        elif op == "write":
            write += int(row.get("value") or 0)
    return read, write


def stats_reading(container_id: str, raw: dict[str, Any]) -> StatsReading:
    """A StatsReading from the Engine API's stats document (a pure function, unit-tested)."""
    cpu = raw.get("cpu_stats") or {}
    usage = cpu.get("cpu_usage") or {}
    memory = raw.get("memory_stats") or {}
    networks = (raw.get("networks") or {}).values()
    read, write = _block_io(raw.get("blkio_stats") or {})
    return StatsReading(
        container_id=container_id,
        cpu_ns=int(usage.get("total_usage") or 0),
        system_ns=int(cpu.get("system_cpu_usage") or 0),
        online_cpus=int(cpu.get("online_cpus") or len(usage.get("percpu_usage") or []) or 1),
        memory_bytes=_memory_used(memory),
        memory_limit=int(memory.get("limit") or 0),
        net_rx=sum(int(n.get("rx_bytes") or 0) for n in networks),
        net_tx=sum(int(n.get("tx_bytes") or 0) for n in networks),
        blk_read=read,
        blk_write=write,
    )


def disk_bytes(df: dict[str, Any]) -> int:
    """Bytes on disk from GET /system/df: image layers, containers' own layers, volumes."""
    images = int(df.get("LayersSize") or 0)
    containers = sum(int(c.get("SizeRw") or 0) for c in df.get("Containers") or [])
    volumes = sum(
        max(0, int((v.get("UsageData") or {}).get("Size") or 0)) for v in df.get("Volumes") or []
    )
    return images + containers + volumes


def stats(node: EngineNode, container_id: str, timeout: float) -> StatsReading:
    """One reading of a container's counters: a one-shot stats call, no waiting.

    Without one-shot the engine waits for a second reading (about a second) to fill in
    its "precpu" fields; Fleet keeps the previous reading itself instead, so each call
    costs the engine one read of the container's cgroup. Raises EngineError (NotFound
    included: the container went between the listing and the call).
    """
    api = client(node, timeout).api
    try:
        raw = api.stats(container_id, stream=False, one_shot=True)
    except SDK_ERRORS as exc:
        raise failure(exc, timeout) from exc
    return stats_reading(container_id, raw)


def disk_usage(node: EngineNode, timeout: float) -> int:
    """Bytes the engine's images, containers and volumes take on disk (GET /system/df).

    The engine walks its layers and volumes to answer, so this is called seldom.
    """
    try:
        found = client(node, timeout).api.df()
    except SDK_ERRORS as exc:
        raise failure(exc, timeout) from exc
    return disk_bytes(found)
