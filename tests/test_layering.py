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


def test_no_import_circle_between_modules():
    # Module by module too, imports inside functions included (a circle closed by an import in a function is
    # still a circle). Packages' __init__ files are left out: they re-export their modules by name.
    modules = _modules()
    packages = {m for m, path in modules.items() if path.endswith("__init__.py")}
    graph = {}
    for module, path in modules.items():
        for name in _imports(module, path):
            while name not in modules and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in modules and name not in packages and name != module and module not in packages:
                graph.setdefault(module, set()).add(name)
    circles = sorted(m for m in graph if m in _reachable(graph, m))
    assert not circles, {m: sorted(graph[m]) for m in circles}


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


# ------------------------------------------------------------------ one reader of Keras layer types

REGISTRY = os.path.join(PACKAGE, "search", "ops")  # the op registry: the one package that knows Keras layer classes
GRAPH_TYPES = {"Model", "Sequential", "Functional"}  # a model's own kind (nesting, Sequential), not a layer type


def _layer_class_names():
    import keras

    import nce_tf.layers

    names = set()
    for module in (keras.layers, nce_tf.layers):
        names |= {n for n in dir(module) if isinstance(getattr(module, n), type)
                  and issubclass(getattr(module, n), keras.layers.Layer)}
    return names - GRAPH_TYPES


def _names_in(node):
    """The names an expression mentions (``keras.layers.Conv2D`` -> ``Conv2D``), constants included."""
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute):
            out.add(sub.attr)
        elif isinstance(sub, ast.Name):
            out.add(sub.id)
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            out.add(sub.value)
    return out


def _keras_names(tree, classes):
    """Names that stand for Keras layer classes in a module: imported from ``keras`` or
    ``nce_tf.layers`` (an op class of the same name, ``nce_tf.search.ops.Add``, is not one)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "keras" or (
                isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nce_tf.layers")):
            out |= {a.asname or a.name for a in node.names if a.name in classes}
    return out


def _is_layer_class(expr, imported, classes):
    """Whether a class expression names a Keras layer class: ``<x>.layers.Conv2D``, ``L.Conv2D``, or
    a name the module imported as one (also inside a tuple)."""
    for sub in ast.walk(expr):
        if isinstance(sub, ast.Name) and sub.id in imported:
            return True
        if isinstance(sub, ast.Attribute) and sub.attr in classes and (
                "layers" in _names_in(sub.value) or getattr(sub.value, "id", None) == "L"):
            return True
    return False


_TYPE_NAMES = {"kind", "class_name", "__name__"}  # how a layer's type is read as a name


def _layer_class_tests(source, classes):
    """``(line, code)`` of every test of a Keras layer class in ``source``: ``isinstance`` /
    ``issubclass`` against one, ``type(x)`` compared with anything, and a type's name
    (``ref.kind``, ``config["class_name"]``, ``__name__``) compared with a layer class's name."""
    tree = ast.parse(source)
    imported = _keras_names(tree, classes)
    found = []
    for node in ast.walk(tree):
        hit = False
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("isinstance", "issubclass"):
            hit = len(node.args) == 2 and _is_layer_class(node.args[1], imported, classes)
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            typed = any(isinstance(s, ast.Call) and getattr(s.func, "id", None) == "type" for s in sides)
            named = any(isinstance(s, (ast.Constant, ast.Tuple, ast.List, ast.Set)) and _names_in(s) & classes
                        for s in sides) and any(_names_in(s) & _TYPE_NAMES for s in sides)
            hit = typed or named
        if hit:
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_no_module_outside_the_op_registry_tests_keras_layer_classes():
    classes = _layer_class_names()
    offenders = {}
    for module, path in _modules().items():
        if path.startswith(REGISTRY + os.sep):
            continue
        tests = _layer_class_tests(open(path, encoding="utf-8").read(), classes)
        if tests:
            offenders[module] = tests
    assert not offenders, offenders


def test_the_class_test_check_sees_each_form():
    classes = {"Conv2D", "ReLU", "QuantActivation"}
    source = ("from nce_tf.layers import QuantActivation\nfrom nce_tf.search.ops import ReLU\n"
              "isinstance(layer, keras.layers.Conv2D)\nissubclass(t, (L.ReLU, int))\ntype(layer) in (A, B)\n"
              "ref.kind == 'Conv2D'\nentry['class_name'] in ('ReLU', 'x')\nisinstance(s, QuantActivation)\n"
              "isinstance(model, keras.Model)\nnode.op == 'conv'\nisinstance(x, (list, tuple))\n"
              "isinstance(op, ReLU)\n'ReLU' in text\n")
    assert [line for line, _ in _layer_class_tests(source, classes)] == [3, 4, 5, 6, 7, 8]


# ------------------------------------------------------------------ imports inside functions say why

def _unexplained_imports(source):
    """``(line, code)`` of every import inside a function without a comment saying why: on its line, or
    on the line above its block (consecutive imports, isort's blank lines between groups included)."""
    lines = source.splitlines()
    found = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            above = node.lineno - 2
            while above >= 0 and (not lines[above].strip() or lines[above].lstrip().startswith(("import ", "from "))
                                  and "#" not in lines[above]):
                above -= 1
            explained = "#" in lines[node.lineno - 1] or (
                above >= 0 and (lines[above].lstrip().startswith("#") or lines[above].lstrip().startswith(
                    ("import ", "from "))))
            if not explained:
                found.append((node.lineno, lines[node.lineno - 1].strip()))
    return sorted(set(found))


def test_every_import_inside_a_function_says_why():
    offenders = {}
    for module, path in _modules().items():
        unexplained = _unexplained_imports(open(path, encoding="utf-8").read())
        if unexplained:
            offenders[module] = unexplained
    assert not offenders, offenders


def test_the_import_check_sees_an_unexplained_import():
    source = ("import os\n\ndef a():\n    import json\n\ndef b():\n    # TensorFlow: this module stays light\n"
              "    import keras\n\n    import numpy as np\n\ndef c():\n    import csv  # optional\n"
              "    x = 1\n    import io\n")
    assert _unexplained_imports(source) == [(4, "import json"), (15, "import io")]


def test_at_most_three_functions_over_sixty_lines():
    # Issue 27's bound on long functions in the package (a long function is usually several jobs in one).
    long = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                long.append(f"{module}.{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert len(long) <= 3, long
