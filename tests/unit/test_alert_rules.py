"""The alert rules: which event opens, clears or resolves which incident, and how one moves."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from fleet.alerts import messages, rules

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def event(kind, node="", service="", old="", new="", reason="", actor="system", via="system"):
    return SimpleNamespace(
        kind=kind,
        node_name=node,
        service_name=service,
        old=old,
        new=new,
        reason=reason,
        actor=actor,
        via=via,
    )


def test_a_node_going_down_opens_a_node_incident_and_coming_back_clears_it():
    [down] = rules.signals(event("node.status_changed", "lab-2", old="unreachable", new="down"))
    assert (down.action, down.kind, down.subject, down.topic) == (
        "open",
        "node.down",
        "lab-2",
        "node.down",
    )
    [up] = rules.signals(event("node.status_changed", "lab-2", old="down", new="ready"))
    assert (up.action, up.kind, up.subject) == ("clear", "node.down", "lab-2")


def test_an_unreachable_node_is_not_an_incident():
    assert (
        rules.signals(event("node.status_changed", "lab-2", old="ready", new="unreachable")) == []
    )


def test_the_fleet_wide_damping_event_without_a_node_opens_nothing():
    assert rules.signals(event("node.status_changed", "", old="ready", new="down")) == []


def test_a_removed_node_resolves_its_incident_at_once():
    [signal] = rules.signals(event("node.removed", "lab-2"))
    assert (signal.action, signal.kind, signal.subject) == ("resolve", "node.down", "lab-2")


def test_a_crash_loop_opens_one_incident_per_service():
    [signal] = rules.signals(event("replica.crash_looping", "lab-1", "web", reason="slot 2"))
    assert (signal.action, signal.kind, signal.subject, signal.node) == (
        "open",
        "replica.crash_looping",
        "web",
        "lab-1",
    )


def test_failed_and_rolled_back_deployments_share_one_incident_with_their_own_topic():
    [failed] = rules.signals(event("deployment.failed", service="web", old="revision 2"))
    [back] = rules.signals(event("deployment.rolled_back", service="web", old="revision 3"))
    assert failed.kind == back.kind == "deployment.failed"
    assert failed.subject == back.subject == "web"
    assert (failed.topic, back.topic) == ("deployment.failed", "deployment.rolled_back")
    assert back.text.startswith("revision 3")


def test_a_rollback_someone_asked_for_is_a_notice_not_a_failure():
    asked = event("deployment.rolled_back", service="web", old="revision 3", new="revision 2")
    asked.actor, asked.via = "ann", "api"
    [signal] = rules.signals(asked)
    assert (signal.action, signal.kind, signal.subject) == (
        "notice",
        "deployment.rolled_back",
        "web",
    )
    assert "by ann" in signal.text
    title, _ = messages.notice(signal.kind, signal.subject, signal.text, T0)
    assert title == "[Fleet] web was rolled back"


def test_a_succeeded_deployment_resolves_the_failure_and_is_a_notice():
    resolve, notice = rules.signals(event("deployment.succeeded", service="web", new="revision 4"))
    assert (resolve.action, resolve.kind, resolve.subject) == (
        "resolve",
        "deployment.failed",
        "web",
    )
    assert (notice.action, notice.kind) == ("notice", "deployment.succeeded")


def test_a_deleted_service_resolves_every_incident_of_it():
    [signal] = rules.signals(event("service.deleted", service="web"))
    assert (signal.action, signal.kind, signal.service) == ("resolve", "*", "web")


def test_thresholds_are_keyed_by_subject_and_rule():
    exceeded = event("metric.threshold_exceeded", service="web", new="cpu above 80% for 5 min")
    cleared = event("metric.threshold_cleared", service="web", new="cpu above 80% for 5 min")
    other = event("metric.threshold_exceeded", service="web", new="memory above 90% for 5 min")
    [opened], [clear], [second] = map(rules.signals, (exceeded, cleared, other))
    assert (opened.action, opened.kind, opened.topic) == (
        "open",
        "metric.threshold",
        "metric.threshold",
    )
    assert opened.subject == clear.subject == "web/cpu above 80% for 5 min"
    assert clear.action == "clear"
    assert second.subject != opened.subject


def test_a_threshold_on_a_node_without_a_rule_in_new_is_keyed_by_its_reason():
    [signal] = rules.signals(
        event("metric.threshold_exceeded", node="lab-1", reason="memory: 95% of 8 GiB")
    )
    assert signal.subject == "lab-1/memory"


def test_events_that_say_nothing_of_incidents_give_no_signal():
    for kind in ("service.scaled", "replica.started", "replica.died", "user.role_changed"):
        assert rules.signals(event(kind, "lab-1", "web")) == []


def test_an_incident_opens_once_and_a_recurrence_while_open_says_nothing():
    assert rules.on_open(None) == ("open", "opened")
    assert rules.on_open("open") == ("open", None)


def test_a_recurrence_within_the_quiet_period_reopens_silently():
    state, say = rules.on_clear("open")
    assert (state, say) == ("resolving", None)
    assert rules.on_open(state) == ("open", None)


def test_a_flapping_node_makes_one_alert_and_one_resolution():
    state, said = None, []
    for action in ("open", "clear", "open", "clear", "open", "clear"):
        step = rules.on_open if action == "open" else rules.on_clear
        state, say = step(state)
        said += [say] if say else []
    assert rules.quiet_over(state, T0, T0 + timedelta(seconds=60), quiet=60)
    state, say = rules.on_resolve(state)
    said.append(say)
    assert said == ["opened", "resolved"]
    assert state == "resolved"


def test_the_quiet_period_must_pass_in_full():
    assert not rules.quiet_over("resolving", T0, T0 + timedelta(seconds=59.9), quiet=60)
    assert rules.quiet_over("resolving", T0, T0 + timedelta(seconds=60), quiet=60)
    assert not rules.quiet_over("open", T0, T0 + timedelta(hours=1), quiet=60)


def test_after_resolution_a_new_occurrence_is_a_new_incident_with_its_own_alert():
    assert rules.on_open("resolved") == ("open", "opened")


def test_resolving_at_once_says_so_only_for_an_incident_someone_was_told_of():
    assert rules.on_resolve("open") == ("resolved", "resolved")
    assert rules.on_resolve("resolving") == ("resolved", "resolved")
    assert rules.on_resolve("pending") == (None, None)
    assert rules.on_resolve("resolved") == ("resolved", None)


def test_a_pending_condition_opens_only_after_it_held_long_enough():
    assert not rules.held_long_enough("pending", T0, T0 + timedelta(seconds=29), after=30)
    assert rules.held_long_enough("pending", T0, T0 + timedelta(seconds=30), after=30)
    assert rules.on_clear("pending") == (None, None)


def service(status, healthy, replicas):
    return SimpleNamespace(status=status, healthy_replicas=healthy, replicas=replicas)


def test_a_service_is_degraded_when_short_of_serving_replicas_outside_a_rollout():
    assert rules.degraded(service("degraded", 2, 3))
    assert rules.degraded(service("failed", 0, 1))
    assert rules.degraded(service("paused", 1, 3))
    assert not rules.degraded(service("running", 3, 3))
    assert not rules.degraded(service("deploying", 0, 3))
    assert not rules.degraded(service("deleting", 0, 3))
    assert not rules.degraded(service("new", 0, 3))


def test_an_alert_goes_to_enabled_channels_that_asked_for_its_topic():
    def channel(name, events, enabled=True):
        return SimpleNamespace(name=name, events=events, enabled=enabled)

    channels = [
        channel("ops", ["node.down", "node.up"]),
        channel("off", ["node.down"], enabled=False),
        channel("deploys", ["deployment.succeeded"]),
        channel("up-only", ["node.up"]),
    ]
    assert [c.name for c in rules.recipients(channels, ["node.down"])] == ["ops"]
    assert [c.name for c in rules.recipients(channels, ["node.down", "node.up"])] == [
        "ops",
        "up-only",
    ]


def test_retries_back_off_doubling_up_to_a_cap():
    assert [rules.backoff(n) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert rules.backoff(10) == 60


def test_messages_say_what_opened_and_how_long_it_lasted():
    title, body = messages.opened("node.down", "lab-2", "node.down", "no answer for 10 s", T0)
    assert title == "[Fleet] node lab-2 is down"
    assert "no answer for 10 s" in body and "2026-11-30 12:00:00 UTC" in body
    title, _ = messages.opened("deployment.failed", "web", "deployment.rolled_back", "", T0)
    assert title == "[Fleet] deployment of web failed and was rolled back"
    title, body = messages.resolved("node.down", "lab-2", T0, T0 + timedelta(minutes=5), 3, "")
    assert title == "[Fleet] Resolved: node lab-2 is up again"
    assert "5 min" in body and "3 times" in body


def test_an_image_update_is_a_notice_that_opens_nothing():
    found = event(
        "service.image_update_available", service="web", old="sha256:aaa", new="sha256:bbb"
    )
    [notice] = rules.signals(found)
    assert (notice.action, notice.kind, notice.subject) == (
        "notice",
        "image.update_available",
        "web",
    )
    assert "sha256:aaa -> sha256:bbb" in notice.text
    title, _ = messages.notice(notice.kind, notice.subject, notice.text, datetime.now(UTC))
    assert title == "[Fleet] a newer image of web is available"


def test_a_gap_in_the_event_ids_is_waited_on_from_when_it_was_first_seen():
    from fleet.alerts.incidents import GAP_WAIT, _wait_at_gap
    from fleet.models import AlertCursor

    cursor = AlertCursor(last_event_id=10)
    second = timedelta(seconds=1)
    assert _wait_at_gap(cursor, T0)
    assert _wait_at_gap(cursor, T0 + GAP_WAIT - second)
    assert not _wait_at_gap(cursor, T0 + GAP_WAIT)  # the same gap, waited on long enough
    cursor.last_event_id = 14  # read past it; another gap, after 14, has a wait of its own
    assert _wait_at_gap(cursor, T0 + GAP_WAIT + second)
    assert (cursor.gap_after, cursor.gap_seen_at) == (14, T0 + GAP_WAIT + second)
