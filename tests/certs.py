"""A CA and certificates made at run time for the TLS tests (no secrets in the repository)."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Issued:
    cert: Path
    key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class CA:
    def __init__(self, folder: Path, name: str = "mmsearch test CA") -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.name = subject
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.path = folder / f"{name.replace(' ', '-')}.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, *, server: bool) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        out = Issued(self.folder / f"{name}.crt", self.folder / f"{name}.key")
        out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out.key.write_bytes(_key_pem(key))
        return out


def write_secure_fixture(folder: Path) -> None:
    """A CA, a server and a client certificate, three API keys (admin, write, read on every collection)
    as a key file for the server (keys.toml) and in the clear for the clients (keys.json): what
    scripts/ci_clients.sh needs to test the TypeScript and Go clients against a secured server."""
    import json
    import secrets

    ca = CA(folder)
    (folder / "ca.pem").write_bytes(ca.path.read_bytes())
    for name, server in (("server", True), ("client", False)):
        ca.issue(name, server=server)
    keys = {role: secrets.token_urlsafe(24) for role in ("admin", "write", "read")}
    lines = []
    for role, key in keys.items():
        digest = hashlib.sha256(key.encode()).hexdigest()
        lines += ["[[keys]]", f'id = "ci-{role}"', f'sha256 = "{digest}"', f'role = "{role}"']
        lines += ['collections = ["*"]', ""]
    (folder / "keys.toml").write_text("\n".join(lines), encoding="utf-8")
    (folder / "keys.json").write_text(json.dumps(keys), encoding="utf-8")


if __name__ == "__main__":
    import sys

    write_secure_fixture(Path(sys.argv[1]))
