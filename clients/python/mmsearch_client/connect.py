"""The client a command's connection flags describe: shared by cli.py and the command modules
(commands_*.py), which cli.py imports, so that none of them imports cli.py back."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from typing import Any

from .client import Client


@dataclass(frozen=True)
class Credentials:
    """The API key and TLS files every client of a command is given (a command that opens many
    clients, such as bench, keeps them here rather than the flags)."""

    api_key: str | None = None
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Credentials:
        return cls(args.api_key, args.tls, args.tls_ca, args.tls_cert, args.tls_key)

    def client(self, address: str, **kw: Any) -> Client:
        return Client(address, **asdict(self), **kw)


def client_from_args(args: argparse.Namespace, **kw: Any) -> Client:
    """A client with the command's connection flags (server, key, TLS)."""
    return Credentials.from_args(args).client(args.server, **kw)
