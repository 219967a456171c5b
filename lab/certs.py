"""The lab's TLS material: a CA, a server certificate per engine and for the private
registry, and a client certificate.

Every engine listens with --tlsverify: it serves its own certificate (the node's address as
its IP SAN, so a client verifies it like any host) and accepts only clients whose
certificate the lab's CA signed. The private registry serves one the same way. Files are
made once and kept; a server certificate that no longer names its server's address, or that
another CA signed, is made again.
"""

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 3650


def write_secret(path: Path, data: bytes) -> None:
    """Write a file readable by root alone (keys included, so every file the same way)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(subject, key, issuer, issuer_key, *, ca=False, usage=None, ip=None):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        # Key identifiers: strict verifiers (urllib3, Python 3.13's default) require them.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if ip is not None:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))])
        builder = builder.add_extension(san, critical=False)
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _load(path: Path):
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def node_tls(paths: dict | None) -> dict:
    """A node's TLS fields (tls_ca, tls_cert, tls_key) from the paths a lab entry gives."""
    if not paths:
        return {}
    return {f"tls_{part}": Path(paths[part]).read_text().strip() for part in ("ca", "cert", "key")}


class LabCA:
    """The lab's certificate authority and what it issued, kept in one folder."""

    def __init__(self, folder: Path, lab_name: str):
        self.folder, self.lab_name = Path(folder), lab_name
        self.ca, self.ca_key = self.folder / "ca.pem", self.folder / "ca-key.pem"
        self.client_cert = self.folder / "client-cert.pem"
        self.client_key = self.folder / "client-key.pem"

    def client_paths(self) -> dict:
        """What a client (Fleet, a test, the docker CLI) presents and trusts."""
        return {"ca": str(self.ca), "cert": str(self.client_cert), "key": str(self.client_key)}

    def ready(self) -> bool:
        """Whether the client material exists (the lab has been brought up)."""
        return all(Path(p).is_file() for p in self.client_paths().values())

    def server_paths(self, server: str) -> tuple[Path, Path]:
        """The certificate and key of a server: a node's key (lab-1's is <lab>-1) or another
        name (the private registry's is "registry")."""
        return self.folder / server / "server-cert.pem", self.folder / server / "server-key.pem"

    def ensure(self, servers: dict[str, str]) -> None:
        """Make the CA and client certificate unless present, and a server certificate for each
        {server: address} unless it names that address and comes from this CA."""
        ca_cert = _load(self.ca)
        if ca_cert is None or not self.ca_key.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name(
                [x509.NameAttribute(NameOID.COMMON_NAME, f"fleet lab {self.lab_name}")]
            )
            ca_cert = _issue(f"fleet lab {self.lab_name}", key, name, key, ca=True)
            write_secret(self.ca_key, _key_pem(key))
            write_secret(self.ca, ca_cert.public_bytes(serialization.Encoding.PEM))
            self.client_cert.unlink(missing_ok=True)  # issued by the CA that is gone
        ca_key = serialization.load_pem_private_key(self.ca_key.read_bytes(), None)
        if _load(self.client_cert) is None or _load(self.client_cert).issuer != ca_cert.subject:
            self._issue_pair(
                self.client_cert,
                self.client_key,
                "fleet",
                ca_cert,
                ca_key,
                ExtendedKeyUsageOID.CLIENT_AUTH,
            )
        for server, address in servers.items():
            cert_path, key_path = self.server_paths(server)
            if not self._names(cert_path, ca_cert, address):
                self._issue_pair(
                    cert_path,
                    key_path,
                    server,
                    ca_cert,
                    ca_key,
                    ExtendedKeyUsageOID.SERVER_AUTH,
                    ip=address,
                )

    def _names(self, cert_path: Path, ca_cert, address: str) -> bool:
        cert = _load(cert_path)
        if cert is None or cert.issuer != ca_cert.subject:
            return False
        try:
            cert.verify_directly_issued_by(ca_cert)
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            return False
        return ipaddress.ip_address(address) in san.get_values_for_type(x509.IPAddress)

    def _issue_pair(self, cert_path, key_path, subject, ca_cert, ca_key, usage, ip=None):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(subject, key, ca_cert.subject, ca_key, usage=usage, ip=ip)
        write_secret(key_path, _key_pem(key))
        write_secret(cert_path, cert.public_bytes(serialization.Encoding.PEM))
