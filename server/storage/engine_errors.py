"""One mapping from what the Qdrant engines raise to the domain errors of server/errors.py.

Both backends run Qdrant, so they fail in Qdrant's words, four ways:
- qdrant-edge raises plain `Exception` (ValueError for a malformed point id) with Qdrant's error text;
- qdrant-client's local mode (tests) raises ValueError / RuntimeError with texts of the same kind;
- a Qdrant server answers with a gRPC status (grpc.RpcError) or an HTTP status (UnexpectedResponse;
  429 arrives as ResourceExhaustedResponse);
- a server that cannot be reached gives UNAVAILABLE (gRPC) or ResponseHandlingException (REST).
Each is reduced to a gRPC status code, and one table turns codes into domain errors. Anything not
recognised is left alone: it surfaces as INTERNAL with its traceback, a bug to fix rather than hide.

qdrant-client's classes are recognised by name: importing qdrant-client takes seconds, which the
embedded backend, that never raises them, should not pay.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
from grpc import StatusCode as S

from ..errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    MMSearchError,
    NotFound,
    ResourceExhausted,
    Unavailable,
    Unimplemented,
)

#: Status -> domain error. A remote Qdrant failing on its side (INTERNAL, UNKNOWN) is a dependency
#: failing, which the caller may retry, not a bug of this server.
DOMAIN: dict[grpc.StatusCode, type[MMSearchError]] = {
    S.INVALID_ARGUMENT: InvalidArgument,
    S.OUT_OF_RANGE: InvalidArgument,
    S.NOT_FOUND: NotFound,
    S.ALREADY_EXISTS: AlreadyExists,
    S.RESOURCE_EXHAUSTED: ResourceExhausted,
    S.FAILED_PRECONDITION: FailedPrecondition,
    S.UNAUTHENTICATED: FailedPrecondition,  # the server is set up with a wrong API key
    S.PERMISSION_DENIED: FailedPrecondition,
    S.UNIMPLEMENTED: Unimplemented,
    S.UNAVAILABLE: Unavailable,
    S.DEADLINE_EXCEEDED: Unavailable,
    S.ABORTED: Unavailable,
    S.CANCELLED: Unavailable,
    S.INTERNAL: Unavailable,
    S.UNKNOWN: Unavailable,
    S.DATA_LOSS: Unavailable,
}

#: HTTP status of a Qdrant REST answer -> status; other 4xx are INVALID_ARGUMENT, 5xx UNAVAILABLE.
HTTP: dict[int, grpc.StatusCode] = {
    400: S.INVALID_ARGUMENT,
    401: S.UNAUTHENTICATED,
    403: S.PERMISSION_DENIED,
    404: S.NOT_FOUND,
    408: S.DEADLINE_EXCEEDED,
    409: S.ALREADY_EXISTS,
    422: S.INVALID_ARGUMENT,
    429: S.RESOURCE_EXHAUSTED,
}

#: Qdrant's error texts -> status, first match wins. Bad input comes first: a vector name missing
#: from a collection ("... is not found in the collection") is the caller's mistake, not a missing
#: collection. "Shard is not initialized" is a closed shard: its collection was dropped.
TEXTS: list[tuple[re.Pattern[str], grpc.StatusCode]] = [
    (
        re.compile(
            r"vector dimension|vector name|vector \S+ (is not found|does not exist) in the collection|"
            r"wrong input|bad request|validation failed|wrong usage|not a valid uuid|failed to parse|"
            r"\bnan\b|not aligned|payload type|unable to infer",
            re.IGNORECASE,
        ),
        S.INVALID_ARGUMENT,
    ),
    (re.compile(r"not found|does not exist|doesn't exist|not initialized|no point with id", re.I), S.NOT_FOUND),
    (re.compile(r"already exists", re.I), S.ALREADY_EXISTS),
    (
        re.compile(r"out of memory|not enough memory|no space left|os error 28|disk quota|storage is full", re.I),
        S.RESOURCE_EXHAUSTED,
    ),
    (re.compile(r"timeout|cancelled|is closed", re.I), S.UNAVAILABLE),
]

_HTTP_ERRORS = "qdrant_client.http.exceptions"
_CLIENT_CLASSES = {
    f"{_HTTP_ERRORS}.ResponseHandlingException": S.UNAVAILABLE,  # REST transport: refused, reset, timed out
    "qdrant_client.common.client_exceptions.ResourceExhaustedResponse": S.RESOURCE_EXHAUSTED,
}


def _classify(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    """The status an engine failure stands for, and its text; None for what is not the engine's."""
    names = {f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__}
    if f"{_HTTP_ERRORS}.UnexpectedResponse" in names:
        status = int(getattr(exc, "status_code", None) or 500)
        try:  # Qdrant's REST error body: {"status": {"error": "..."}}
            text = str(json.loads(getattr(exc, "content", b""))["status"]["error"])
        except (ValueError, KeyError, TypeError):
            text = f"HTTP {status}"
        return HTTP.get(status, S.INVALID_ARGUMENT if status < 500 else S.UNAVAILABLE), text
    for name in names & _CLIENT_CLASSES.keys():
        return _CLIENT_CLASSES[name], str(getattr(exc, "source", None) or exc)
    if isinstance(exc, grpc.RpcError) and callable(getattr(exc, "code", None)):
        return exc.code(), exc.details()  # type: ignore[attr-defined]
    if isinstance(exc, ConnectionError):
        return S.UNAVAILABLE, str(exc)
    # What the engines raise themselves; TypeError, KeyError and the like are this server's bugs.
    if type(exc) in (Exception, ValueError, RuntimeError):
        text = str(exc)
        for pattern, code in TEXTS:
            if pattern.search(text):
                return code, text
        if type(exc) is ValueError:
            return S.INVALID_ARGUMENT, text
    return None


def domain_error(exc: BaseException, context: str) -> MMSearchError | None:
    """The domain error for an engine failure, its message `<context>: <engine's text>`; None when
    `exc` is not an engine failure."""
    if isinstance(exc, MMSearchError):
        return exc
    found = _classify(exc)
    if found is None:
        return None
    code, text = found
    return DOMAIN.get(code, Unavailable)(f"{context}: {text}")


@contextmanager
def engine_errors(context: str) -> Iterator[None]:
    """Engine failures inside the block are raised as domain errors (see `domain_error`)."""
    try:
        yield
    except MMSearchError:
        raise
    except Exception as exc:
        error = domain_error(exc, context)
        if error is None:
            raise
        raise error from exc
