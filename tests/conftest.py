"""Test session set-up: two logical CPU devices, so tests can run MirroredStrategy here.

The logical devices must be configured before TensorFlow runs its first op, which is
why this happens at import time of the conftest (pytest loads it first).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite runs as two pytest-xdist workers on two cores, and many tests start tools as
# subprocesses beside them. TensorFlow's default intra-op pool has one thread per core in every
# process, so the processes' pools fight for the same cores; one intra-op thread each measured
# 12% less CPU and wall time over the search, layer and distribution tests. Inherited by the
# subprocesses; a value set by the caller wins.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(_cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)


# ---------------------------------------------------------------- the wheel test, on request
def pytest_addoption(parser):
    parser.addoption("--wheel", action="store_true",
                     help="run the tests marked `wheel` (tests/test_wheel.py: build the wheel, install it into a "
                          "fresh venv, run the installed commands; about a minute), which are deselected otherwise")
    parser.addoption("--slow", action="store_true",
                     help="run the tests marked `slow` (the longest end-to-end runs: distribution, multi-worker, "
                          "a study, a keras.applications-style adaptation, the README's API example: about 5 "
                          "minutes on 2 cores; the four keras.applications networks of test_applications.py: "
                          "about 23 minutes more on 2 busy cores), which are deselected otherwise")


def pytest_configure(config):
    config.addinivalue_line("markers", "wheel: builds and installs the wheel; runs only with --wheel")
    config.addinivalue_line("markers", "slow: an end-to-end test of a minute or more; runs only with --slow")
    config.addinivalue_line("markers", "heavy: a test of 15 s or more in the suite; collected first (see below)")


def pytest_collection_modifyitems(config, items):
    # The heavy tests first: pytest-xdist hands tests out in collection order, so a heavy test
    # collected last can leave one worker running alone for its whole length at the end.
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)  # stable: file order otherwise
    # Deselected, not skipped: CI runs them as steps of their own (.ci/run), outside the suite's
    # 10-minute budget, which issue 14 allows for the wheel; the slow end-to-end tests likewise (the
    # suite measured 15 minutes with them on 2 cores, 2026-12-06).
    wanted = {name for name in ("wheel", "slow") if config.getoption(f"--{name}")}
    keep, dropped = [], []
    for item in items:
        marks = {name for name in ("wheel", "slow") if item.get_closest_marker(name)}
        (dropped if marks - wanted else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


# ---------------------------------------------------------------- a task short runs can learn
import collections  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Ten flat colours, far apart (the 8 corners of the 40..215 RGB cube, mid grey, and violet), under
# Gaussian pixel noise (sigma 30).  The built-in synthetic task needs frequency and orientation
# detectors: a 2-epoch W2A2 ResNet-8 run on it ends at chance (11.7%), so short runs on it cannot
# show that training works.  This task can be learnt in ten-odd steps (measured: W2A2 ResNet-8,
# 16 steps of 32 images, seeds 0/1/2: 64% / 78% / 60%), which lets those runs assert accuracy.
COLOURS = np.array([[r, g, b] for r in (40, 215) for g in (40, 215) for b in (40, 215)]
                   + [[128, 128, 128], [128, 40, 215]], "float64")
ColourTask = collections.namedtuple("ColourTask", "path x_test y_test above_chance")


def colour_task_arrays(n, rng):
    """``n`` images (uint8, 32x32x3) of the colour task with exactly balanced labels."""
    y = rng.permutation(np.arange(n) % len(COLOURS))
    x = COLOURS[y][:, None, None, :] + rng.normal(0.0, 30.0, (n, 32, 32, 3))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8), y.astype(np.int64)


@pytest.fixture(scope="session")
def colour_task(tmp_path_factory):
    """The colour task as an ``npz:`` dataset file (256 training, 128 test images), its test split, and
    the accuracy a run that learnt it must reach: 0.3, 3x chance.  An input-blind classifier scores
    exactly 0.1 on the balanced test split; one guessing at random reaches 0.3 with probability under
    1e-9 (binomial, 128 draws at 0.1).  Short runs here measured 0.49 to 0.78."""
    rng = np.random.default_rng(0)
    x_train, y_train = colour_task_arrays(256, rng)
    x_test, y_test = colour_task_arrays(128, rng)
    path = str(tmp_path_factory.mktemp("colour_task") / "colours.npz")
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return ColourTask(path, x_test, y_test, above_chance=0.3)


# ---------------------------------------------------------------- Keras's global dtype policy
@pytest.fixture(autouse=True)
def keras_policy_restored():
    """Keras's global dtype policy is process state: whatever a test sets (a mixed-precision run, a
    ``set_global_policy`` of its own) is undone after it, so no later test builds under it."""
    import keras

    before = keras.mixed_precision.global_policy()
    yield before
    keras.mixed_precision.set_global_policy(before)


# ---------------------------------------------------------------- what a figure shows
def _axes_data(ax):
    """An axes' drawn numbers: its lines (marker, x, y), bars (x centre, height), and the segments of
    its line collections (error bars, ``hlines``), with its x tick labels."""
    return {"lines": [(line.get_marker(), np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float))
                      for line in ax.lines],
            "bars": [(p.get_x() + p.get_width() / 2, p.get_height()) for p in ax.patches],
            "segments": [np.asarray(s, float) for c in ax.collections for s in c.get_segments()],
            "xticklabels": [t.get_text() for t in ax.get_xticklabels()]}


@pytest.fixture
def figure_data(monkeypatch):
    """The numbers every figure saved through ``nce_tf.analysis.plots.save`` shows, by file name: one
    :func:`_axes_data` dict per axes, read off the figure just before it is written (the PNG itself
    is still written).  A figure test compares them with the records the figure is drawn from."""
    from nce_tf.analysis import plots

    shown, save = {}, plots.save

    def recording_save(fig, path):
        shown[os.path.basename(path)] = [_axes_data(ax) for ax in fig.axes]
        save(fig, path)

    monkeypatch.setattr(plots, "save", recording_save)
    return shown
