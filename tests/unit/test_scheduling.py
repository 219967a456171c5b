"""Placement of new replicas: constraints, spread and published ports, no database."""

import pytest

from fleet.converge.scheduling import Constraint, NodeView, PlacementError, parse_constraint, place


def node(name, labels=None, *, schedulable=True, **counts):
    return NodeView(name, labels or {}, schedulable, **counts)


def three_empty_nodes():
    return [node("lab-1"), node("lab-2"), node("lab-3")]


def test_it_parses_a_label_constraint():
    assert parse_constraint("zone==a") == Constraint("zone", "==", "a")


def test_it_allows_spaces_around_the_operator():
    assert parse_constraint(" zone != b ") == Constraint("zone", "!=", "b")


def test_it_parses_a_constraint_on_the_node_name():
    assert parse_constraint("node.name==lab-1") == Constraint("node.name", "==", "lab-1")


def test_it_parses_label_keys_with_dots_and_slashes():
    assert parse_constraint("example.com/tier==web").key == "example.com/tier"


def test_a_constraint_prints_in_its_canonical_form():
    assert str(parse_constraint("zone  !=  b")) == "zone!=b"


@pytest.mark.parametrize(
    "text", ["zone=a", "zone", "==a", "zone==", "zone===a", "zone<>a", "", "zone==a==b"]
)
def test_it_refuses_a_constraint_it_cannot_read_naming_the_accepted_forms(text):
    with pytest.raises(ValueError, match="KEY==VALUE or KEY!=VALUE"):
        parse_constraint(text)


def test_it_refuses_a_constraint_on_a_key_that_is_not_a_label_key():
    with pytest.raises(ValueError, match="not a label key"):
        parse_constraint("zone#1==a")


def test_it_refuses_a_constraint_that_is_not_text():
    with pytest.raises(ValueError):
        parse_constraint(None)


def test_an_equality_holds_only_for_the_same_value():
    zone_a = Constraint("zone", "==", "a")
    assert zone_a.matches(node("lab-1", {"zone": "a"}))
    assert not zone_a.matches(node("lab-1", {"zone": "b"}))


def test_an_equality_fails_when_the_label_is_absent():
    assert not Constraint("zone", "==", "a").matches(node("lab-1", {}))


def test_an_inequality_holds_when_the_label_is_absent_or_different():
    not_b = Constraint("zone", "!=", "b")
    assert not_b.matches(node("lab-1", {}))
    assert not_b.matches(node("lab-1", {"zone": "a"}))
    assert not not_b.matches(node("lab-1", {"zone": "b"}))


def test_node_name_compares_the_node_name_not_a_label():
    assert Constraint("node.name", "==", "lab-1").matches(node("lab-1", {"node.name": "other"}))
    assert not Constraint("node.name", "!=", "lab-1").matches(node("lab-1", {}))


@pytest.mark.parametrize(
    ("text", "os", "arch", "holds"),
    [
        ("node.arch==amd64", "linux", "x86_64", True),  # the engine's name, the image's name
        ("node.arch==x86_64", "linux", "x86_64", True),
        ("node.arch==arm64", "linux", "aarch64", True),
        ("node.arch==ARM64", "linux", "aarch64", True),
        ("node.arch==arm64", "linux", "x86_64", False),
        ("node.arch!=arm64", "linux", "x86_64", True),
        ("node.arch!=amd64", "linux", "x86_64", False),
        ("node.os==linux", "linux", "x86_64", True),
        ("node.os==windows", "linux", "x86_64", False),
        ("node.os!=windows", "linux", "x86_64", True),
        ("node.arch==amd64", "", "", False),  # its engine has not said yet
        ("node.arch!=amd64", "", "", True),
    ],
)
def test_node_os_and_arch_compare_what_the_engine_says(text, os, arch, holds):
    view = NodeView("lab-1", {"node.arch": "amd64"}, True, os=os, arch=arch)
    assert parse_constraint(text).matches(view) is holds


def test_a_mixed_fleet_places_by_architecture_and_says_why_a_node_was_left_out():
    nodes = [
        NodeView("x1", {}, True, os="linux", arch="x86_64"),
        NodeView("a1", {}, True, os="linux", arch="aarch64"),
        NodeView("a2", {}, True, os="linux", arch="aarch64"),
    ]
    assert sorted(place(nodes, 2, constraints=[parse_constraint("node.arch==arm64")])) == [
        "a1",
        "a2",
    ]
    with pytest.raises(PlacementError) as refused:
        place(
            nodes[:1] + [NodeView("n", {}, True)],
            1,
            constraints=[parse_constraint("node.arch==arm64")],
        )
    assert "x1 has node.arch=x86_64" in str(refused.value)
    assert "n has no node.arch (its engine has not said yet)" in str(refused.value)


def test_a_node_view_takes_a_dict_of_labels_and_any_set_of_published_ports():
    view = NodeView("lab-1", {"zone": "a"}, True, published={(8080, "tcp")})
    assert view.published == frozenset({(8080, "tcp")})
    assert hash(view) == hash(NodeView("lab-1", {"zone": "a"}, True, published=[(8080, "tcp")]))


def test_placing_no_replicas_needs_no_nodes():
    assert place([], 0) == []


def test_it_refuses_a_negative_count():
    with pytest.raises(ValueError):
        place(three_empty_nodes(), -1)


def test_it_spreads_replicas_evenly_over_empty_nodes():
    placed = place(three_empty_nodes(), 6)
    assert placed == ["lab-1", "lab-2", "lab-3", "lab-1", "lab-2", "lab-3"]


def test_it_fills_the_nodes_with_fewest_replicas_of_the_service_first():
    nodes = [node("lab-1", service_replicas=3), node("lab-2", service_replicas=1), node("lab-3")]
    assert place(nodes, 4) == ["lab-3", "lab-2", "lab-3", "lab-2"]


def test_a_node_already_running_many_of_the_service_gets_new_ones_last():
    nodes = [node("lab-1", service_replicas=3), node("lab-2"), node("lab-3")]
    assert "lab-1" not in place(nodes, 6)
    assert place(nodes, 7)[-1] == "lab-1"


def test_between_equal_nodes_it_prefers_the_least_loaded():
    nodes = [node("lab-1", load=5), node("lab-2", load=1), node("lab-3", load=3)]
    assert place(nodes, 2) == ["lab-2", "lab-3"]


def test_the_service_spread_counts_before_the_total_load():
    nodes = [node("lab-1", load=9), node("lab-2", load=0, service_replicas=1)]
    assert place(nodes, 1) == ["lab-1"]


def test_ties_go_to_the_first_name_so_placement_is_repeatable():
    nodes = [node("lab-b"), node("lab-a")]
    assert place(nodes, 1) == ["lab-a"]


def test_drained_or_down_nodes_are_never_used():
    nodes = [node("lab-1", schedulable=False), node("lab-2"), node("lab-3", schedulable=False)]
    assert place(nodes, 3) == ["lab-2", "lab-2", "lab-2"]


def test_only_nodes_meeting_every_constraint_are_used():
    nodes = [
        node("lab-1", {"zone": "a", "disk": "hdd"}),
        node("lab-2", {"zone": "a", "disk": "ssd"}),
        node("lab-3", {"zone": "b", "disk": "ssd"}),
    ]
    constraints = [parse_constraint("zone==a"), parse_constraint("disk!=hdd")]
    assert place(nodes, 2, constraints=constraints) == ["lab-2", "lab-2"]


def test_it_says_which_constraint_no_node_meets_and_why_each_node_was_left_out():
    nodes = [
        node("lab-1", {"zone": "a"}, schedulable=False),
        node("lab-2", {"zone": "b"}),
        node("lab-3"),
    ]
    with pytest.raises(PlacementError) as info:
        place(nodes, 1, constraints=[parse_constraint("zone==a")])
    assert str(info.value) == (
        "No ready, active node satisfies zone==a (3 nodes: lab-1 is not ready and active; "
        "lab-2 has zone=b; lab-3 has no zone label)."
    )


def test_the_refusal_lists_only_a_few_nodes_when_there_are_many():
    nodes = [node(f"lab-{i}") for i in range(1, 21)]
    with pytest.raises(PlacementError) as info:
        place(nodes, 1, constraints=[parse_constraint("node.name==gpu-1")])
    assert "lab-4 fails node.name==gpu-1; and 16 more)." in str(info.value)


def test_it_says_so_when_no_node_is_ready_and_active():
    nodes = [node("lab-1", schedulable=False), node("lab-2", schedulable=False)]
    with pytest.raises(PlacementError, match="No node is ready and active: lab-1 and lab-2"):
        place(nodes, 1)


def test_it_says_so_when_there_are_no_nodes_at_all():
    with pytest.raises(PlacementError, match="no nodes"):
        place([], 1)


def test_a_node_already_publishing_the_port_takes_no_replica():
    nodes = [node("lab-1", published={(8080, "tcp")}), node("lab-2"), node("lab-3")]
    assert place(nodes, 2, ports=[(8080, "tcp")]) == ["lab-2", "lab-3"]


def test_one_call_never_puts_the_same_published_port_twice_on_a_node():
    placed = place(three_empty_nodes(), 3, ports=[(8080, "tcp")])
    assert sorted(placed) == ["lab-1", "lab-2", "lab-3"]


def test_the_same_port_number_with_another_protocol_does_not_clash():
    nodes = [node("lab-1", published={(53, "udp")})]
    assert place(nodes, 1, ports=[(53, "tcp")]) == ["lab-1"]


def test_replicas_without_published_ports_may_share_a_node():
    nodes = [node("lab-1", published={(8080, "tcp")})]
    assert place(nodes, 3) == ["lab-1", "lab-1", "lab-1"]


def test_too_few_free_nodes_for_a_published_port_places_nothing_and_says_how_many_fit():
    nodes = [node("lab-1", published={(8080, "tcp")}), node("lab-2"), node("lab-3")]
    with pytest.raises(PlacementError) as info:
        place(nodes, 5, ports=[(8080, "tcp")])
    assert str(info.value) == (
        "Only 2 of 5 new replicas can be placed: port 8080/tcp can be published once per node "
        "and is free on only 2 of the 3 eligible nodes."
    )


def test_it_says_so_when_every_eligible_node_already_publishes_the_port():
    nodes = [node("lab-1", published={(8080, "tcp")}), node("lab-2", published={(8080, "tcp")})]
    with pytest.raises(PlacementError) as info:
        place(nodes, 2, ports=[(8080, "tcp")])
    assert str(info.value) == (
        "Every eligible node (lab-1 and lab-2) already publishes port 8080/tcp, "
        "so none of the 2 new replicas can be placed."
    )


def test_a_node_publishing_any_one_of_the_ports_is_left_out():
    nodes = [node("lab-1", published={(443, "tcp")}), node("lab-2")]
    assert place(nodes, 1, ports=[(80, "tcp"), (443, "tcp")]) == ["lab-2"]
    with pytest.raises(PlacementError, match="one of ports 80/tcp and 443/tcp"):
        place(nodes[:1], 1, ports=[(80, "tcp"), (443, "tcp")])


def test_port_conflicts_are_judged_among_nodes_meeting_the_constraints():
    nodes = [node("lab-1", {"zone": "a"}, published={(8080, "tcp")}), node("lab-2")]
    with pytest.raises(PlacementError, match=r"Every eligible node \(lab-1\)"):
        place(nodes, 1, constraints=[parse_constraint("zone==a")], ports=[(8080, "tcp")])
