"""Provenance: which code, which libraries and how much time made a result (no TensorFlow import).

Every run records a ``provenance`` entry beside its result (``metrics.json`` of a training,
``arch.json`` of a search, the study's rows, an export's ``model_card.json``)::

    {"format": "nce_tf.provenance/1",
     "nce_tf": "0.1.0", "source": "checkout", "commit": "d5a41a2...", "dirty": false, "git": null,
     "versions": {"python": "3.11.2", "tensorflow": "2.21.0", "keras": "3.15.1", "numpy": "2.4.6"},
     "times": {"wall_seconds": 812.4, "cpu_seconds": 1490.2,
               "phases": {"setup": {...}, "fit": {"wall_seconds": 790.1, "cpu_seconds": 1460.8}, "result": {...}},
               "sittings": [{"started": "2025-01-01T10:00:00Z", "wall_seconds": 400.2, "cpu_seconds": 700.1,
                             "nce_tf": "0.1.0", "commit": "d5a41a2...", "dirty": false}, ...]}}

- **Code** (:func:`code_state`): the nce-tf version; from a checkout (a ``setup.py`` beside the
  package, as :func:`checkout_root` reads it) the git commit and whether tracked
  files differ from it (``dirty``, as ``git describe --dirty``: untracked files such as run
  directories do not count). An installed package has no commit (``source: "installed"``); when
  git is missing or fails, ``commit`` and ``dirty`` are ``None`` and ``git`` says why. Taken once
  per process, when a tool starts (or at the first run in a notebook): the code a process imported
  is the code that ran, whatever is edited or committed meanwhile.
- **Versions** (:func:`versions`): Python, and TensorFlow / Keras / numpy as imported by this
  process (their installed distributions' versions when not imported: this module never imports
  TensorFlow).
- **Times** (:class:`PhaseClock`): wall and CPU time per phase, summed over the sittings of a run
  (a run killed and resumed adds each sitting's time). The totals live in a small JSON file in the
  work directory, rewritten at every checkpoint, so a crash loses at most the time since the last
  one. CPU time is the process's (``time.process_time``: every thread, user and system), so it
  exceeds wall time when TensorFlow runs ops on several cores.

Example:

>>> clock = PhaseClock()            # in memory; PhaseClock(path) keeps the totals in a file
>>> clock.phase("fit")
>>> entry = record(clock)
>>> sorted(entry["times"]["phases"]), entry["times"]["sittings"][0]["nce_tf"] == entry["nce_tf"]
(['fit'], True)
"""

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time

from nce_tf import __version__

from nce_tf.io_utils import atomic_write_json

FORMAT = "nce_tf.provenance/1"
TIMES_FORMAT = "nce_tf.times/1"
GIT_TIMEOUT = 10  # seconds: a git that hangs (a network file system) must not hold up a run

# module name -> distribution name, for the libraries a result depends on
LIBRARIES = {"tensorflow": "tensorflow", "keras": "keras", "numpy": "numpy"}


def _package_dir():
    return os.path.dirname(os.path.abspath(__file__))


def checkout_root(package_dir=None):
    """The repository root when nce-tf (or the ``nce_tf`` package at ``package_dir``) runs from a
    checkout (editable or not), else None."""
    root = os.path.dirname((package_dir or _package_dir()).rstrip(os.sep))
    markers = (os.path.join(root, "setup.py"), os.path.join(root, "flags"))
    return root if all(os.path.exists(m) for m in markers) else None


def _git(root, *args):
    """``git -C root ARGS``'s stdout, stripped; raises ``RuntimeError`` with a one-line reason."""
    # GIT_OPTIONAL_LOCKS=0: `git status` must not take the index lock of a checkout someone works in.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, env=env,
                              timeout=GIT_TIMEOUT, check=False)
    except FileNotFoundError:
        raise RuntimeError("git not found") from None
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"git {args[0]} timed out after {GIT_TIMEOUT} s") from None
    if proc.returncode:
        reason = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[0]
        raise RuntimeError(f"git {args[0]} failed: {reason}")
    return proc.stdout.strip()


_LOADED = {}  # this process's own code state, taken once (code_state without package_dir)


def code_state(package_dir=None):
    """The nce-tf version, and the git commit and dirty flag when it runs from a checkout.

    For this process's own nce-tf (no ``package_dir``) the state is read once, at the first call,
    and kept: the code a process imported does not change when the checkout moves on, so a notebook
    or a study running many runs in one process records the code it loaded, not a later commit.
    The tools make that first call as they start (:func:`nce_tf.cli.run`).

    Args:
        package_dir: the ``nce_tf`` package directory (default: this module's, read once).

    Returns:
        ``{"nce_tf", "source", "commit", "dirty", "git"}``: ``source`` is ``"checkout"`` or
        ``"installed"``; ``commit`` the 40-hex ``HEAD`` and ``dirty`` whether tracked files differ
        from it (``None`` both when not a checkout or git failed); ``git`` the reason for ``None``
        (``None`` when the commit was read).
    """
    if package_dir is None:
        if not _LOADED:
            _LOADED.update(code_state(_package_dir()))
        return dict(_LOADED)
    package_dir = os.path.abspath(package_dir)
    state = {"nce_tf": _version_of(package_dir, __version__), "source": "installed", "commit": None, "dirty": None,
             "git": None}
    root = checkout_root(package_dir)
    if root is None:
        state["git"] = "not a checkout"
        return state
    state["source"] = "checkout"
    try:
        top = _git(root, "rev-parse", "--show-toplevel")
        # The checkout must be the repository's root, not a folder inside some other repository.
        if os.path.realpath(top) != os.path.realpath(root):
            raise RuntimeError(f"the checkout {root} is inside the git repository {top}, not its root")
        state["commit"] = _git(root, "rev-parse", "HEAD")
        state["dirty"] = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    except RuntimeError as e:
        state["git"] = str(e)
    return state


def _version_of(package_dir, default):
    """The ``__version__`` a package directory's ``__init__.py`` declares (``default`` if none)."""
    try:
        with open(os.path.join(package_dir, "__init__.py"), encoding="utf-8") as f:
            for line in f:
                if line.startswith("__version__ = "):
                    return line.split("=", 1)[1].strip().strip("\"'")
    except OSError:
        pass
    return default


def versions():
    """Python's version and the libraries' (``__version__`` of the imported module, else the
    installed distribution's, else ``None``)."""
    out = {"python": platform.python_version()}
    for module, dist in LIBRARIES.items():
        loaded = sys.modules.get(module)
        version = getattr(loaded, "__version__", None) if loaded else None
        if version is None:
            try:
                version = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                version = None
        out[module] = version
    return out


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _add(entry, wall, cpu):
    entry["wall_seconds"] = round(entry.get("wall_seconds", 0.0) + wall, 3)
    entry["cpu_seconds"] = round(entry.get("cpu_seconds", 0.0) + cpu, 3)


class PhaseClock:
    """Wall and CPU time per phase of a run, summed over its sittings.

    A sitting starts when the clock is made (its code state is taken then); :meth:`phase` names
    what the time is spent on from now; :meth:`flush` adds the time since the last flush to the
    current phase (and to this sitting) and, once :meth:`attach`-ed, rewrites the file, so a
    crash loses at most the time since the last flush.

    Args:
        path: the times file (``None``: in memory until :meth:`attach`).
        resume: add to the totals the file holds (a resumed run); else start from zero.
        package_dir: whose code state the sitting records (default: this nce-tf's).
    """

    def __init__(self, path=None, resume=True, package_dir=None):
        code = code_state(package_dir)
        self.sitting = {"started": _now(), "wall_seconds": 0.0, "cpu_seconds": 0.0,
                        **{k: code[k] for k in ("nce_tf", "commit", "dirty")}}
        self.code = code
        self.totals = {"format": TIMES_FORMAT, "phases": {}, "sittings": []}
        self.path, self.current = None, None
        self._mark = (time.perf_counter(), time.process_time())
        if path:
            self.attach(path, resume)

    def attach(self, path, resume=True):
        """Keeps the totals in ``path`` from now on; ``resume``: add to the totals it holds (a
        resumed run; an unreadable file starts from zero), else replace them."""
        self.path = path
        earlier = _read_times(path) if resume else None
        if earlier is not None:
            # this sitting's time so far goes on top of the earlier sittings'
            mine = self.totals
            self.totals = earlier
            for name, entry in mine["phases"].items():
                _add(self.totals["phases"].setdefault(name, {}), entry["wall_seconds"], entry["cpu_seconds"])
        self.flush()

    def phase(self, name):
        """Flushes the time so far to the current phase; the time from now is ``name``'s."""
        self.flush()
        self.current = name

    def flush(self):
        """Adds the time since the last flush to the current phase; rewrites the file (if attached)."""
        now = (time.perf_counter(), time.process_time())
        wall, cpu = now[0] - self._mark[0], now[1] - self._mark[1]
        self._mark = now
        if self.current is not None:
            _add(self.totals["phases"].setdefault(self.current, {}), wall, cpu)
            _add(self.sitting, wall, cpu)
        if self.path:
            atomic_write_json(self.path, self.times())

    def times(self):
        """The totals: ``{"format", "wall_seconds", "cpu_seconds", "phases", "sittings"}`` (this
        sitting last)."""
        phases = {name: dict(entry) for name, entry in self.totals["phases"].items()}
        return {"format": TIMES_FORMAT,
                "wall_seconds": round(sum(e["wall_seconds"] for e in phases.values()), 3),
                "cpu_seconds": round(sum(e["cpu_seconds"] for e in phases.values()), 3),
                "phases": phases, "sittings": [*self.totals["sittings"], dict(self.sitting)]}


def _read_times(path):
    """The earlier sittings' totals a times file holds (``None`` if absent or unreadable)."""
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("format") != TIMES_FORMAT:
        return None
    return {"format": TIMES_FORMAT, "phases": saved.get("phases", {}), "sittings": saved.get("sittings", [])}


def record(clock=None):
    """The ``provenance`` entry of a result: code state, versions and (with a ``clock``) the times
    so far (flushed first).

    Args:
        clock: a :class:`PhaseClock`; without one the code state is taken now and no times are given.
    """
    if clock is not None:
        clock.flush()
    code = clock.code if clock is not None else code_state()
    entry = {"format": FORMAT, **code, "versions": versions()}
    if clock is not None:
        entry["times"] = clock.times()
    return entry
