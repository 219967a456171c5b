"""From two readings of a container's counters to its usage between them (pure functions).

Docker's stats are counters: CPU time used, bytes sent and received, bytes read
and written. A share of a core, or bytes per second, needs two readings, so the
sampler keeps each container's previous one in memory.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    """What a container used between two readings."""

    cpu: float  # percent of one core (a container using two full cores: 200)
    memory: int  # bytes used at the second reading
    memory_limit: int
    net_rx: float  # bytes per second
    net_tx: float
    blk_read: float
    blk_write: float


def cpu_percent(previous, current, seconds):
    """The container's CPU use between the readings, in percent of one core.

    Docker's own formula: the container's share of the host's CPU time over the same
    span, times the host's cores. When the engine gives no host time, wall time does.
    """
    used = current.cpu_ns - previous.cpu_ns
    host = current.system_ns - previous.system_ns
    if used < 0:
        return None  # the container restarted: its counter began again
    if host > 0 and current.system_ns and previous.system_ns:
        return 100.0 * used / host * current.online_cpus
    if seconds > 0:
        return 100.0 * used / (seconds * 1e9)
    return None


def _rate(before, after, seconds):
    if seconds <= 0 or after < before:
        return 0.0  # a counter that went back began again (a restart): no rate this time
    return (after - before) / seconds


def usage(previous, current, seconds):
    """The Usage between two readings of one container `seconds` apart, or None when
    the two cannot be compared (no earlier reading, another container, a restart)."""
    if previous is None or previous.container_id != current.container_id:
        return None
    cpu = cpu_percent(previous, current, seconds)
    if cpu is None:
        return None
    return Usage(
        cpu=round(cpu, 3),
        memory=current.memory_bytes,
        memory_limit=current.memory_limit,
        net_rx=_rate(previous.net_rx, current.net_rx, seconds),
        net_tx=_rate(previous.net_tx, current.net_tx, seconds),
        blk_read=_rate(previous.blk_read, current.blk_read, seconds),
        blk_write=_rate(previous.blk_write, current.blk_write, seconds),
    )


def round_start(now, interval):
    """The start of the sampling round `now` falls in: rounds are aligned to the clock, so
    every node's samples of one round share a time."""
    return int(now // interval * interval)


def spread(count, interval, share=0.5):
    """Offsets (seconds from the round's start) at which to make `count` calls: evenly
    over the first `share` of the interval, so an engine never gets them all at once."""
    if count <= 0:
        return []
    step = interval * share / count
    return [i * step for i in range(count)]
