"""Metrics' pure logic: stats documents, rates, rounds, rollup buckets, ranges, thresholds."""

import pytest

from fleet.engine.stats import StatsReading, disk_bytes, stats_reading
from fleet.metrics import readings
from fleet.metrics.prometheus import rollout_histogram
from fleet.metrics.series import MAX_POINTS, RangeError, plan
from fleet.metrics.store import bucket_of, cutoffs, due_buckets
from fleet.metrics.thresholds import CLEARED, EXCEEDED, verdict

DAY = 86400


def document(cpu_ns, system_ns, cgroup="v1", cpus=2):
    cache = {"total_inactive_file": 1000} if cgroup == "v1" else {"inactive_file": 1000}
    return {
        "cpu_stats": {
            "cpu_usage": {"total_usage": cpu_ns},
            "system_cpu_usage": system_ns,
            "online_cpus": cpus,
        },
        "memory_stats": {"usage": 5000, "limit": 1 << 30, "stats": cache},
        "networks": {"eth0": {"rx_bytes": 100, "tx_bytes": 50}, "eth1": {"rx_bytes": 1}},
        "blkio_stats": {
            "io_service_bytes_recursive": [
                {"op": "Read", "value": 4096},
                {"op": "Write", "value": 8192},
                {"op": "read", "value": 4096},
            ]
        },
    }


@pytest.mark.parametrize("cgroup", ["v1", "v2"])
def test_a_stats_document_reads_as_counters_whichever_cgroup_version(cgroup):
    reading = stats_reading("c1", document(10, 20, cgroup))
    assert reading.memory_bytes == 4000  # page cache not counted, as `docker stats` shows
    assert reading.memory_limit == 1 << 30
    assert (reading.net_rx, reading.net_tx) == (101, 50)
    assert (reading.blk_read, reading.blk_write) == (8192, 8192)
    assert (reading.cpu_ns, reading.system_ns, reading.online_cpus) == (10, 20, 2)


def test_an_empty_stats_document_reads_as_zeros_not_an_error():
    reading = stats_reading("c1", {})
    assert reading.cpu_ns == reading.memory_bytes == reading.net_rx == 0
    assert reading.online_cpus == 1


def test_disk_use_adds_layers_containers_and_volumes_and_ignores_unknown_sizes():
    df = {
        "LayersSize": 1000,
        "Containers": [{"SizeRw": 10}, {}],
        "Volumes": [{"UsageData": {"Size": 5}}, {"UsageData": {"Size": -1}}],
    }
    assert disk_bytes(df) == 1015


def reading(cpu_ns, system_ns, cid="c1", rx=0, cpus=2):
    return StatsReading(cid, cpu_ns, system_ns, cpus, 100, 200, rx, 0, 0, 0)


def test_half_a_core_on_a_two_core_host_is_fifty_percent_of_one_core():
    # 10 s on 2 cores: 20 s of host CPU time; the container used 5 s of it.
    before, after = reading(0, 0 + 10**9), reading(5 * 10**9, 21 * 10**9)
    assert readings.cpu_percent(before, after, 10) == pytest.approx(50.0)


def test_cpu_falls_back_to_wall_time_when_the_engine_gives_no_host_time():
    before, after = reading(0, 0), reading(2 * 10**9, 0)
    assert readings.cpu_percent(before, after, 10) == pytest.approx(20.0)


def test_usage_gives_rates_per_second_between_two_readings():
    use = readings.usage(reading(0, 10**9, rx=1000), reading(10**9, 11 * 10**9, rx=6000), 5)
    assert use.net_rx == 1000.0
    assert use.memory == 100 and use.memory_limit == 200


def test_no_usage_without_an_earlier_reading_of_the_same_container_or_after_a_restart():
    assert readings.usage(None, reading(1, 1), 10) is None
    assert readings.usage(reading(0, 0, "a"), reading(5, 5, "b"), 10) is None
    assert readings.usage(reading(10**9, 10**9), reading(5, 2 * 10**9), 10) is None


def test_a_counter_that_went_back_gives_no_rate_rather_than_a_negative_one():
    use = readings.usage(reading(0, 10**9, rx=5000), reading(10**8, 2 * 10**9, rx=10), 10)
    assert use.net_rx == 0.0


def test_rounds_are_aligned_to_the_clock_and_calls_spread_over_half_the_interval():
    assert readings.round_start(1_000_007.5, 10) == 1_000_000
    assert readings.spread(4, 10) == [0.0, 1.25, 2.5, 3.75]
    assert readings.spread(0, 10) == []


def test_buckets_are_due_once_over_and_a_grace_after():
    now = 10_000 * 300 + 50  # 50 s into a bucket
    due = due_buckets(None, 10_000 * 300 - 900, now, grace=20, keep_after=0)
    assert due == [10_000 * 300 - 900, 10_000 * 300 - 600, 10_000 * 300 - 300]
    # Within the grace the bucket that just ended waits for its last round.
    assert due_buckets(None, 10_000 * 300 - 300, 10_000 * 300 + 10, 20, 0) == []


def test_buckets_rolled_up_already_are_not_rolled_again():
    now = 10_000 * 300 + 50
    assert due_buckets(10_000 * 300 - 600, 10_000 * 300 - 900, now, 20, 0) == [10_000 * 300 - 300]
    assert due_buckets(10_000 * 300 - 300, 10_000 * 300 - 900, now, 20, 0) == []


def test_no_bucket_is_rolled_up_from_raw_samples_already_partly_pruned():
    now = 10_000 * 300 + 50
    due = due_buckets(None, 0, now, 20, keep_after=10_000 * 300 - 700)
    assert due == [10_000 * 300 - 600, 10_000 * 300 - 300]
    assert due_buckets(None, None, now, 20, 0) == []


def test_pruning_keeps_raw_rows_for_their_hours_and_rollups_for_their_days():
    assert cutoffs(100 * DAY, 24, 30) == (99 * DAY, 70 * DAY)
    assert bucket_of(601) == 600


NOW = 1_000 * DAY


def plan_for(since, until=NOW, step=None):
    return plan(since, until, step, NOW, 10, 24, 30)


def test_an_hour_reads_raw_samples_at_the_sampling_interval():
    hour = plan_for(NOW - 3600)
    assert (hour.step, hour.source) == (10, "raw")
    assert len(hour.times) == 360


def test_a_day_reads_rollups_at_five_minutes_or_more():
    day = plan_for(NOW - DAY)
    assert day.source == "rollup" and day.step == 300
    assert plan_for(NOW - 30 * DAY).step % 300 == 0


def test_a_short_step_on_a_range_older_than_the_raw_samples_reads_rollups():
    old = plan_for(NOW - 3 * DAY, NOW - 2 * DAY, step=60)
    assert (old.source, old.step) == ("rollup", 300)


@pytest.mark.parametrize(
    ("since", "until", "step", "says"),
    [
        (NOW, NOW - 10, None, "before until"),
        (NOW - 40 * DAY, NOW, None, "at most 30 days"),
        (NOW - 3600, NOW, 0, "at least 1 second"),
        (NOW - 3600, NOW, 7200, "longer than the range"),
        (NOW - 6 * 3600, NOW, 1, f"at most {MAX_POINTS}"),
    ],
)
def test_a_range_that_cannot_be_answered_says_why(since, until, step, says):
    with pytest.raises(RangeError, match=says):
        plan(since, until, step, NOW, 10, 24, 30)


def rounds(values, end=NOW, every=10):
    start = end - every * (len(values) - 1)
    return [(start + i * every, v) for i, v in enumerate(values)]


def test_a_threshold_holds_once_every_round_of_its_minutes_was_above():
    points = rounds([95] * 31)  # five minutes and a round, all above 90
    assert verdict(points, 90, 5, False, NOW, 10) == EXCEEDED


def test_one_round_below_in_the_window_keeps_a_threshold_from_holding():
    points = rounds([95] * 15 + [80] + [95] * 15)
    assert verdict(points, 90, 5, False, NOW, 10) is None


def test_a_threshold_does_not_hold_before_samples_reach_back_its_minutes():
    assert verdict(rounds([99] * 10), 90, 5, False, NOW, 10) is None
    assert verdict([], 90, 5, False, NOW, 10) is None


def test_a_held_threshold_clears_after_a_minute_at_or_below_it():
    points = rounds([95] * 24 + [50] * 7)
    assert verdict(points, 90, 5, True, NOW, 10) == CLEARED
    points = rounds([95] * 28 + [50] * 3)
    assert verdict(points, 90, 5, True, NOW, 10) is None


def test_a_held_threshold_clears_when_nothing_was_sampled_for_its_minutes():
    assert verdict([], 90, 5, True, NOW, 10) == CLEARED


def test_rollout_durations_make_a_cumulative_histogram():
    buckets, total = rollout_histogram([3, 8, 50, 4000], buckets=(5, 10, 60))
    assert buckets == [("5.0", 1), ("10.0", 2), ("60.0", 3), ("+Inf", 4)]
    assert total == 4061
