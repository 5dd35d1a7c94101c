"""The client a command's connection flags describe: shared by cli.py and the command modules
(commands_*.py), which cli.py imports, so that none of them imports cli.py back."""

from __future__ import annotations

import argparse
from typing import Any

from .client import Client


def client_from_args(args: argparse.Namespace, **kw: Any) -> Client:
    """A client with the command's connection flags (server, key, TLS)."""
    return Client(
        args.server,
        api_key=args.api_key,
        tls=args.tls,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        **kw,
    )
