"""Python client for the mmsearch gRPC server."""

from mmsearch.protocol.vocab import FieldType, Fusion, Modality
from mmsearch.protocol.wire import make_filter

from .client import Client, MMSearchError

__all__ = ["Client", "FieldType", "Fusion", "MMSearchError", "Modality", "make_filter"]
