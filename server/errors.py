"""Domain errors and the one table that maps them to gRPC status codes.

Everything the server rejects on purpose raises a subclass of `MMSearchError`; the interceptor in
`server.interceptors` turns it into the status below with the error's own message. Anything else is
a bug: it is logged with its traceback and the client sees INTERNAL without internals.
"""

from __future__ import annotations

import grpc


class MMSearchError(Exception):
    """Base class: a problem the caller can act on, with a message that names it."""


class InvalidArgument(MMSearchError):
    pass


class NotFound(MMSearchError):
    pass


class AlreadyExists(MMSearchError):
    pass


class ResourceExhausted(MMSearchError):
    pass


class FailedPrecondition(MMSearchError):
    """The request is valid but the server is not set up for it (e.g. a model is missing)."""


class Unimplemented(MMSearchError):
    pass


class DeadlineExceeded(MMSearchError):
    """The server ended a call that waited too long on its client (an idle stream)."""


class Unavailable(MMSearchError):
    """A dependency (a remote Qdrant) cannot be reached; the caller may retry."""


class Unauthenticated(MMSearchError):
    """No API key, or one the server does not know."""


class PermissionDenied(MMSearchError):
    """A known key asked for something outside its role, collections or the allowed models."""


STATUS_CODES: dict[type[MMSearchError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_code(error: MMSearchError) -> grpc.StatusCode:
    for cls in type(error).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]  # type: ignore[index]
    return grpc.StatusCode.INTERNAL
