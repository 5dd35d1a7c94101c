"""Python client for the mmsearch gRPC server."""

from .client import Client, MMSearchError, make_filter

__all__ = ["Client", "MMSearchError", "make_filter"]
