"""The lab's private registry, the parts that need no engine: its password, htpasswd entry,
configuration, certificate and the CA file the engines trust it by."""

import stat

import bcrypt
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from lab import Lab, LabError, private_registry, registry
from lab.certs import LabCA
from lab.private_registry import check_password, htpasswd_accepts, htpasswd_line


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setattr(private_registry, "CERTS_D", tmp_path / "certs.d")
    return Lab("x", "10.250.250.0/24", root=tmp_path / "lab")


def test_status_names_the_private_registry_and_its_image_before_the_lab_is_up(lab):
    status = lab.status()
    assert status["private_registry"] == {
        "address": "10.250.250.1:5443",
        "username": "fleet",
        "password": None,
        "ca": str(lab.root / "tls" / "ca.pem"),
    }
    assert status["images"]["private_v1"] == "10.250.250.1:5443/fleet/private:1"
    assert status["images"]["demo_v1"] == "10.250.250.1:5000/fleet/demo:1"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("", "non-empty string"),
        (None, "non-empty string"),
        ("x" * 73, "at most 72 bytes"),
        ("é" * 37, "at most 72 bytes"),
        ("two words", "no spaces"),
        ("line\nbreak", "no spaces"),
        ("bell\x07", "no spaces or control characters"),
    ],
)
def test_a_password_the_registry_cannot_take_is_refused_and_nothing_changes(lab, bad, message):
    with pytest.raises(LabError, match=message):
        lab.set_private_password(bad)
    assert lab.status()["private_registry"]["password"] is None
    assert not lab.root.exists()


def test_a_new_password_on_a_registry_that_does_not_run_is_kept_for_its_next_start(lab):
    lab.set_private_password("n3w-Pass:word")
    assert lab.status()["private_registry"]["password"] == "n3w-Pass:word"
    folder = lab.root / "private-registry"
    for name in ("password", "htpasswd"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert htpasswd_accepts((folder / "htpasswd").read_text(), "fleet", "n3w-Pass:word")
    assert lab.private.pid() is None  # nothing was started


def test_the_htpasswd_entry_is_a_bcrypt_hash_of_the_password_for_the_user():
    line = htpasswd_line("fleet", "s3cret")
    user, hashed = line.rstrip("\n").split(":", 1)
    assert user == "fleet" and hashed.startswith("$2b$05$")  # as `htpasswd -B` makes
    assert bcrypt.checkpw(b"s3cret", hashed.encode())
    assert htpasswd_accepts(line, "fleet", "s3cret")
    assert not htpasswd_accepts(line, "fleet", "s3cret2")
    assert not htpasswd_accepts(line, "other", "s3cret")
    assert not htpasswd_accepts("fleet:not-a-hash\n", "fleet", "s3cret")


def test_a_fine_password_is_taken_as_it_is():
    assert check_password("a-B_c.d:e/f+g") == "a-B_c.d:e/f+g"
    assert check_password("p" * 72) == "p" * 72


def test_the_private_configuration_serves_https_with_a_login(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    settings = registry.config(tmp_path, "10.250.250.1:5443", (cert, key), tmp_path / "htpasswd")
    assert settings["http"] == {
        "addr": "10.250.250.1:5443",
        "tls": {"certificate": str(cert), "key": str(key)},
    }
    assert settings["auth"]["htpasswd"]["path"] == str(tmp_path / "htpasswd")
    assert settings["storage"]["filesystem"]["rootdirectory"] == str(tmp_path / "data")
    open_one = registry.config(tmp_path, "10.250.250.1:5000")
    assert open_one["http"] == {"addr": "10.250.250.1:5000"} and "auth" not in open_one


def test_the_registry_certificate_names_the_gateway_and_comes_from_the_lab_ca(tmp_path):
    ca = LabCA(tmp_path, "x")
    ca.ensure({private_registry.CERT: "10.250.250.1"})
    cert_path, key_path = ca.server_paths(private_registry.CERT)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.ca.read_bytes()))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.250.250.1"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    before = cert_path.read_bytes()
    ca.ensure({private_registry.CERT: "10.250.250.1"})
    assert cert_path.read_bytes() == before  # kept while it names the address
    ca.ensure({private_registry.CERT: "10.250.251.1"})
    assert cert_path.read_bytes() != before


def test_the_engines_trust_the_lab_ca_for_the_private_address_until_untrusted(lab, tmp_path):
    lab.ca.ensure({})
    lab.private.trust()
    trusted = tmp_path / "certs.d" / "10.250.250.1:5443" / "ca.crt"
    assert trusted.read_bytes() == lab.ca.ca.read_bytes()
    lab.private.trust()  # again: the same file
    assert trusted.read_bytes() == lab.ca.ca.read_bytes()
    lab.private.untrust()  # as `lab down` does
    assert not (tmp_path / "certs.d").exists()
