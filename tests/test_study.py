"""nce_tf.study: the bootstrap against hand-computed intervals, a study end to end, a killed
study resumed, and bad input refused with one line."""

import csv
import dataclasses
import json
import os
import signal
import statistics
import subprocess
import sys
import time

import pytest

from nce_tf.errors import UsageError
from nce_tf.study import StudyConfig, difference_ci, plan, run_study

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(REPO, "tools", "study.py")
# A tiny ResNet-8 task: every search and training takes a few seconds.
TINY = dict(model="resnet8", dataset="synthetic", synthetic_train_size=64, synthetic_test_size=32, w_bits=2,
            a_bits=2, epochs=1, warmup_epochs=0, batch_size=32, steps_per_epoch=1, verbose=0)
TINY_SEARCH = dict(search_warmup_epochs=0, search_epochs=1, search_batch_size=16, search_steps_per_epoch=1,
                   arch_lr=0.01)


def _env():
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the tool must keep TensorFlow's start-up lines off by itself
    return env


def _flags(d):
    return [f"--{k}={v}" for k, v in d.items()]


# --- the bootstrap, checked against intervals worked out by hand -------------------------------

def test_unpaired_interval_of_two_structures_against_one_unit():
    # diff* = mean of two draws from {1, 3} minus 0: 1 (p 1/4), 2 (p 1/2), 3 (p 1/4), so the
    # 2.5% and 97.5% quantiles are 1 and 3.
    assert difference_ci([1.0, 3.0], [0.0], paired=False, resamples=20_000, seed=1) == pytest.approx((2.0, 1.0, 3.0))


def test_paired_interval_against_the_binomial_by_hand():
    # d = [0, 0, 0, 1]: the mean of 4 draws is k/4 with k ~ Binomial(4, 1/4); P(k <= 2) = 243/256 = 0.949
    # and P(k <= 3) = 255/256, so the 97.5% quantile is k = 3 (0.75); P(k = 0) = 81/256 > 0.025: low 0.
    a, b = [0.5, 0.5, 0.5, 1.5], [0.5, 0.5, 0.5, 0.5]
    assert difference_ci(a, b, paired=True, resamples=50_000, seed=2) == pytest.approx((0.25, 0.0, 0.75))


def test_bootstrap_refuses_bad_input():
    with pytest.raises(UsageError, match="equal counts"):
        difference_ci([1, 2], [1, 2, 3], paired=True)
    with pytest.raises(UsageError, match="level"):
        difference_ci([1, 2], [1, 2], paired=True, level=1.5)
    with pytest.raises(UsageError, match="finite"):
        difference_ci([1, float("nan")], [1, 2], paired=False)


def _row(method, seed, tseed, acc):
    structure = method if seed is None else f"{method}_s{seed}"
    return {"method": method, "structure": structure, "search_seed": seed, "train_seed": tseed, "test_accuracy": acc}


def test_comparisons_pair_by_search_seed_and_use_trainings_of_a_fixed_method():
    from nce_tf.study.results import comparisons

    rows = [_row("nce", s, t, 0.60 + 0.01 * s + 0.001 * t) for s in range(3) for t in range(2)]
    rows += [_row("tas", s, t, 0.55 + 0.01 * s + 0.001 * t) for s in (0, 1, 2, 7) for t in range(2)]
    rows += [_row("original", None, t, acc) for t, acc in enumerate([0.50, 0.70, 0.60])]
    by = {c["method"]: c for c in comparisons(rows, ("nce", "tas", "original"), "nce", resamples=4000)}
    # nce vs tas: seeds 0, 1, 2 in common (seed 7 unpaired), each 0.05 apart: every resample gives 0.05.
    tas = by["tas"]
    assert tas["paired"] and tas["units"] == [3, 3] and tas["resolved"] is True
    assert (tas["difference"], tas["low"], tas["high"]) == pytest.approx((0.05, 0.05, 0.05))
    # nce vs original: 3 structure means against the 3 trainings of the one structure (0.5, 0.7, 0.6).
    orig = by["original"]
    assert not orig["paired"] and orig["units"] == [3, 3]
    assert orig["difference"] == pytest.approx(statistics.fmean([0.6005, 0.6105, 0.6205]) - 0.6)
    assert orig["low"] < 0 < orig["high"] and orig["resolved"] is False


# --- the plan ------------------------------------------------------------------------------------

def test_plan_interleaves_methods_and_separates_seeds(tmp_path):
    from nce_tf.search import SearchConfig
    from nce_tf.train import TrainConfig

    study = StudyConfig(workdir=str(tmp_path), methods=("random", "nce", "wrpn", "original"), searches=2,
                        trainings=2, search_seed=5, train_seed=100).validate()
    runs = plan(study, TrainConfig(workdir=str(tmp_path), **TINY), SearchConfig(**TINY_SEARCH))
    keys = [r.key for r in runs]
    assert keys == ["random_s5/search", "random_s5/train_t100", "random_s5/train_t101",
                    "nce_s5/search", "nce_s5/train_t100", "nce_s5/train_t101",
                    "wrpn/search", "wrpn/train_t100", "wrpn/train_t101",
                    "original/train_t100", "original/train_t101",
                    "random_s6/search", "random_s6/train_t100", "random_s6/train_t101",
                    "nce_s6/search", "nce_s6/train_t100", "nce_s6/train_t101"]
    by_key = {r.key: r for r in runs}
    assert by_key["nce_s6/search"].train_config.seed == 6 and by_key["nce_s6/search"].search_config.mode == "nce"
    assert by_key["nce_s6/train_t101"].train_config.seed == 101
    assert by_key["nce_s6/train_t101"].train_config.arch == os.path.join(by_key["nce_s6/search"].workdir, "arch.json")
    assert by_key["original/train_t100"].train_config.model == "resnet8"
    assert by_key["original/train_t100"].train_config.arch == ""


# --- a study end to end ----------------------------------------------------------------------------

@pytest.mark.heavy
def test_study_of_two_methods_two_searches_two_trainings(tmp_path):
    from nce_tf import arch as arch_lib
    from nce_tf import models
    from nce_tf.cost import count_arch
    from nce_tf.search import SearchConfig
    from nce_tf.train import TrainConfig

    workdir = str(tmp_path / "study")
    study = StudyConfig(workdir=workdir, methods=("random", "nce"), searches=2, trainings=2, resamples=2000)
    out = run_study(study, TrainConfig(workdir=workdir, **TINY), SearchConfig(**TINY_SEARCH), verbose=False,
                    in_process=True)
    rows = out["rows"]
    assert [(r["method"], r["search_seed"], r["train_seed"]) for r in rows] == [
        ("random", 0, 1000), ("random", 0, 1001), ("nce", 0, 1000), ("nce", 0, 1001),
        ("random", 1, 1000), ("random", 1, 1001), ("nce", 1, 1000), ("nce", 1, 1001)]
    original = count_arch("resnet8")
    for r in rows:
        arch = arch_lib.load_arch(os.path.join(workdir, "runs", r["structure"], "search", "arch.json"))
        assert r["widths"] == arch.widths
        cost = count_arch("resnet8", arch.widths)
        assert (r["macs"], r["params"]) == (cost.macs, cost.params)
        assert r["macs_ratio"] == pytest.approx(cost.macs / original.macs)
        with open(os.path.join(workdir, "runs", r["structure"], f"train_t{r['train_seed']}", "metrics.json")) as f:
            metrics = json.load(f)
        assert r["test_accuracy"] == metrics["test_accuracy"]
        # each row names what ran: the training's provenance and its structure's search's
        assert r["provenance"] == metrics["provenance"] and r["search_provenance"] == arch.extra["provenance"]
    # The summary and the comparison, recomputed from the rows.
    for s in out["summary"]:
        accs = [r["test_accuracy"] for r in rows if r["method"] == s["method"]]
        assert s["accuracy_mean"] == pytest.approx(statistics.fmean(accs))
        per = [statistics.fmean(accs[i:i + 2]) for i in (0, 2)]
        assert s["structure_mean"] == pytest.approx(statistics.fmean(per))
        assert s["structure_std"] == pytest.approx(statistics.stdev(per))
    (comp,) = out["comparisons"]
    assert (comp["reference"], comp["method"], comp["paired"]) == ("nce", "random", True)
    mean = lambda m: statistics.fmean(r["test_accuracy"] for r in rows if r["method"] == m)  # noqa: E731
    assert comp["difference"] == pytest.approx(mean("nce") - mean("random"))
    assert comp["low"] <= comp["difference"] <= comp["high"]
    assert comp["resolved"] is None  # two structures a side: no verdict
    original_widths = models.default_widths("resnet8")
    for method in ("random", "nce"):  # the width table, recomputed from the rows' widths
        mine = {r["structure"]: r["widths"] for r in rows if r["method"] == method}
        expect = [statistics.fmean(w[i] / n for w in mine.values()) for i, n in enumerate(original_widths)]
        assert out["widths"]["methods"][method]["mean_ratio"] == pytest.approx(expect)
    with open(os.path.join(workdir, "study.csv"), newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 8 and [int(t["train_seed"]) for t in table] == [r["train_seed"] for r in rows]
    assert os.path.getsize(os.path.join(workdir, "study.png")) > 1000
    # Summarizing starts no run and reads the same rows back; a directory without a study is refused.
    again = run_study(study, TrainConfig(workdir=workdir, **TINY), SearchConfig(**TINY_SEARCH), verbose=False,
                      summarize_only=True)
    assert again["rows"] == rows
    with pytest.raises(UsageError, match="No study"):
        run_study(dataclasses.replace(study, workdir=str(tmp_path / "empty")), TrainConfig(workdir=workdir, **TINY),
                  SearchConfig(**TINY_SEARCH), summarize_only=True)
    with open(os.path.join(workdir, "summary.md")) as f:
        assert "| nce minus | difference (points)" in f.read()


# --- a killed study, re-run ----------------------------------------------------------------------

@pytest.mark.heavy
def test_killed_study_continues_without_redoing_finished_runs(tmp_path):
    workdir = str(tmp_path / "study")
    cmd = [sys.executable, TOOL, f"--workdir={workdir}", "--methods=random", "--searches=1", "--trainings=2",
           "--jobs=1", "--resamples=200"] + _flags(TINY)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=_env())
    done_dir = os.path.join(workdir, "runs")

    def finished():
        return sorted(os.path.join(d, f) for d, _, fs in os.walk(done_dir) for f in fs if f.endswith(".done.json"))

    deadline = time.time() + 240
    while len(finished()) < 2 and time.time() < deadline and proc.poll() is None:  # the search and a training
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = {p: (os.path.getmtime(p), open(p).read()) for p in finished()}
    assert len(first) == 2, first
    with open(os.path.join(workdir, "study.json")) as f:
        rows_before = json.load(f)["rows"]

    subprocess.run(cmd, check=True, capture_output=True, timeout=300, env=_env())
    with open(os.path.join(workdir, "study.json")) as f:
        out = json.load(f)
    assert out["runs_finished"] == out["runs_planned"] == 3
    for path, (mtime, text) in first.items():  # not redone
        assert (os.path.getmtime(path), open(path).read()) == (mtime, text)
        with open(path[: -len(".done.json")] + ".log") as f:
            assert f.read().count("== nce-tf study:") == 1
    assert rows_before and out["rows"][: len(rows_before)] == rows_before


# --- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, needle", [
    (["--methods=random,darts"], "methods="),
    (["--searches=0"], "searches=0"),
    (["--trainings=0"], "trainings=0"),
    ([f"--jobs={(os.cpu_count() or 1) + 1}"], "jobs="),
    (["--model=resnet18"], "does not fit the model"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, extra, needle):
    workdir = tmp_path / "study"
    proc = subprocess.run([sys.executable, TOOL, f"--workdir={workdir}"] + _flags(TINY) + extra,
                          capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
    assert not workdir.exists()
