"""Every module's docstring example runs as written (the examples are part of the docs)."""

import doctest
import importlib
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "nce_tf")
MODULES = sorted(
    os.path.relpath(os.path.join(d, f), os.path.dirname(ROOT))[:-3].replace(os.sep, ".").removesuffix(".__init__")
    for d, _, files in os.walk(ROOT) for f in files
    if f.endswith(".py") and ">>>" in open(os.path.join(d, f), encoding="utf-8").read())


@pytest.mark.parametrize("name", MODULES)
def test_module_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, f"{name}: {result.failed} of {result.attempted} failed"
