"""Fuzzing every request message (hypothesis strategies built from the proto descriptors, steered
towards names the server knows) and raw bytes, against one server: no INTERNAL or UNKNOWN, ever; the
server healthy afterwards; data written before the fuzzing intact.

Short by default (CI): MMSEARCH_FUZZ_EXAMPLES requests per test (300). Long mode, e.g.
`MMSEARCH_FUZZ_EXAMPLES=10000 pytest tests/test_fuzz.py -s` (docs/robustness.md); -s prints the codes.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmsearch.client import Client
from mmsearch.server.app import App, create_server

from .conftest import fake_settings
from .documents import ANIMALS, text_item
from .pagegen import blank_pdf, text_page
from .test_client_mistakes import all_methods, raw_call

EXAMPLES = int(os.environ.get("MMSEARCH_FUZZ_EXAMPLES", "300"))
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
KEPT = "keep"  # written before the fuzzing; no fuzzed request names it
# Health Watch streams until the client leaves: a fuzzed call would only wait for its deadline.
METHODS = [m for m in all_methods() if m.full_name != "grpc.health.v1.Health.Watch"]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

_text = st.text(max_size=40)
# Values the server knows, so that fuzzed requests get past the first checks and reach deeper code.
HINTS: dict[str, st.SearchStrategy[Any]] = {
    "collection": st.sampled_from(["zoo", "fz", "", "zoo\n", "a" * 65, "../x"]) | _text,
    "name": st.sampled_from(["zoo", "fz", "", "zoo\n", "a/b"]) | _text,
    "kind": st.sampled_from(["", "fake", "sentence-transformers", "ocr", "nope", "fake-8"]) | _text,
    "model": st.sampled_from(["", "fake", "fake-8", "fake-abc", "fake-0", "/nope", "m" * 300]) | _text,
    "mime_type": st.sampled_from(["image/png", "image/jpeg", "image/tiff", "application/pdf", "", "text/plain"]),
    "key": st.sampled_from(["legs", "kind", "tag", "", "a..b", "legs\n", "meta.x"]) | _text,
    "id": st.sampled_from(["cats", "owls", "x", "", " "]) | _text,
    "text": st.sampled_from(["mice at night", "", " ", "owls", "x" * 5000]) | _text,
    "query": st.sampled_from(["mice at night", "", "x" * 5000]) | _text,
}
SMALL_PNG = text_page(["fuzz"], size=(64, 32))
BYTES_HINT = st.sampled_from([SMALL_PNG, blank_pdf(1), b"", b"%PDF-1.4 broken", SMALL_PNG[:40]])
BYTES_HINT |= st.binary(max_size=64)
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, 0.5, 1.0, -1.0, 1e30, math.nan])
JSON = st.recursive(
    st.none() | st.booleans() | FLOATS | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


F = FieldDescriptor
INTEGERS = {
    F.TYPE_INT32: (32, True), F.TYPE_SINT32: (32, True), F.TYPE_SFIXED32: (32, True),
    F.TYPE_INT64: (64, True), F.TYPE_SINT64: (64, True), F.TYPE_SFIXED64: (64, True),
    F.TYPE_UINT32: (32, False), F.TYPE_FIXED32: (32, False), F.TYPE_UINT64: (64, False), F.TYPE_FIXED64: (64, False),
}  # fmt: skip


def _integers(bits: int, signed: bool) -> st.SearchStrategy[int]:
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return st.integers(0, 20) | st.integers(lo, hi)


def _scalar(f: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = f.type
    if t == FieldDescriptor.TYPE_STRING:
        return HINTS.get(f.name, _text)
    if t == FieldDescriptor.TYPE_BYTES:
        return BYTES_HINT
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return FLOATS  # a float32 field takes a larger double as infinity
    if t == FieldDescriptor.TYPE_ENUM:
        return st.integers(-1, max(v.number for v in f.enum_type.values) + 2)
    bits, signed = INTEGERS[t]
    return _integers(bits, signed)


def _value(f: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if f.type == FieldDescriptor.TYPE_MESSAGE:
        return messages(f.message_type, depth + 1)
    return _scalar(f)


def _is_map(f: FieldDescriptor) -> bool:
    return f.type == FieldDescriptor.TYPE_MESSAGE and f.message_type.GetOptions().map_entry


def _is_repeated(f: FieldDescriptor) -> bool:
    return bool(f.is_repeated)


def _field(f: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if _is_map(f):
        key, value = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
        return st.dictionaries(_scalar(key), _value(value, depth), max_size=3)
    if _is_repeated(f):
        return st.lists(_value(f, depth), max_size=3)
    return _value(f, depth)


def _set(msg: Message, f: FieldDescriptor, value: Any) -> None:
    target = getattr(msg, f.name)
    if _is_map(f):
        for k, v in value.items():
            if isinstance(v, Message):
                target[k].CopyFrom(v)
            else:
                target[k] = v
    elif _is_repeated(f):
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            for v in value:
                target.add().CopyFrom(v)
        else:
            target.extend(value)
    elif f.type == FieldDescriptor.TYPE_MESSAGE:
        target.CopyFrom(value)
    else:
        setattr(msg, f.name, value)


def messages(desc: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Any message of this type: each field set or not, at most one member of each oneof, nested
    messages up to a few levels; a google.protobuf.Struct is JSON-like data with NaN and infinities."""
    cls = message_factory.GetMessageClass(desc)
    if desc.full_name == "google.protobuf.Struct":
        return st.dictionaries(_text, JSON, max_size=4).map(lambda d: _struct(cls, d))
    if depth > 4:
        return st.just(cls())
    in_oneof = {f.name for o in desc.oneofs for f in o.fields}
    plain = {f.name: _field(f, depth) for f in desc.fields if f.name not in in_oneof}
    oneofs = [st.none() | st.one_of([st.tuples(st.just(f), _field(f, depth)) for f in o.fields]) for o in desc.oneofs]

    def build(values: tuple[dict[str, Any], list[Any]]) -> Message:
        fields, chosen = values
        msg = cls()
        for name, value in fields.items():
            _set(msg, desc.fields_by_name[name], value)
        for pick in chosen:
            if pick is not None:
                _set(msg, *pick)
        return msg

    return st.tuples(st.fixed_dictionaries({}, optional=plain), st.tuples(*oneofs).map(list)).map(build)


def _struct(cls: type[Message], d: dict[str, Any]) -> Message:
    s = cls()
    s.update(d)  # type: ignore[attr-defined]
    return s


def _steer(method: str, msg: Any, draw: st.DrawFn) -> None:
    """Half of the requests: the fields that decide whether a call gets past its first checks are made
    plausible, so that fuzzing reaches ranking, ingest and the stores, not only the validators."""
    if method == "Search":
        msg.collection = "zoo"
        msg.query.text = draw(st.sampled_from(["mice at night", "owls", "rivers in spring"]) | _text)
        msg.top_k = draw(st.integers(0, 30))
        for name in draw(
            st.sets(st.sampled_from(["filter", "modalities", "score_threshold", "ranking", "query.image"]))
        ):
            owner, _, field = name.rpartition(".")
            (getattr(msg, owner) if owner else msg).ClearField(field)
    elif method == "Ingest":
        msg.collection = draw(st.sampled_from(["zoo", "fz"]))
        msg.create_collection = True
        msg.item.id = draw(st.sampled_from(["cats", "fz1", "fz2", "fz3"]))
    elif method == "Rerank":
        msg.query = draw(st.sampled_from(["mice at night", "owls"]))
        if draw(st.booleans()):
            del msg.documents[:]
            msg.documents.add(text="owls hunt mice")
    elif method == "Embed":
        msg.ClearField("encoder")
        if draw(st.booleans()):
            del msg.inputs[:]
            msg.inputs.add(text="owls")
    elif method in ("GetCollection", "DeleteCollection", "Delete"):
        field = "collection" if method == "Delete" else "name"
        setattr(msg, field, draw(st.sampled_from(["zoo", "fz"])))


@st.composite
def requests(draw: st.DrawFn) -> tuple[MethodDescriptor, list[bytes]]:
    method = draw(st.sampled_from(METHODS))
    strategy = messages(method.input_type)
    count = draw(st.integers(1, 4)) if method.client_streaming else 1
    msgs = [draw(strategy) for _ in range(count)]
    if draw(st.booleans()):
        for m in msgs:
            _steer(method.name, m, draw)
    return method, [m.SerializeToString() for m in msgs]


class Fuzzed:
    """The server under fuzzing and the codes it answered."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.channel = grpc.insecure_channel(f"127.0.0.1:{app.port}")
        self.codes: Counter[str] = Counter()
        self.requests = 0

    def send(self, method: MethodDescriptor, payloads: list[bytes]) -> None:
        self.requests += 1
        path = f"/{method.containing_service.full_name}/{method.name}"
        try:
            if method.client_streaming:
                list(self.channel.stream_stream(path)(iter(payloads), timeout=60))
            else:
                raw_call(self.channel, method, payloads[0], timeout=60)
            code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            code = exc.code()
            assert code not in NEVER, f"{method.full_name}: {code.name} {exc.details()} for {payloads!r:.300}"
        self.codes[f"{method.name}:{code.name}"] += 1


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    app = create_server(fake_settings(tmp_path_factory.mktemp("fuzz"), max_encoders=3))
    with Client(f"127.0.0.1:{app.port}", timeout=30, retries=0) as c:
        for name in (KEPT, "zoo"):
            c.create_collection(name, indexed_fields={"kind": "keyword", "legs": "integer"})
            acks = list(c.ingest(name, [text_item(k, t, m) for k, (t, m) in ANIMALS.items()]))
            assert all(a.ok for a in acks)
        before = [(r.document_id, r.score) for r in c.search(KEPT, "mice at night").results]
    fz = Fuzzed(app)
    yield fz
    # After everything: healthy, and what was written before is as it was.
    with Client(f"127.0.0.1:{app.port}", timeout=30, retries=0) as c:
        assert c.health() == "SERVING"
        assert [(r.document_id, r.score) for r in c.search(KEPT, "mice at night").results] == before
        assert c.get_collection(KEPT).document_count == len(ANIMALS)
    print(f"\nfuzz: {fz.requests} requests; codes: {dict(sorted(fz.codes.items()))}")
    fz.channel.close()
    app.stop(grace=None)


def _names_kept(payloads: list[bytes], method: MethodDescriptor) -> bool:
    """No fuzzed request touches the collection kept for the integrity check."""
    cls = message_factory.GetMessageClass(method.input_type)
    for p in payloads:
        m = cls.FromString(p)
        if KEPT in str(m):
            return True
    return False


@FUZZ_SETTINGS
@given(call=requests())
def test_fuzzed_requests_never_get_internal(fuzzed: Fuzzed, call: tuple[MethodDescriptor, list[bytes]]) -> None:
    method, payloads = call
    if _names_kept(payloads, method):
        return
    fuzzed.send(method, payloads)


@FUZZ_SETTINGS
@given(method=st.sampled_from(METHODS), data=st.binary(max_size=120))
def test_raw_bytes_never_get_internal(fuzzed: Fuzzed, method: MethodDescriptor, data: bytes) -> None:
    try:
        if _names_kept([data], method):
            return
    except Exception:  # not a message at all: it cannot name the kept collection
        pass
    fuzzed.send(method, [data])
