"""Child Python processes that import this very ``nce_tf``, installed or run from a checkout.

A checkout is not on ``sys.path`` of a new interpreter (the tools put it there themselves), so
the child's ``PYTHONPATH`` starts with the directory holding this ``nce_tf``.

Example:

>>> command, env = python_module("nce_tf", "presets")
>>> command[1:]
['-m', 'nce_tf', 'presets']
>>> import nce_tf, os
>>> env["PYTHONPATH"].split(os.pathsep)[0] == os.path.dirname(os.path.dirname(nce_tf.__file__))
True
"""

import os
import sys


def env(extra=None):
    """The current environment with this ``nce_tf`` first on ``PYTHONPATH``, plus ``extra``."""
    out = dict(os.environ, **(extra or {}))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # nce_tf/cli/child.py -> checkout
    out["PYTHONPATH"] = os.pathsep.join(p for p in (root, out.get("PYTHONPATH", "")) if p)
    return out


def python(*args, extra_env=None):
    """``(command, environment)`` running ``python args`` (``-m module ...``, ``-c code ...``) with this ``nce_tf``."""
    return [sys.executable, *args], env(extra_env)


def python_module(module, *args, extra_env=None):
    """``(command, environment)`` running ``python -m module args`` with this ``nce_tf``."""
    return python("-m", module, *args, extra_env=extra_env)
