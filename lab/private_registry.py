"""The lab's private registry: docker-registry over HTTPS on <gateway>:5443, with a login.

It serves a certificate of the lab's CA (the gateway as its IP SAN) and takes one user,
`fleet`, from an htpasswd file of bcrypt hashes (made with the `bcrypt` module). The engines
trust it as Docker trusts any registry with a CA of its own: the lab's CA is written to
/etc/docker/certs.d/<address>/ca.crt (no --insecure-registry), which every engine reads on
each pull and `lab down` removes; the address is unique per lab subnet.

The password is made at the first `up` and kept in the registry's folder (readable by root
alone). A new password is written to the htpasswd file, which Debian's 2.8.2 reads again once
its modification time changes; a registry that still takes the old one (a build that reads
the file only when it starts) is restarted.
"""

import json
import secrets
from contextlib import suppress
from pathlib import Path

import bcrypt

from lab import registry
from lab.certs import LabCA, write_secret
from lab.host import LabError, http_get

PORT = 5443
USERNAME = "fleet"
CERT = "registry"  # its certificate's name among the lab CA's servers
CERTS_D = Path("/etc/docker/certs.d")
# The cost `htpasswd -B` uses by default: the registry checks the hash on every request and
# a pull makes several (cost 10 took 0.15 s a request here); the password is random anyway.
BCRYPT_COST = 5


def check_password(password: object) -> str:
    """The password if the registry can take it, else LabError: 1 to 72 bytes (bcrypt reads
    no further), no spaces or control characters (a login prompt or file would lose them)."""
    if not isinstance(password, str) or not password:
        raise LabError("the private registry's password must be a non-empty string")
    if len(password.encode()) > 72:
        raise LabError("the private registry's password must be at most 72 bytes (bcrypt's limit)")
    if not password.isprintable() or any(c.isspace() for c in password):
        raise LabError("the private registry's password must have no spaces or control characters")
    return password


def htpasswd_line(username: str, password: str) -> str:
    """An htpasswd entry with a bcrypt hash, as `htpasswd -B` writes it."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()
    return f"{username}:{hashed}\n"


def htpasswd_accepts(text: str, username: str, password: str) -> bool:
    """True if the htpasswd text has an entry for username that password matches."""
    for line in text.splitlines():
        user, _, hashed = line.partition(":")
        if user == username and hashed.startswith("$2"):
            with suppress(ValueError):
                return bcrypt.checkpw(password.encode(), hashed.encode())
    return False


class PrivateRegistry:
    """The private registry of a lab: its folder, address and the lab's CA."""

    def __init__(self, folder: Path, address: str, ca: LabCA):
        self.folder, self.address, self.ca = Path(folder), address, ca
        self.password_file, self.htpasswd = self.folder / "password", self.folder / "htpasswd"
        self.trusted = CERTS_D / address / "ca.crt"

    def password(self) -> str | None:
        """The current password, None before the first up."""
        with suppress(OSError):
            return self.password_file.read_text().strip() or None
        return None

    def status(self) -> dict:
        """Address, user name, password, and the CA file a client verifies it with."""
        return {
            "address": self.address,
            "username": USERNAME,
            "password": self.password(),
            "ca": str(self.ca.ca),
        }

    def pid(self) -> int | None:
        return registry.pid(self.folder)

    def answers(self) -> bool:
        """True if it serves a certificate of the lab's CA and takes the current password
        only (/v2/ without it is 401)."""
        url, login = f"https://{self.address}/v2/", (USERNAME, self.password() or "")
        return http_get(url, self.ca.ca)[0] == 401 and http_get(url, self.ca.ca, login)[0] == 200

    def start(self, restart: bool = False) -> None:
        """Make its password, htpasswd file and certificate unless there, and start it unless it
        answers as it should (restart: start it again even so)."""
        if (password := self.password()) is None:
            password = secrets.token_urlsafe(24)
            write_secret(self.password_file, password.encode())
        current = ""
        with suppress(OSError):
            current = self.htpasswd.read_text()
        if not htpasswd_accepts(current, USERNAME, password):  # none yet, or another password's
            write_secret(self.htpasswd, htpasswd_line(USERNAME, password).encode())
        self.ca.ensure({CERT: self.address.rsplit(":", 1)[0]})
        tls = self.ca.server_paths(CERT)
        settings = registry.config(self.folder, self.address, tls, self.htpasswd)
        registry.serve(self.folder, settings, self.answers, restart)

    def set_password(self, password: str) -> None:
        """Change the password. A running registry must take it before this returns: it is
        restarted unless it does (else the next start takes it)."""
        password = check_password(password)
        write_secret(self.password_file, password.encode())
        write_secret(self.htpasswd, htpasswd_line(USERNAME, password).encode())
        if self.pid() is not None:
            self.start()

    def has(self, repository: str, tag: str) -> bool:
        """True if the registry holds repository:tag (asked with the login)."""
        url = f"https://{self.address}/v2/{repository}/tags/list"
        status, body = http_get(url, self.ca.ca, (USERNAME, self.password() or ""))
        return status == 200 and tag in (json.loads(body).get("tags") or [])

    def trust(self) -> None:
        """Let every engine on this host verify the registry with the lab's CA."""
        ca = self.ca.ca.read_bytes()
        with suppress(OSError):
            if self.trusted.read_bytes() == ca:
                return
        self.trusted.parent.mkdir(parents=True, exist_ok=True)
        self.trusted.write_bytes(ca)  # a CA certificate: public, readable by all like any

    def untrust(self) -> None:
        self.trusted.unlink(missing_ok=True)
        for folder in (self.trusted.parent, CERTS_D):
            with suppress(OSError):
                folder.rmdir()  # only if empty: other registries' files stay
