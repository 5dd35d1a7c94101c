"""Which part of mmsearch may import which (read from the sources, not run):

- the domain (server/ outside server/services/) knows nothing of the wire: no generated protos
  (mmsearch.v1), no proto helpers (mmsearch.protocol.wire); services convert at the edge;
- the server never imports the client; the encoders import neither; the vocabulary (protocol/)
  imports none of them, and protocol/vocab.py no protos;
- encoders do not import their registry (it names them, in a table imported lazily);
- no import cycle between the packages, nor between modules (imports inside functions count,
  `if TYPE_CHECKING:` ones do not).
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
V1 = "mmsearch.v1"


def _modules() -> dict[str, Path]:
    folders = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    out = {}
    for package, folder in folders.items():
        if package == V1:  # generated
            continue
        for f in (ROOT / folder).rglob("*.py"):
            parts = f.relative_to(ROOT / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            out[".".join((package, *parts))] = f
    return out


MODULES = _modules()


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name | ast.Attribute) and ast.unparse(node.test).endswith("TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            yield from (n for child in node.orelse for n in _import_nodes(ast.Module(body=[child], type_ignores=[])))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        else:
            yield from _import_nodes(node)


def imports(module: str) -> set[str]:
    """The mmsearch modules `module` imports (mmsearch.v1 as one), however deep in the file."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for name in names:
            if name == V1 or name.startswith(V1 + "."):
                found.add(V1)
            elif name.startswith("mmsearch."):
                found.add(name)
    return found


GRAPH = {m: imports(m) for m in MODULES}


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _importers(of: str, among: str, but: tuple[str, ...] = ()) -> list[str]:
    return sorted(
        m
        for m, deps in GRAPH.items()
        if _under(m, among) and not any(_under(m, b) for b in but) and any(_under(d, of) for d in deps)
    )


def test_the_walk_sees_the_imports() -> None:
    # The walk must find what is there, or the rules below would pass on nothing.
    assert "mmsearch.protocol.wire" in GRAPH["mmsearch.server.services.search"]
    assert V1 in GRAPH["mmsearch.server.services"]
    assert "mmsearch.server.cli" in GRAPH["mmsearch.client.cli"]  # lazily, inside main
    assert "mmsearch.encoders.registry" in GRAPH["mmsearch.encoders.pool"]
    assert len(MODULES) > 60


@pytest.mark.parametrize(
    ("of", "among", "but"),
    [
        (V1, "mmsearch.server", ("mmsearch.server.services",)),
        ("mmsearch.protocol.wire", "mmsearch.server", ("mmsearch.server.services",)),
        ("mmsearch.client", "mmsearch.server", ()),
        ("mmsearch.client", "mmsearch.encoders", ()),
        ("mmsearch.server", "mmsearch.encoders", ()),
        (V1, "mmsearch.encoders", ()),
        ("mmsearch.server", "mmsearch.protocol", ()),
        ("mmsearch.client", "mmsearch.protocol", ()),
        ("mmsearch.encoders", "mmsearch.protocol", ()),
        (V1, "mmsearch.protocol.vocab", ()),
        ("mmsearch.encoders.registry", "mmsearch.encoders", ("mmsearch.encoders.pool",)),
    ],
)
def test_layer(of: str, among: str, but: tuple[str, ...]) -> None:
    assert _importers(of, among, but) == [], f"{among} (but {but}) must not import {of}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    top = {m: ".".join(m.split(".")[:2]) for m in MODULES}
    packages: dict[str, set[str]] = {}
    for m, deps in GRAPH.items():
        packages.setdefault(top[m], set()).update(top.get(d, d) for d in deps if top.get(d, d) != top[m])
    assert _cycles(packages) == []
    # Within packages too, but a package's __init__ may import its own modules (and they it).
    modules = {m: {d for d in deps if d in MODULES and not _under(m, d)} for m, deps in GRAPH.items()}
    assert _cycles(modules) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
