"""The package layering of ``nce_tf``, read statically off every ``import`` in its source.

Imports inside functions count too (they are how circles hide).  Layers, bottom up:
``models`` (pure Keras builders) and the search's core (``search``: graph types, super-net,
cost model) know nothing of users' model files or jobs; ``adapter`` reads Keras graphs into
the search's graph types; ``sources`` resolves a model name (zoo or ``keras:PATH``) above both;
``jobs`` run what the tools run, above everything they use.
"""

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "nce_tf")


def _modules():
    out = {}
    for dirpath, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
                out[rel.removesuffix(".__init__")] = path
    return out


def _unit(module):
    """``nce_tf.search.space`` -> ``nce_tf.search``: the first level below ``nce_tf``."""
    return ".".join(module.split(".")[:2])


def _imports(module, path):
    """Every ``nce_tf`` module that ``module``'s source imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
                for _ in range(node.level - 1):
                    parent = parent.rsplit(".", 1)[0]
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {name for name in found if name == "nce_tf" or name.startswith("nce_tf.")}


@pytest.fixture(scope="module")
def unit_graph():
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        for name in _imports(module, path):
            while name not in modules and "." in name:  # ``from pkg.mod import function``
                name = name.rsplit(".", 1)[0]
            if name in modules and _unit(name) not in (_unit(module), "nce_tf"):
                graph.setdefault(_unit(module), set()).add(_unit(name))
    return graph


def _reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_circle_between_packages(unit_graph):
    circles = sorted(unit for unit in unit_graph if unit in _reachable(unit_graph, unit))
    assert not circles, {u: sorted(unit_graph[u]) for u in circles}


@pytest.mark.parametrize("low, high", [
    ("nce_tf.models", "nce_tf.sources"), ("nce_tf.models", "nce_tf.adapter"), ("nce_tf.models", "nce_tf.search"),
    ("nce_tf.search", "nce_tf.sources"), ("nce_tf.search", "nce_tf.jobs"), ("nce_tf.search", "nce_tf.train"),
    ("nce_tf.adapter", "nce_tf.sources"), ("nce_tf.train", "nce_tf.jobs"),
])
def test_lower_layers_do_not_reach_up(unit_graph, low, high):
    assert high not in _reachable(unit_graph, low), f"{low} imports {high} (directly or through others)"


def test_the_check_sees_a_circle():
    # The checker itself: a circle built by hand is found, a chain is not.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert {u for u in graph if u in _reachable(graph, u)} == {"a", "b", "c"}
