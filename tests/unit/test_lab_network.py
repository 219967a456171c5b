"""The lab's network: fixed MACs for its addresses."""

from lab.network import mac_of


def test_an_address_of_the_lab_has_a_fixed_locally_administered_mac():
    assert mac_of("10.250.11.14") == "02:00:0a:fa:0b:0e"
    assert mac_of("10.250.11.14") != mac_of("10.250.12.14")
    assert int(mac_of("10.250.7.1").split(":")[0], 16) & 0b11 == 0b10  # local, unicast
