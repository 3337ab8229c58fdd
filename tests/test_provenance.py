"""Provenance (``nce_tf.provenance``): the commit and dirty flag of a checkout read against git itself,
the library versions against the imported modules, and wall / CPU time per phase summed over the
sittings of a run (a unit clock, and a tiny training crashed after its first checkpoint and resumed)."""

import json
import os
import platform
import subprocess
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from nce_tf import provenance
from nce_tf.jobs import run_training
from nce_tf.jobs.lifecycle import FiniteCheckpoint
from nce_tf.train import TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


def _checkout(root):
    """A checkout as nce-tf knows one (setup.py, flags/, the package), committed in a fresh repository."""
    (root / "nce_tf").mkdir(parents=True)
    (root / "flags").mkdir()
    (root / "setup.py").write_text("# setup\n")
    (root / "flags" / "a.flags").write_text("--epochs=1\n")
    (root / "nce_tf" / "__init__.py").write_text('__version__ = "9.8.7"\n')
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "first")
    return str(root / "nce_tf")


def test_the_commit_and_dirty_flag_are_gits(tmp_path):
    package = _checkout(tmp_path / "repo")
    state = provenance.code_state(package)
    assert state == {"nce_tf": "9.8.7", "source": "checkout", "commit": _git(tmp_path / "repo", "rev-parse", "HEAD"),
                     "dirty": False, "git": None}
    # A tracked file changed: dirty; an untracked one (a run directory) is not a change of the code.
    init = tmp_path / "repo" / "nce_tf" / "__init__.py"
    init.write_text(init.read_text() + "# edited\n")
    assert provenance.code_state(package)["dirty"] is True
    _git(tmp_path / "repo", "checkout", "-q", "--", ".")
    (tmp_path / "repo" / "runs").mkdir()
    (tmp_path / "repo" / "runs" / "x.json").write_text("{}")
    assert provenance.code_state(package)["dirty"] is False
    # A new commit is the new HEAD.
    (tmp_path / "repo" / "setup.py").write_text("# setup 2\n")
    _git(tmp_path / "repo", "commit", "-qam", "second")
    second = provenance.code_state(package)
    assert second["commit"] == _git(tmp_path / "repo", "rev-parse", "HEAD") != state["commit"]
    assert second["dirty"] is False


def test_no_commit_outside_a_checkout_or_without_git(tmp_path, monkeypatch):
    installed = tmp_path / "site-packages" / "nce_tf"
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text('__version__ = "1.2.3"\n')
    assert provenance.code_state(str(installed)) == {"nce_tf": "1.2.3", "source": "installed", "commit": None,
                                                     "dirty": None, "git": "not a checkout"}
    # A checkout folder inside another repository (not its root) names no commit of that repository.
    _git(tmp_path, "init", "-q")
    nested = tmp_path / "vendor"
    for sub in ("nce_tf", "flags"):
        (nested / sub).mkdir(parents=True)
    (nested / "setup.py").write_text("")
    state = provenance.code_state(str(nested / "nce_tf"))
    assert state["commit"] is None and "inside the git repository" in state["git"]
    # git missing: said so, no commit.
    package = _checkout(tmp_path / "repo")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert provenance.code_state(package)[("commit")] is None
    assert provenance.code_state(package)["git"] == "git not found"


def test_versions_are_the_imported_modules_and_the_commit_this_checkouts():
    assert provenance.versions() == {"python": platform.python_version(), "tensorflow": tf.__version__,
                                     "keras": keras.__version__, "numpy": np.__version__}
    state = provenance.code_state(os.path.dirname(provenance.__file__))  # read now, not this process's cache
    assert state["source"] == "checkout" and state["commit"] == _git(REPO, "rev-parse", "HEAD")
    assert state["dirty"] == bool(_git(REPO, "status", "--porcelain", "--untracked-files=no"))


def _busy(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_the_clock_sums_phases_over_sittings(tmp_path):
    path = str(tmp_path / "times.json")
    first = provenance.PhaseClock(path, resume=True)
    first.phase("setup")
    _busy(0.05)
    first.phase("fit")
    _busy(0.1)
    first.flush()
    one = json.loads(open(path).read())
    assert len(one["sittings"]) == 1 and one["phases"]["fit"]["wall_seconds"] >= 0.1
    assert one["phases"]["fit"]["cpu_seconds"] > 0  # a busy loop is CPU time (how much: the machine's load)

    second = provenance.PhaseClock(path, resume=True)  # the next sitting of the same run
    second.phase("fit")
    _busy(0.1)
    second.flush()
    two = json.loads(open(path).read())
    assert len(two["sittings"]) == 2 and two["sittings"][0] == one["sittings"][0]
    mine = two["sittings"][1]
    assert mine["wall_seconds"] >= 0.1
    assert two["phases"]["setup"] == one["phases"]["setup"]
    for unit in ("wall_seconds", "cpu_seconds"):
        # each phase: the earlier sittings' total plus this sitting's (rounded to the millisecond)
        assert two["phases"]["fit"][unit] == pytest.approx(one["phases"]["fit"][unit] + mine[unit], abs=2e-3)
        assert two[unit] == pytest.approx(sum(p[unit] for p in two["phases"].values()), abs=2e-3)
        assert two[unit] == pytest.approx(sum(s[unit] for s in two["sittings"]), abs=4e-3)

    fresh = provenance.PhaseClock(path, resume=False)  # a run started afresh (--overwrite) forgets them
    fresh.phase("fit")
    fresh.flush()
    assert len(json.loads(open(path).read())["sittings"]) == 1


class _Crash(Exception):
    pass


@pytest.mark.heavy  # two sittings of a tiny training: 12 s on a quiet machine, 26 s measured under load
def test_a_resumed_training_records_both_sittings(tmp_path, monkeypatch):
    # Sitting 1 crashes right after its first checkpoint (epoch 1 of 2); sitting 2 resumes at epoch 2.
    workdir = tmp_path / "run"
    config = TrainConfig(workdir=str(workdir), model="resnet8", synthetic_train_size=64, synthetic_test_size=32,
                         epochs=2, warmup_epochs=0, batch_size=32, verbose=0)
    saved = FiniteCheckpoint.on_epoch_end
    at_crash = {}

    def crash_after_first_checkpoint(self, epoch, logs=None):
        saved(self, epoch, logs)
        at_crash.update(json.loads((workdir / "times.json").read_text()))  # what a SIGKILL here would leave
        raise _Crash()

    monkeypatch.setattr(FiniteCheckpoint, "on_epoch_end", crash_after_first_checkpoint)
    begin = time.perf_counter()
    with pytest.raises(_Crash):
        run_training(config)
    first_call = time.perf_counter() - begin
    monkeypatch.setattr(FiniteCheckpoint, "on_epoch_end", saved)
    assert at_crash["phases"]["fit"]["wall_seconds"] > 0  # the checkpoint wrote the epoch's time
    one = json.loads((workdir / "times.json").read_text())
    assert one["sittings"][0]["wall_seconds"] <= first_call

    begin = time.perf_counter()
    metrics = run_training(config)
    second_call = time.perf_counter() - begin
    prov = metrics["provenance"]
    assert json.loads((workdir / "metrics.json").read_text())["provenance"] == prov
    times = prov["times"]
    assert len(times["sittings"]) == 2 and times["sittings"][0] == one["sittings"][0]
    # Sitting 2's own time is nearly all of its call (what run_job does not time is a config check
    # and the final print), and the totals are both sittings'.
    mine = times["sittings"][1]["wall_seconds"]
    assert 0.8 * second_call <= mine <= second_call
    assert times["wall_seconds"] == pytest.approx(one["wall_seconds"] + mine, abs=5e-3)
    for phase in ("setup", "fit", "result"):
        assert times["phases"][phase]["wall_seconds"] >= one["phases"].get(phase, {}).get("wall_seconds", 0)
    assert times["cpu_seconds"] > one["cpu_seconds"]
    # The code and versions are this checkout's and these modules'.
    assert prov["commit"] == _git(REPO, "rev-parse", "HEAD")
    assert prov["versions"] == {"python": platform.python_version(), "tensorflow": tf.__version__,
                                "keras": keras.__version__, "numpy": np.__version__}


def test_a_search_records_its_provenance_in_arch_json(tmp_path):
    from nce_tf.jobs.search import run_search
    from nce_tf.search import SearchConfig

    config = TrainConfig(workdir=str(tmp_path / "s"), model="resnet8", synthetic_train_size=64,
                         synthetic_test_size=32, w_bits=2, a_bits=2)
    record = run_search(config, SearchConfig(mode="random"), verbose=False)
    arch = json.loads((tmp_path / "s" / "arch.json").read_text())
    assert arch["provenance"] == record["provenance"]
    assert arch["provenance"]["commit"] == _git(REPO, "rev-parse", "HEAD")
    assert set(arch["provenance"]["times"]["phases"]) == {"setup", "fit", "result"}
    on_disk = json.loads((tmp_path / "s" / "search" / "times.json").read_text())
    assert on_disk["sittings"][0]["started"] == arch["provenance"]["times"]["sittings"][0]["started"]


def test_this_process_code_state_is_read_once_and_kept(monkeypatch):
    # The code a process imported does not change when its checkout moves on: read once, then kept.
    calls = []
    monkeypatch.setattr(provenance, "_LOADED", {})
    real = provenance._git

    def counting(root, *args):
        calls.append(args[0])
        return real(root, *args)

    monkeypatch.setattr(provenance, "_git", counting)
    first = provenance.code_state()
    reads = len(calls)
    assert reads > 0 and first["source"] == "checkout"  # the suite runs from a checkout: git was read
    assert provenance.code_state() == first and len(calls) == reads  # not read again
    monkeypatch.setattr(provenance, "_git", lambda *a: "f" * 40)  # a checkout that moved on
    assert provenance.code_state() == first
    first["commit"] = "changed by the caller"
    assert provenance.code_state()["commit"] != "changed by the caller"  # a copy each time
