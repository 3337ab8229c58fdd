"""results/archive_runs.py: a plan's finished runs kept in the repository and put back."""

import importlib.util
import os
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results", "archive_runs.py")


def _write(path, text="x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def _run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)


def test_save_keeps_finished_runs_text_and_whole_models_and_restore_never_overwrites(tmp_path):
    runs, state, back = tmp_path / "runs", tmp_path / "state", tmp_path / "back"
    _write(str(runs / "study_config.json"), "{}")
    _write(str(runs / "a.done.json"), '{"ok": 1}')
    _write(str(runs / "a" / "arch.json"), "{}")
    _write(str(runs / "a" / "search_log.jsonl"))
    _write(str(runs / "a" / "ckpt" / "ckpt-1.index"))  # a checkpoint: not kept
    _write(str(runs / "a" / "model.keras"))  # only whole directories keep their model
    _write(str(runs / "b" / "config.json"))  # unfinished: no b.done.json
    _write(str(runs / "runs" / "nce_s0" / "search.done.json"))  # a study's runs are nested
    _write(str(runs / "runs" / "nce_s0" / "search" / "arch.json"))
    _write(str(runs / "runs" / "nce_s0" / "train_t1000" / "config.json"))  # unfinished
    _write(str(runs / "start" / "model.keras"), "weights")
    _write(str(runs / "start" / "metrics.json"), "{}")
    _write(str(runs / "pending" / "model.keras"))  # a whole directory still training: not kept
    out = _run("save", str(runs), str(state), "start", "pending")
    assert out.returncode == 0 and "saved 2 finished runs" in out.stdout and "1 of 2 whole" in out.stdout
    assert _files(state) == ["a.done.json", "a/arch.json", "a/search_log.jsonl", "runs/nce_s0/search.done.json",
                             "runs/nce_s0/search/arch.json", "start/metrics.json", "start/model.keras",
                             "study_config.json"]
    _write(str(back / "a" / "arch.json"), "mine")
    out = _run("restore", str(state), str(back))
    assert out.returncode == 0 and "restored 7 files" in out.stdout
    assert (back / "a" / "arch.json").read_text() == "mine"
    assert (back / "start" / "model.keras").read_text() == "weights"


def _module():
    spec = importlib.util.spec_from_file_location("archive_runs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_runs_done_record_is_copied_after_its_files_and_every_copy_is_whole(tmp_path, monkeypatch):
    """A crash between two copies must not leave a run marked finished (its .done.json) without its
    files, either way; each file goes to a temporary name first, and a leftover one is never restored."""
    archive = _module()
    runs, state, back = tmp_path / "runs", tmp_path / "state", tmp_path / "back"
    for run in ("a", "runs/nce_s0/search"):
        _write(str(runs / (run + ".done.json")), "{}")
        _write(str(runs / run / "arch.json"), "{}")
        _write(str(runs / run / "metrics.json"), "{}")
    copies, copy = [], archive._copy

    def record(src, dst):
        assert not os.path.exists(dst + archive.PART)
        copy(src, dst)
        copies.append(os.path.relpath(dst, tmp_path))

    monkeypatch.setattr(archive, "_copy", record)
    for step in (lambda: archive.save(str(runs), str(state)), lambda: archive.restore(str(state), str(back))):
        copies.clear()
        step()
        for run in ("a", "runs/nce_s0/search"):
            root = copies[0].split(os.sep)[0]
            done = copies.index(os.path.join(root, run + ".done.json"))
            assert all(copies.index(os.path.join(root, run, f)) < done for f in ("arch.json", "metrics.json"))
    _write(str(state / "a" / "history.csv.part"), "cut short")
    archive.restore(str(state), str(tmp_path / "again"))
    assert not (tmp_path / "again" / "a" / "history.csv.part").exists()
    assert not any(f.endswith(".part") for f in _files(state) if "history" not in f)


def test_restore_from_no_state_is_one_line_and_status_2(tmp_path):
    out = _run("restore", str(tmp_path / "no state"), str(tmp_path / "runs"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Received: " in out.stderr
    assert out.stderr.startswith("error: no saved state") and os.listdir(tmp_path) == []


def test_save_before_the_plan_has_started_saves_nothing(tmp_path):
    out = _run("save", str(tmp_path / "not yet"), str(tmp_path / "state"))
    assert out.returncode == 0 and "saved nothing" in out.stdout and not (tmp_path / "state").exists()


def test_bad_usage_is_one_line_and_status_2(tmp_path):
    out = _run("keep", str(tmp_path), str(tmp_path))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Received: ['keep'" in out.stderr
    assert os.listdir(tmp_path) == []


def test_git_tracks_what_save_writes_under_results():
    # A state folder's runs sit under directories of any name (a study's are under runs/): an ignore
    # rule matching them would keep the records out of every commit, unseen until a fresh machine
    # restores an empty state. Only the repository's own top-level runs/ is ignored.
    root = os.path.dirname(os.path.dirname(SCRIPT))
    kept = ["results/study_r8_w2a2_from_trained/state/study/runs/nce_s0/search.done.json",
            "results/cifar_subset/state/w2a2_s0/metrics.json", "results/premise_near_1x/state/w2a2_s1/model.keras"]
    ignored = subprocess.run(["git", "-C", root, "check-ignore", "--no-index", *kept, "runs/x/metrics.json"],
                             capture_output=True, text=True).stdout.split()
    assert ignored == ["runs/x/metrics.json"]
