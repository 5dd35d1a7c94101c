"""The API key file and the key ring the interceptor asks.

```toml
[[keys]]
id = "ingest-bot"          # shown in logs, metrics and the audit log; never the key itself
sha256 = "<hex digest of the key>"
role = "write"             # read | write | admin
collections = ["kb", "docs-*"]   # names or globs; default ["*"]
tenant = "acme"            # optional: the key reads and writes only this tenant's documents
max_concurrent = 4         # optional per-key limits (else the server's key_* settings)
rate = 20.0                # calls per second (token bucket)
burst = 40
```

Keys are stored hashed: a leaked file does not leak keys. A presented key is hashed and compared
with every stored digest in constant time (hmac.compare_digest, no early exit), so timing tells
nothing about which digest came close. The file is read again when it changes (checked at most
once a second) or on SIGHUP; a file that no longer parses keeps the previous keys, with an error log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .principal import TENANT_NAME, Principal, Role

log = logging.getLogger("mmsearch.security")

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_KEY_FIELDS = {"id", "sha256", "role", "collections", "tenant", "max_concurrent", "rate", "burst"}


class KeyFileError(ValueError):
    """The key file cannot be used; the message names the file and, where it can, the line."""


@dataclass(frozen=True)
class KeyDefaults:
    """Limits of keys that set none themselves (settings key_max_concurrent, key_rate, key_burst)."""

    max_concurrent: int = 0
    rate: float = 0.0
    burst: int = 0


def hash_key(key: str) -> str:
    """The digest to write in the key file for `key`."""
    return hashlib.sha256(key.encode()).hexdigest()


def _entry_lines(text: str) -> list[int]:
    """1-based line of each `[[keys]]` header, to name the entry a problem is in."""
    return [n for n, line in enumerate(text.splitlines(), 1) if line.strip().replace(" ", "") == "[[keys]]"]


def parse_keys(path: Path, defaults: KeyDefaults = KeyDefaults()) -> list[tuple[str, Principal]]:
    """(sha256 hex, principal) per key. Raises KeyFileError naming file and line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the API key file: {exc.strerror or exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message ends with "(at line N, column M)"
        raise KeyFileError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(raw) - {"keys"}
    if unknown:
        raise KeyFileError(f"{path}: unknown top-level entries {sorted(unknown)}; expected [[keys]] tables")
    entries = raw.get("keys", [])
    if not isinstance(entries, list) or not entries:
        raise KeyFileError(f"{path}: no [[keys]] entries")
    lines = _entry_lines(text)
    out: list[tuple[str, Principal]] = []
    seen: dict[str, str] = {}  # key id -> where its first entry is, as the messages name it
    for n, entry in enumerate(entries):
        # An inline `keys = [...]` array has no [[keys]] headers to count: its entries are numbered from 1.
        at = f"line {lines[n]}" if n < len(lines) else f"entry {n + 1} of keys"
        where = f"{path}:{lines[n]}" if n < len(lines) else f"{path}: {at}"
        digest, principal = _entry(entry, where, defaults)
        if principal.key_id in seen:
            raise KeyFileError(f"{where}: duplicate key id {principal.key_id!r} (first at {seen[principal.key_id]})")
        seen[principal.key_id] = at
        if any(hmac.compare_digest(digest, d) for d, _ in out):
            raise KeyFileError(f"{where}: key {principal.key_id!r} has the same sha256 as another key")
        out.append((digest, principal))
    return out


def _entry(entry: Any, where: str, defaults: KeyDefaults) -> tuple[str, Principal]:
    if not isinstance(entry, dict):
        raise KeyFileError(f"{where}: each [[keys]] entry must be a table")
    unknown = set(entry) - _KEY_FIELDS
    if unknown:
        raise KeyFileError(f"{where}: unknown fields {sorted(unknown)} (known: {', '.join(sorted(_KEY_FIELDS))})")
    key_id = entry.get("id")
    if not isinstance(key_id, str) or not key_id.strip():
        raise KeyFileError(f"{where}: the key needs an id (a non-empty string)")
    digest = entry.get("sha256")
    if not isinstance(digest, str) or not _HEX64.match(digest.lower()):
        raise KeyFileError(f"{where}: key {key_id!r}: sha256 must be 64 hex digits (the key's SHA-256, not the key)")
    role_name = entry.get("role")
    if role_name is None:  # it said "unknown role None"
        raise KeyFileError(f"{where}: key {key_id!r} has no role (read, write or admin)")
    try:
        role = Role[str(role_name).upper()]
    except KeyError:
        raise KeyFileError(f"{where}: key {key_id!r}: unknown role {role_name!r} (read, write or admin)") from None
    collections = entry.get("collections", ["*"])
    if not isinstance(collections, list) or not collections or not all(isinstance(c, str) and c for c in collections):
        raise KeyFileError(f"{where}: key {key_id!r}: collections must be a non-empty list of names or globs")
    tenant = entry.get("tenant")
    if tenant is not None:
        if role == Role.ADMIN:
            raise KeyFileError(f"{where}: key {key_id!r}: an admin key sees all data and cannot have a tenant")
        if not isinstance(tenant, str) or not TENANT_NAME.match(tenant):
            raise KeyFileError(f"{where}: key {key_id!r}: tenant must be 1-64 letters, digits, '_', '.', '-'")
    limits = {}
    for name, kind in (("max_concurrent", int), ("rate", (int, float)), ("burst", int)):
        value = entry.get(name, getattr(defaults, name))
        if isinstance(value, bool) or not isinstance(value, kind) or value < 0:
            raise KeyFileError(f"{where}: key {key_id!r}: {name} must be a number >= 0")
        limits[name] = value
    principal = Principal(
        key_id=key_id,
        role=role,
        collections=tuple(collections),
        tenant=tenant,
        max_concurrent=int(limits["max_concurrent"]),
        rate=float(limits["rate"]),
        burst=int(limits["burst"]),
    )
    return digest.lower(), principal


class KeyRing:
    """The keys of one file, re-read when it changes."""

    def __init__(self, path: Path, defaults: KeyDefaults = KeyDefaults(), check_every_s: float = 1.0) -> None:
        self.path = path
        self.defaults = defaults
        self.check_every_s = check_every_s
        self._lock = threading.Lock()
        self._keys = parse_keys(path, defaults)  # at start a bad file is fatal
        self._stamp = self._mtime()
        self._checked = time.monotonic()

    def _mtime(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def reload(self) -> bool:
        """Reads the file again; keeps the current keys (and logs why) when it is unusable."""
        stamp = self._mtime()
        try:
            keys = parse_keys(self.path, self.defaults)
        except KeyFileError as exc:
            log.error("API keys not reloaded, the previous keys stay in force: %s", exc)
            with self._lock:
                self._stamp = stamp  # do not retry (and log) every second until it changes again
            return False
        with self._lock:
            self._keys, self._stamp = keys, stamp
        log.info("API keys reloaded from %s: %d keys", self.path, len(keys))
        return True

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.check_every_s:
            return
        self._checked = now
        if self._mtime() != self._stamp:
            self.reload()

    def authenticate(self, key: str | None) -> Principal | None:
        """The principal of `key`, or None for a missing or unknown key."""
        self._maybe_reload()
        if not key:
            return None
        digest = hash_key(key)
        found = None
        for stored, principal in self._keys:  # every digest compared: no early exit
            if hmac.compare_digest(digest, stored):
                found = principal
        return found

    def __len__(self) -> int:
        return len(self._keys)
