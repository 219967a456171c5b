"""A registry's CA: PEM certificates checked before they are kept, summed up for people, and
the tiny image through which an engine writes the CA to its host's certs.d."""

import datetime
import hashlib
import io
import json
import tarfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.exceptions import ValidationError

from fleet.engine.trust import IMAGE, image_archive
from fleet.services.registries import ca_summary, clean_ca


def certificate(name="Team CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    made = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return made, made.public_bytes(serialization.Encoding.PEM).decode()


def test_pem_certificates_are_kept_as_pem_and_nothing_is_none():
    first, pem = certificate()
    _, other = certificate("Intermediate")
    assert clean_ca(f"\n  {pem}\n") == pem
    assert clean_ca(pem + other) == pem + other  # a chain stays whole
    assert clean_ca("") == clean_ca("   \n") == clean_ca(None) == ""
    summary = ca_summary(pem)
    assert summary.startswith("CN=Team CA (SHA-256 ")
    assert first.fingerprint(hashes.SHA256()).hex()[:16] in summary
    assert ca_summary("") == ""


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("not a certificate", "not PEM certificates"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not PEM"),
        ("x" * (64 * 1024 + 1), "at most 64 KiB"),
        (42, "PEM text"),
    ],
)
def test_anything_else_is_refused_with_what_to_give(text, said):
    with pytest.raises(ValidationError, match=said):
        clean_ca(text)


def test_the_writer_image_is_one_empty_layer_docker_can_load():
    archive = tarfile.open(fileobj=io.BytesIO(image_archive("arm64")))
    manifest = json.load(archive.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == [IMAGE]
    config = json.load(archive.extractfile(manifest[0]["Config"]))
    assert (config["architecture"], config["os"]) == ("arm64", "linux")
    layer = archive.extractfile(manifest[0]["Layers"][0]).read()
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    assert tarfile.open(fileobj=io.BytesIO(layer)).getmembers() == []
    assert (
        manifest[0]["Config"]
        == hashlib.sha256(archive.extractfile(manifest[0]["Config"]).read()).hexdigest() + ".json"
    )
