"""A node's SSH keys: the private key Fleet logs in with and its host's public key, read and
refused as validation needs, with the fingerprints OpenSSH shows. No database, no host."""

import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from django.core.exceptions import ValidationError

from fleet.engine import ssh_keys
from fleet.models import Node
from fleet.models.validation import validate_ssh_host_key, validate_ssh_key

PEM, OPENSSH = serialization.Encoding.PEM, serialization.Encoding.OpenSSH
MAKERS = {
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ecdsa": lambda: ec.generate_private_key(ec.SECP256R1()),
}
FORMATS = {
    "openssh": serialization.PrivateFormat.OpenSSH,
    "pkcs8": serialization.PrivateFormat.PKCS8,
    "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
}


def private_text(key, form="openssh", password=None):
    crypt = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(PEM, FORMATS[form], crypt).decode()


def public_line(key):
    return key.public_key().public_bytes(OPENSSH, serialization.PublicFormat.OpenSSH).decode()


def ssh_keygen_fingerprint(tmp_path, line):
    path = tmp_path / "key.pub"
    path.write_text(line + " comment\n")
    shown = subprocess.run(["ssh-keygen", "-lf", str(path)], capture_output=True, text=True)
    return shown.stdout.split()[1]


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize("form", FORMATS)
def test_it_reads_ed25519_rsa_and_ecdsa_keys_in_openssh_and_pem_form(kind, form):
    key = MAKERS[kind]()
    if kind == "ed25519" and form == "traditional":
        form = "pkcs8"  # Ed25519 has no traditional PEM form
    loaded = ssh_keys.private_key(private_text(key, form))
    assert ssh_keys.public_line(loaded) == public_line(key)


def test_a_key_with_a_passphrase_is_refused_with_what_to_do():
    text = private_text(MAKERS["ed25519"](), password=b"secret")
    with pytest.raises(ValueError, match="passphrase.*ssh-keygen -p"):
        ssh_keys.private_key(text)
    with pytest.raises(ValidationError, match="passphrase"):
        validate_ssh_key(text)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("hunter2", "starting with -----BEGIN"),
        ("", "starting with -----BEGIN"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----", "read"),
        (public_line(MAKERS["ed25519"]()), "starting with -----BEGIN"),
        (
            private_text(dsa.generate_private_key(key_size=2048), "pkcs8"),
            "Only Ed25519, RSA and ECDSA",
        ),
    ],
)
def test_what_is_no_usable_private_key_is_refused_with_a_reason(text, says):
    with pytest.raises(ValueError, match=says):
        ssh_keys.private_key(text)


@pytest.mark.parametrize("kind", MAKERS)
def test_fingerprints_are_those_ssh_keygen_shows(kind, tmp_path):
    line = public_line(MAKERS[kind]())
    assert ssh_keys.host_key(line).fingerprint == ssh_keygen_fingerprint(tmp_path, line)


def test_a_host_key_is_read_from_a_pub_file_line_or_a_known_hosts_or_keyscan_line():
    line = public_line(MAKERS["ed25519"]())
    for given in (line, f"{line} root@host\n", f"10.0.0.5 {line}", f"[build]:2222 {line}"):
        assert ssh_keys.host_key(given).line == line


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ssh-ed25519",
        "ssh-dss AAAAB3NzaC1kc3M=",
        "ssh-ed25519 not base64!",
        # an RSA key's base64 under the Ed25519 type
        "ssh-ed25519 " + public_line(MAKERS["rsa"]()).split()[1],
        public_line(MAKERS["ed25519"]()) + "\n" + public_line(MAKERS["ed25519"]()),
        "ssh-ed25519 " + "A" * 5000,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAA",  # cut short
    ],
)
def test_what_is_not_one_host_key_is_refused(text):
    with pytest.raises(ValueError):
        ssh_keys.host_key(text)
    if text:
        with pytest.raises(ValidationError):
            validate_ssh_host_key(text)


def node_errors(**fields):
    with pytest.raises(ValidationError) as refused:
        Node(name="n1", **fields).clean()
    return refused.value.message_dict


def test_an_ssh_endpoint_needs_a_key_and_a_user():
    errors = node_errors(endpoint="ssh://10.0.0.5")
    assert "private key Fleet logs in with" in errors["ssh_key"][0]
    assert "ssh://USER@HOST" in errors["endpoint"][0]


def test_ssh_keys_belong_to_ssh_endpoints_only():
    key = private_text(MAKERS["ed25519"]())
    errors = node_errors(
        endpoint="unix:///var/run/docker.sock", ssh_key=key, ssh_host_key="ssh-ed25519 AAAA"
    )
    assert set(errors) == {"ssh_key", "ssh_host_key"}
    assert "only to ssh:// endpoints" in errors["ssh_key"][0]


def test_a_pinned_host_key_is_kept_as_one_plain_line():
    line = public_line(MAKERS["ed25519"]())
    node = Node(
        name="n1",
        endpoint="ssh://deploy@10.0.0.5",
        ssh_key=private_text(MAKERS["ed25519"]()),
        ssh_host_key=f"10.0.0.5 {line} host comment",
    )
    node.clean()
    assert node.ssh_host_key == line
    assert node.ssh_host_fingerprint == ssh_keys.host_key(line).fingerprint
