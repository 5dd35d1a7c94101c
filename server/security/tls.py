"""TLS and mutual TLS for the gRPC port, with certificates that can be replaced without a restart.

gRPC asks `CertificateWatcher.fetch` before each TLS handshake; when a file's modification time
changed it re-reads the certificate, key and client CA, checks them, and hands gRPC the new
configuration. Connections already open keep the certificate they were made with. A replacement
that does not check out (a key that does not match its certificate, a half-written file) is
logged and ignored: the previous configuration stays in force.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import grpc

log = logging.getLogger("mmsearch.security")


class TLSConfigError(ValueError):
    """A certificate, key or CA file cannot be used; the message names the file."""


def check_files(cert: Path, key: Path, client_ca: Path | None) -> None:
    """Raises TLSConfigError naming the file at fault. The standard library's ssl module does the
    checking: it refuses a key that does not match the certificate."""
    for path, what in ((cert, "certificate (--tls-cert)"), (key, "private key (--tls-key)"), (client_ca, "client CA")):
        if path is not None and not path.is_file():
            raise TLSConfigError(f"{path}: the TLS {what} file does not exist")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        reason = "the key does not match the certificate" if "KEY_VALUES_MISMATCH" in str(exc) else str(exc)
        raise TLSConfigError(f"{cert} / {key}: cannot use this certificate and key: {reason}") from None
    if client_ca is not None:
        try:
            ctx.load_verify_locations(cafile=str(client_ca))
        except (ssl.SSLError, ValueError) as exc:
            raise TLSConfigError(f"{client_ca}: not a PEM CA certificate (--tls-client-ca): {exc}") from None


class CertificateWatcher:
    def __init__(self, cert: Path, key: Path, client_ca: Path | None) -> None:
        self.cert, self.key, self.client_ca = cert, key, client_ca
        check_files(cert, key, client_ca)
        self.config = self._load()
        self._stamp = self._mtimes()

    def _paths(self) -> list[Path]:
        return [p for p in (self.cert, self.key, self.client_ca) if p is not None]

    def _mtimes(self) -> tuple[int, ...]:
        try:
            return tuple(p.stat().st_mtime_ns for p in self._paths())
        except OSError:
            return ()

    def _load(self) -> grpc.ServerCertificateConfiguration:
        pair = (self.key.read_bytes(), self.cert.read_bytes())
        roots = self.client_ca.read_bytes() if self.client_ca is not None else None
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=roots)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC's certificate_configuration_fetcher: a new configuration, or None to keep the current."""
        stamp = self._mtimes()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            check_files(self.cert, self.key, self.client_ca)
            self.config = self._load()
        except (TLSConfigError, OSError) as exc:
            log.error("TLS files changed but cannot be used; the previous certificate stays in force: %s", exc)
            return None
        log.info("TLS certificate reloaded from %s", self.cert)
        return self.config

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self.config, self.fetch, require_client_authentication=self.client_ca is not None
        )
