"""The security interceptor: authenticates the API key of every call, checks its role and
collections against the one table below, applies the key's limits, sets the principal the services
read, counts calls per key and writes the audit log.

Order matters for secrecy: the collection a request names is checked against the key before any
handler runs, so a key outside a collection gets PERMISSION_DENIED whether or not it exists, and an
unknown key gets UNAUTHENTICATED before anything is looked up.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from prometheus_client import Counter

from ..limits import handler_behaviour, rebuild_handler
from .keys import KeyRing
from .limits import KeyLimits, Refused
from .principal import ANONYMOUS, Principal, Role, acting_as

log = logging.getLogger("mmsearch.security")
audit_log = logging.getLogger("mmsearch.audit")

KEY_REQUESTS = Counter(
    "mmsearch_key_requests_total", "RPCs by API key id, method and status code", ["key", "method", "code"]
)


@dataclass(frozen=True)
class Rule:
    role: Role
    collection_field: str = ""  # the request field that names the collection, if any
    mutating: bool = False  # audited


_V1 = "/mmsearch.v1."
#: Every RPC of the API and what it needs: the one place roles are decided (tests/test_security.py
#: checks that every served method is here).
RULES: dict[str, Rule] = {
    f"{_V1}CollectionService/CreateCollection": Rule(Role.ADMIN, "name", mutating=True),
    f"{_V1}CollectionService/DeleteCollection": Rule(Role.ADMIN, "name", mutating=True),
    f"{_V1}CollectionService/GetCollection": Rule(Role.READ, "name"),
    # Snapshots copy and replace whole collections, every tenant's data: admin keys only.
    f"{_V1}CollectionService/CreateSnapshot": Rule(Role.ADMIN, "collection", mutating=True),
    f"{_V1}CollectionService/ListSnapshots": Rule(Role.ADMIN, "collection"),
    f"{_V1}CollectionService/RestoreSnapshot": Rule(Role.ADMIN, "collection", mutating=True),
    f"{_V1}CollectionService/FindDuplicates": Rule(Role.READ, "collection"),
    # Re-encoding replaces every tenant's vectors with another model's: admin keys only.
    f"{_V1}CollectionService/StartReindex": Rule(Role.ADMIN, "collection", mutating=True),
    f"{_V1}CollectionService/GetReindexStatus": Rule(Role.ADMIN, "collection"),
    f"{_V1}CollectionService/ListCollections": Rule(Role.READ),  # filtered to the key's collections
    f"{_V1}IngestService/Ingest": Rule(Role.WRITE, "collection", mutating=True),
    f"{_V1}IngestService/Delete": Rule(Role.WRITE, "collection", mutating=True),
    # The requests of a batch name their collections one by one: the service checks each against the key.
    f"{_V1}IngestService/IngestBatch": Rule(Role.WRITE, mutating=True),
    f"{_V1}PageService/GetPage": Rule(Role.READ, "collection"),
    f"{_V1}PageService/GetDocument": Rule(Role.READ, "collection"),
    f"{_V1}PageService/GetSimilarityMap": Rule(Role.READ, "collection"),
    f"{_V1}SearchService/Search": Rule(Role.READ, "collection"),
    f"{_V1}RerankService/Rerank": Rule(Role.READ),
    f"{_V1}EmbedService/Embed": Rule(Role.READ),
    f"{_V1}InfoService/GetInfo": Rule(Role.READ),
    # The collection is optional (its text model); the service checks a named one against the key.
    f"{_V1}ClassifyService/Classify": Rule(Role.READ),
}
#: A method in neither table (a service added later and not classified yet) needs an admin key.
UNLISTED = Rule(Role.ADMIN)
HEALTH = "/grpc.health.v1.Health/"
REFLECTION = ("/grpc.reflection.v1alpha.ServerReflection/", "/grpc.reflection.v1.ServerReflection/")
#: Trailing metadata of a RESOURCE_EXHAUSTED refusal: milliseconds to wait before retrying.
RETRY_AFTER = "retry-after-ms"


def bearer(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


class _Call:
    """One admitted call: its principal and what the audit line reports."""

    def __init__(self, method: str, principal: Principal, rule: Rule, collection: str) -> None:
        self.method, self.principal, self.rule, self.collection = method, principal, rule, collection
        self.items = 0
        self.ok_items = 0


class SecurityInterceptor(grpc.ServerInterceptor):
    def __init__(self, keys: KeyRing | None, health_open: bool = True, reflection_open: bool = True) -> None:
        self.keys = keys
        self.health_open = health_open
        self.reflection_open = reflection_open
        self.limits = KeyLimits()

    def rule(self, method: str) -> Rule | None:
        """What `method` needs; None: open to anyone."""
        if method.startswith(HEALTH):
            return None if self.health_open or self.keys is None else Rule(Role.READ)
        if method.startswith(REFLECTION):
            return None if self.reflection_open or self.keys is None else Rule(Role.READ)
        return RULES.get(method, UNLISTED)

    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        rule = self.rule(details.method)
        if handler is None or rule is None:
            return handler
        return _wrap(handler, lambda behaviour, kind: self._guard(details.method, rule, behaviour, kind))

    # -- admission

    def _refuse(self, call: _Call, context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
        log.info("%s refused for key %s: %s", call.method, call.principal.key_id, message)
        self._finish(call, code.name)
        context.abort(code, message)
        raise AssertionError("unreachable")  # abort raises

    def _admit(self, method: str, rule: Rule, request: Any, context: grpc.ServicerContext, streaming: bool) -> _Call:
        # A request that did not decode has no fields (interceptors.Undecodable): the error interceptor
        # inside answers it INVALID_ARGUMENT once the key is known to be good.
        named = None if streaming or not rule.collection_field else getattr(request, rule.collection_field, None)
        collection = "" if named is None else str(named)
        if self.keys is None:
            principal: Principal | None = ANONYMOUS
        else:
            principal = self.keys.authenticate(bearer(context.invocation_metadata()))
        call = _Call(method, principal or Principal("?", Role.READ, ()), rule, collection)
        name = method.rsplit("/", 1)[-1]
        if principal is None:
            self._refuse(
                call, context, grpc.StatusCode.UNAUTHENTICATED,
                f"{name} needs an API key: send metadata 'authorization: Bearer <key>' with a key this server knows",
            )  # fmt: skip
        if principal.role < rule.role:
            self._refuse(
                call, context, grpc.StatusCode.PERMISSION_DENIED,
                f"key {principal.key_id!r} has role {principal.role.label}; {name} needs {rule.role.label}",
            )  # fmt: skip
        if named is not None and not principal.may_use(collection):
            self._refuse(call, context, grpc.StatusCode.PERMISSION_DENIED, _outside(principal, collection))
        try:
            self.limits.acquire(principal)
        except Refused as exc:
            context.set_trailing_metadata(((RETRY_AFTER, str(max(1, round(exc.retry_after_s * 1000)))),))
            self._refuse(call, context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        return call

    def _finish(self, call: _Call, code: str) -> None:
        KEY_REQUESTS.labels(call.principal.key_id, call.method, code).inc()
        if not call.rule.mutating:
            return
        line = {
            "key": call.principal.key_id,
            "tenant": call.principal.tenant,
            "method": call.method.rsplit("/", 1)[-1],
            "collection": call.collection,
            "items": call.items,
            "code": code,
        }
        if call.method.endswith("/Ingest"):
            line["stored"] = call.ok_items
        audit_log.info(json.dumps(line, sort_keys=True))

    # -- the wrapped handlers

    def _checked(self, call: _Call, requests: Iterator[Any]) -> Iterator[Any]:
        """A request stream whose every message names a collection the key may use (checked before the
        handler sees it; the ingest pipeline reads it on a thread of its own, so this raises a domain
        error, which the error interceptor maps, rather than aborting)."""
        from ..errors import PermissionDenied

        for request in requests:
            named = getattr(request, call.rule.collection_field, None)
            if named is None:  # did not decode: refused by the error interceptor inside
                yield request
                continue
            collection = str(named)
            call.collection = call.collection or collection
            if not call.principal.may_use(collection):
                log.info(
                    "%s refused for key %s: %s",
                    call.method,
                    call.principal.key_id,
                    _outside(call.principal, collection),
                )
                raise PermissionDenied(_outside(call.principal, collection))
            call.items += 1
            yield request

    def _guard(self, method: str, rule: Rule, behaviour: Callable, kind: str) -> Callable:
        streaming_in, streaming_out = kind.startswith("stream"), kind.endswith("stream")

        def start(request: Any, context: grpc.ServicerContext) -> tuple[_Call, Any]:
            call = self._admit(method, rule, request, context, streaming_in)
            if streaming_in and rule.collection_field:
                request = self._checked(call, request)
            elif rule.collection_field == "collection" and hasattr(request, "ids"):
                call.items = len(request.ids)
            return call, request

        def end(call: _Call, context: grpc.ServicerContext, failed: bool) -> None:
            self.limits.release(call.principal)
            code = _code(context)
            if code is None and not context.is_active():  # the client went away (an ingest rolled back)
                self._finish(call, "CANCELLED")
                return
            self._finish(call, code.name if code is not None else ("UNKNOWN" if failed else "OK"))

        if streaming_out:

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                call, request = start(request, context)
                failed = True
                try:
                    with acting_as(call.principal):
                        for response in behaviour(request, context):
                            call.ok_items += bool(getattr(response, "ok", False))
                            yield response
                    failed = False
                finally:
                    end(call, context, failed)

            return stream

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            call, request = start(request, context)
            failed = True
            try:
                with acting_as(call.principal):
                    response = behaviour(request, context)
                failed = False
                return response
            finally:
                end(call, context, failed)

        return unary


def _outside(p: Principal, collection: str) -> str:
    return f"key {p.key_id!r} may not use collection {collection!r} (it may use: {', '.join(p.collections)})"


def _code(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    try:
        code = context.code()
    except (AttributeError, NotImplementedError):
        return None
    return code if isinstance(code, grpc.StatusCode) else None


def _wrap(handler: grpc.RpcMethodHandler, guard: Callable[[Callable, str], Callable]) -> grpc.RpcMethodHandler:
    kind, behaviour = handler_behaviour(handler)
    return rebuild_handler(handler, kind, guard(behaviour, kind))
