"""No import cycles: in the Python package (none allowed) and in the Rust crate's ``src/``
(issue 17: none; ``KNOWN_SRC_CYCLES`` below stays empty).

Python: every ``import`` / ``from … import`` of a module of ``switchover`` counts, also the
ones inside functions (a cycle hidden in a function is still a cycle: the two modules cannot
be understood, tested or moved apart). ``from .pkg import x`` is an import of the submodule
``pkg.x`` when there is one, else of ``pkg``; a module's own package (whose ``__init__`` Python
runs first anyway) is not counted unless it is imported by name.

Rust: a file's uses of another file of the crate, through ``crate::a::b`` or ``super::``
paths anywhere in it (``use`` lines and inline paths alike); a path names the deepest file it
reaches (``crate::engine::Reason`` is ``src/engine/mod.rs``). A module and the modules inside
it (``ffi/mod.rs`` and ``ffi/types.rs``) are one unit for this check: ``mod.rs`` declaring and
re-exporting its children while they ``use super::*`` is how a Rust module is built, not a
cycle between concepts.
"""
from __future__ import annotations

import ast
import os
import re

import pytest

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PACKAGE = os.path.join(REPO, "python", "switchover")
SRC = os.path.join(REPO, "src")

#: The cycles src/ still has, each as the set of files in it: none since issue 17 (the last,
#: ffi/versioned <-> ffi/engine, ram, vfio, was its layout test naming every out-struct: now
#: ffi/layout_tests.rs). Keep it empty.
KNOWN_SRC_CYCLES: list[frozenset[str]] = []


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm: the components with more than one node (or a self-loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# ---- Python ----------------------------------------------------------------------------------

def python_modules() -> dict[str, str]:
    """Dotted module name -> file, for every module of the package."""
    modules = {}
    for root, _dirs, files in os.walk(PACKAGE):
        for f in files:
            if not f.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(root, f), os.path.dirname(PACKAGE))[:-3]
            parts = rel.split(os.sep)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = os.path.join(root, f)
    return modules


def python_imports(name: str, path: str, modules: dict[str, str]) -> set[str]:
    is_package = path.endswith("__init__.py")
    package = name if is_package else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from .pkg import name`: the submodule `pkg.name` when there is one, else `pkg`.
            for a in node.names:
                sub = f"{base}.{a.name}"
                targets.add(sub if sub in modules else base)
    return {t for t in targets if t in modules and t != name}


def python_graph() -> dict[str, set[str]]:
    modules = python_modules()
    return {name: python_imports(name, path, modules) for name, path in modules.items()}


def test_the_python_graph_sees_the_imports_it_must():
    g = python_graph()
    assert "switchover._native" in g["switchover.errors"]
    assert "switchover.sim.scenario" in g["switchover.sim.run"]
    assert "switchover.session" in g["switchover"]


def test_a_planted_python_cycle_is_found():
    g = {k: set(v) for k, v in python_graph().items()}
    g["switchover._native"].add("switchover.errors")
    assert any({"switchover._native", "switchover.errors"} <= c for c in strongly_connected(g))


def test_the_python_package_has_no_import_cycle():
    cycles = strongly_connected(python_graph())
    assert not cycles, "import cycles in python/switchover: " + "; ".join(
        " <-> ".join(sorted(c)) for c in cycles)


# ---- Rust --------------------------------------------------------------------------------------

def rust_files() -> dict[tuple[str, ...], str]:
    """Module path (``("engine", "step")``; ``()`` for lib.rs) -> file, for every file of src/."""
    files = {}
    for root, _dirs, names in os.walk(SRC):
        for f in names:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), SRC)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib"):
                rel.pop()
            files[tuple(rel)] = os.path.relpath(os.path.join(root, f), REPO)
    return files


# A path into the crate: `crate::a::b`, `super::a`, `super::super::a`; and the items of a `use`
# group: `use crate::a::{b, c::d}`.
PATH = re.compile(r"\b(crate|super)((?:::super)*)((?:::[A-Za-z_][A-Za-z0-9_]*)*)(::\{[^;]*?\})?")


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def rust_targets(module: tuple[str, ...], text: str, files) -> set[tuple[str, ...]]:
    targets = set()
    for m in PATH.finditer(strip_comments(text)):
        if m.group(1) == "crate":
            base: tuple[str, ...] = ()
        else:
            # `super` from a file is its parent module; each further `super` one more up.
            ups = 1 + m.group(2).count("super")
            base = module[:len(module) - ups] if ups <= len(module) else ()
        head = [p for p in m.group(3).split("::") if p]
        tails = [[]]
        if m.group(4):
            tails = [[p for p in re.split(r"::", t.strip()) if p and p != "self"]
                     for t in re.sub(r"[{}]", ",", m.group(4)[2:]).split(",") if t.strip()]
        for tail in tails:
            path = list(base) + head + tail
            while tuple(path) not in files:
                path.pop()
            targets.add(tuple(path))
    return targets


def related(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """One module inside the other (the same unit for this check)."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def rust_graph() -> dict[str, set[str]]:
    files = rust_files()
    graph = {}
    for module, path in files.items():
        text = open(os.path.join(REPO, path)).read()
        graph[path] = {files[t] for t in rust_targets(module, text, files)
                       if not related(t, module)}
    return graph


def test_the_rust_graph_sees_the_uses_it_must():
    g = rust_graph()
    assert "src/error.rs" in g["src/counters.rs"]          # use crate::error::{Error, Result}
    assert "src/engine/mod.rs" in g["src/ffi/status.rs"]   # use crate::engine::Reason
    assert "src/ffi/mod.rs" not in g["src/ffi/types.rs"]   # a module's own parts are one unit
    assert not any(p.startswith("src/ffi/") for p in g["src/counters.rs"])  # the core never imports ffi


def test_a_planted_rust_cycle_is_found():
    g = {k: set(v) for k, v in rust_graph().items()}
    g["src/error.rs"].add("src/counters.rs")
    assert any({"src/error.rs", "src/counters.rs"} <= c for c in strongly_connected(g))


def test_src_has_no_import_cycle_beyond_the_known_ones():
    cycles = [frozenset(c) for c in strongly_connected(rust_graph())]
    new = [c for c in cycles if not any(c <= known for known in KNOWN_SRC_CYCLES)]
    assert not new, "new import cycles in src/: " + "; ".join(
        " <-> ".join(sorted(c)) for c in new)
    gone = [k for k in KNOWN_SRC_CYCLES if not any(k & c for c in cycles)]
    assert not gone, ("a known cycle is gone: take it out of KNOWN_SRC_CYCLES: "
                      + "; ".join(" <-> ".join(sorted(k)) for k in gone))


@pytest.mark.parametrize("text, expected", [
    ("use crate::engine::{Reason, step::x};", {("engine",), ("engine", "step")}),
    ("let a = crate::counters::switchover_bw(1);", {("counters",)}),
    ("use super::*;", {("ffi",)}),
    ("// use crate::vfio::X;", set()),
])
def test_rust_paths_are_read_as_written(text, expected):
    files = {(): "src/lib.rs", ("engine",): "e", ("engine", "step"): "s", ("counters",): "c",
             ("ffi",): "f", ("ffi", "types"): "t", ("vfio",): "v"}
    assert rust_targets(("ffi", "types"), text, files) == expected
