"""Flagfiles by path or by preset name, expanded before absl parses a tool's command line.

A preset is a flagfile shipped with nce-tf, named by its path under the repository's
``flags/`` without ``.flags``: ``quickstart``, ``paper/table2_resnet32_nce_w2a2``,
``cifar_subset/nce_small_budget``.  An installed wheel holds them in ``nce_tf/presets/``; a
checkout reads the repository's ``flags/`` (the one source of both).

``--flagfile=VALUE`` names a file if one exists at ``VALUE`` (relative to the working
directory); otherwise ``VALUE`` is a preset, also when written as a repository path
(``flags/cifar10_base.flags`` is the preset ``cifar10_base``).  The flagfiles include each
other by repository path (``--flagfile=flags/cifar_subset/base.flags``), which absl would
open relative to the working directory only, so :func:`expand` replaces every
``--flagfile`` with the lines of its file, recursively, before absl sees the command line:
a run behaves the same from any directory, installed or not.  The lines are read as absl
reads them (blank lines and ``#`` / ``//`` comments dropped, each line stripped); the order
is kept, so a later flag still wins.

Example:

>>> import os
>>> os.path.basename(resolve("flags/quickstart.flags"))
'quickstart.flags'
>>> "--model=resnet32" in expand(["tool", "--flagfile=paper/table2_resnet32_nce_w2a2"])
True
>>> "quickstart" in dict(list_presets())
True
"""

import os

from nce_tf.errors import UsageError

SUFFIX = ".flags"
_DIRECTIVES = ("--flagfile", "-flagfile")
# The nce_tf package directory (this module is nce_tf/cli/flagfiles.py).
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_HINT = "see `nce-tf presets`, or `python tools/presets.py` in a checkout"


def presets_dir():
    """The directory of the presets: the wheel's ``nce_tf/presets/``, else a checkout's ``flags/``."""
    installed = os.path.join(_PACKAGE, "presets")
    return installed if os.path.isdir(installed) else os.path.join(os.path.dirname(_PACKAGE), "flags")


def preset_name(value):
    """``flags/paper/x.flags``, ``paper/x.flags`` and ``paper/x`` all name the preset ``paper/x``."""
    name = value.replace(os.sep, "/").removeprefix("./").removeprefix("flags/")
    return name.removesuffix(SUFFIX)


def resolve(value):
    """The file a ``--flagfile`` value names: an existing path, else the preset's file.

    Args:
        value: what follows ``--flagfile=``.

    Returns:
        The path of the flagfile to read.

    Raises:
        UsageError: neither a file nor a preset of that name exists.
    """
    path = os.path.expanduser(value.strip())
    if os.path.isfile(path):
        return path
    name = preset_name(path)
    preset = os.path.join(presets_dir(), *name.split("/")) + SUFFIX
    if name and not os.path.isabs(path) and ".." not in name.split("/") and os.path.isfile(preset):
        return preset
    raise UsageError(f"No flagfile or preset of that name. Received: flagfile={value!r}. "
                     f"Allowed: an existing file, or a preset name ({_HINT}).")


def _lines(path, stack):
    if path in stack:
        raise UsageError(f"Flagfiles include each other in a circle. Received: flagfile={path!r} "
                         f"included again by {stack[-1]!r}.")
    with open(path, encoding="utf-8") as f:
        raw = f.readlines()
    out = []
    for line in raw:
        text = line.strip()
        if not text or line.startswith(("#", "//")):
            continue
        out.extend(_expand_args([text], [*stack, path]))
    return out


def _expand_args(args, stack):
    out, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":  # absl passes everything after it through as positional arguments
            return out + args[i:]
        if arg in _DIRECTIVES and i + 1 < len(args):
            out.extend(_lines(resolve(args[i + 1]), stack))
            i += 2
            continue
        name, eq, value = arg.partition("=")
        if eq and name in _DIRECTIVES:
            out.extend(_lines(resolve(value), stack) if value.strip() else [])
        else:
            out.append(arg)
        i += 1
    return out


def expand(argv):
    """``argv`` with every ``--flagfile`` replaced by the lines of its file, recursively.

    Args:
        argv: a command line, program name first (as absl takes it).

    Returns:
        The same command line without flagfile directives, in order.

    Raises:
        UsageError: a flagfile that is neither a file nor a preset, or a circle of includes.
    """
    return argv[:1] + _expand_args(list(argv[1:]), [])


def describe(path):
    """The first comment line of a flagfile, without its ``#``."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                return line.lstrip("#").strip()
    return ""


def list_presets():
    """``(name, first comment line)`` of every preset, sorted by name."""
    root = presets_dir()
    found = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(SUFFIX):
                path = os.path.join(dirpath, f)
                found.append((preset_name(os.path.relpath(path, root)), describe(path)))
    return sorted(found)
