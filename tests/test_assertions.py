"""The suite's own assertions (issue 30): no test asserts only a range, a file's existence or a type.

Read statically off every test function: its ``assert`` statements, each classed ``range``
(``a <= x <= b``), ``exists`` (``os.path.exists`` / ``isfile`` / ``isdir``) or ``type``
(``isinstance``); a test whose every assertion is one of those, with no ``assert_*`` call and no
``pytest.raises``, checks less than the values it could.
"""

import ast
import glob
import os

TESTS = os.path.dirname(os.path.abspath(__file__))


def weak_kind(test):
    """``"range"``, ``"exists"`` or ``"type"`` for a weak assertion's expression, else None."""
    if isinstance(test, ast.Compare) and len(test.ops) == 2 and all(isinstance(o, (ast.Lt, ast.LtE)) for o in test.ops):
        return "range"
    if isinstance(test, ast.Call):
        name = ast.unparse(test.func)
        if name.endswith(("exists", "isfile", "isdir")):
            return "exists"
        if name == "isinstance":
            return "type"
    if isinstance(test, ast.BoolOp):
        kinds = {weak_kind(v) for v in test.values}
        return kinds.pop() if len(kinds) == 1 and None not in kinds else None
    return None


def only_weak_tests(source):
    """The test functions of ``source`` whose assertions are all weak (see the module doc)."""
    out = []
    for fn in ast.walk(ast.parse(source)):
        if not (isinstance(fn, ast.FunctionDef) and fn.name.startswith("test_")):
            continue
        asserts = [n for n in ast.walk(fn) if isinstance(n, ast.Assert)]
        stronger = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and "assert" in ast.unparse(n.func)
                    or isinstance(n, ast.withitem) and "raises" in ast.unparse(n.context_expr)]
        if asserts and not stronger and all(weak_kind(a.test) for a in asserts):
            out.append(fn.name)
    return out


def test_the_scan_sees_a_weak_test_and_passes_a_value_check():
    source = '''
def test_weak(tmp_path):
    assert 0 <= f() <= 1
    assert os.path.exists(tmp_path) and os.path.isfile(tmp_path)
    assert isinstance(g(), int)

def test_value():
    assert 0 <= f() <= 1
    assert f() == 0.25

def test_value_by_numpy():
    assert isinstance(g(), int)
    np.testing.assert_allclose(g(), 3)
'''
    assert only_weak_tests(source) == ["test_weak"]


def test_no_test_of_the_suite_asserts_only_a_range_an_existence_or_a_type():
    weak = {}
    for path in sorted(glob.glob(os.path.join(TESTS, "test_*.py"))):
        with open(path, encoding="utf-8") as f:
            found = only_weak_tests(f.read())
        if found:
            weak[os.path.basename(path)] = found
    assert not weak, weak
