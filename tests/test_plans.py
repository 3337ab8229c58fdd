"""nce_tf.plans, the run planner: dependency order, --jobs processes at a time, a failing run's
dependants skipped while the rest finish, a killed plan continued without redoing finished runs, the
plan lock, and a real nce-tf training's record. Runs are tiny Python children (tests/fake_runs.py)
except the last test's."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fake_runs import fake, times
from nce_tf.cli import child
from nce_tf.errors import UsageError
from nce_tf.plans import Outcome, Plan, PlanLock, Run, run_plan
from nce_tf.results import records

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))


def _run(tmp_path, key, needs=(), **how):
    return fake(Run(key, str(tmp_path / key), needs=tuple(needs)), **how)


def _overlap(a, b):
    return a[0] < b[1] and b[0] < a[1]


@pytest.mark.parametrize("jobs", [1, 2])
def test_runs_start_after_their_needs_and_jobs_at_a_time(tmp_path, jobs):
    # a is long and b short: with two slots, c (needs a) waits while d (needs b) starts beside a (a's
    # 2 s cover b's and d's starts under load).  One slot runs them one after another whatever a's length.
    a, b = _run(tmp_path, "a", seconds=2.0 if jobs == 2 else 0.5), _run(tmp_path, "b", seconds=0.2)
    c, d = _run(tmp_path, "c", ["a"], seconds=0.2), _run(tmp_path, "d", ["b"], seconds=0.2)
    e = _run(tmp_path, "e", ["a", "b"], seconds=0.2)
    outcome = run_plan(Plan(str(tmp_path), (a, b, c, d, e), name="test"), jobs=jobs, verbose=False)
    assert outcome.ok and sorted(outcome.finished) == ["a", "b", "c", "d", "e"]
    t = {r.key: times(r) for r in (a, b, c, d, e)}
    assert t["c"][0] > t["a"][1] and t["d"][0] > t["b"][1] and t["e"][0] > max(t["a"][1], t["b"][1])
    overlapping = {(x, y) for x in t for y in t if x < y and _overlap(t[x], t[y])}
    if jobs == 1:
        assert overlapping == set()  # one at a time: no two runs ever alive together
    else:
        assert {("a", "b"), ("a", "d")} <= overlapping  # both slots used, d not held up by the waiting c
    for run in (a, b, c, d, e):  # a record per finished run, its wall time at least the child's own time
        record = run.record()
        assert record["key"] == run.key and record["wall_seconds"] >= round(t[run.key][1] - t[run.key][0], 1) - 0.1


def test_a_failing_run_skips_its_dependants_and_the_rest_finish(tmp_path):
    a = _run(tmp_path, "a", fail=True)
    b, c = _run(tmp_path, "b", ["a"]), _run(tmp_path, "c", ["b"])  # c through b: skipped as well
    d, e = _run(tmp_path, "d", seconds=0.3), _run(tmp_path, "e", ["d"])
    outcome = run_plan(Plan(str(tmp_path), (a, b, c, d, e), name="test"), jobs=2, verbose=False)
    assert outcome.failed == [("a", "error: this run was told to fail", a.log_path)]
    assert outcome.skipped == [("b", "a"), ("c", "b")]
    assert sorted(outcome.finished) == ["d", "e"] and d.finished() and e.finished()
    assert not any(os.path.exists(r.log_path) or os.path.exists(r.workdir) for r in (b, c))
    assert not a.finished() and a.record() is None
    message = outcome.message()
    assert f"a failed (error: this run was told to fail), see {a.log_path}" in message
    assert "b not started (a failed)" in message and "\n" not in message
    # A re-run retries the failed run (now succeeding) and its dependants; the finished ones stay.
    before = {r.key: open(r.done_path).read() for r in (d, e)}
    again = run_plan(Plan(str(tmp_path), (fake(a), b, c, d, e), name="test"), jobs=2, verbose=False)
    assert again.ok and sorted(again.finished) == ["a", "b", "c", "d", "e"]
    assert {r.key: open(r.done_path).read() for r in (d, e)} == before


_PLANNER = r"""
import sys
sys.path.insert(0, {tests!r})
from fake_runs import fake
from nce_tf.plans import Plan, Run, run_plan
root, hold = sys.argv[1], sys.argv[2]
runs = [fake(Run(k, f"{{root}}/{{k}}", needs=n), seconds=0.1, hold=h) for k, n, h in
        (("a", (), ""), ("b", ("a",), ""), ("outside", (), ""), ("c", ("b",), hold))]
outcome = run_plan(Plan(root, tuple(runs), name="test"), jobs=1)
sys.exit(0 if outcome.ok else 1)
"""


def _planner(tmp_path, hold):
    command, env = child.python("-c", _PLANNER.format(tests=TESTS), str(tmp_path), hold)
    return command, env


def test_a_killed_plan_continues_without_redoing_finished_runs(tmp_path):
    hold = tmp_path / "hold"
    hold.write_text("")
    outside = tmp_path / "outside"  # finished before the planner ever ran (an earlier sitting of another tool)
    outside.mkdir()
    (outside / "metrics.json").write_text(json.dumps({"start": 0, "end": 0}))
    command, env = _planner(tmp_path, str(hold))
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 60
    while not os.path.exists(tmp_path / "c.log") and time.time() < deadline:  # a and b done, c running
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    first_lines = proc.communicate()[0]
    assert "4 runs, 1 finished before, 3 to go, 1 at a time" in first_lines
    done = {k: (os.path.getmtime(tmp_path / f"{k}.done.json"), (tmp_path / k / "metrics.json").read_text())
            for k in ("a", "b", "outside")}
    assert not (tmp_path / "c" / "metrics.json").exists()
    hold.unlink()
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "4 runs, 3 finished before, 1 to go, 1 at a time" in second.stdout
    assert "[4/4] c in" in second.stdout and "0 to go" in second.stdout
    for key, (mtime, metrics) in done.items():  # neither run again nor re-recorded
        assert os.path.getmtime(tmp_path / f"{key}.done.json") == mtime
        assert (tmp_path / key / "metrics.json").read_text() == metrics
    for key, sittings in (("a", 1), ("b", 1), ("c", 2)):
        assert (tmp_path / f"{key}.log").read_text().count("== nce-tf test: ") == sittings
    assert not (tmp_path / "outside.log").exists()
    assert json.loads((tmp_path / "outside.done.json").read_text())["wall_seconds"] is None
    assert not (tmp_path / ".plan.lock").exists()  # released on the clean exit


def test_the_lock_refuses_a_second_planner_with_one_line(tmp_path):
    out = tmp_path / "table"
    with PlanLock(str(out), "cifar-subset-table"):
        # The program: one line, exit status 2, no run started.
        command, env = child.python_module("nce_tf", "cifar-subset-table", f"--out={out}", "--seeds=0")
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines == [f"error: Another cifar-subset-table process (pid {os.getpid()}) is running in this "
                         f"directory. Received: workdir={str(out)!r}."]
        assert sorted(os.listdir(out)) == [".plan.lock"]
        # The library: the same error, before any run starts.
        with pytest.raises(UsageError, match=r"^Another test process \(pid \d+\)"):
            run_plan(Plan(str(out), (_run(tmp_path, "a"),), name="test"), verbose=False)
        assert not os.path.exists(tmp_path / "a.log")
    assert run_plan(Plan(str(out), (_run(tmp_path, "a"),), name="test"), verbose=False).ok  # released


def test_an_invalid_plan_is_refused():
    a = Run("a", "/nowhere/a")
    with pytest.raises(UsageError, match="needs 'b'"):
        Plan("/nowhere", (Run("c", "/nowhere/c", needs=("b",)), a, Run("b", "/nowhere/b"))).validate()
    with pytest.raises(UsageError, match="key='a'"):
        Plan("/nowhere", (a, a)).validate()
    assert Outcome({}, [], []).ok and Outcome({}, [], []).message() == ""


TINY = ["--model=resnet8", "--dataset=synthetic", "--synthetic_train_size=32", "--synthetic_test_size=16",
        "--w_bits=2", "--a_bits=2", "--epochs=1", "--warmup_epochs=0", "--batch_size=16", "--steps_per_epoch=1"]


@pytest.mark.heavy
def test_a_real_training_gets_its_results_record(tmp_path):
    run = Run.tool("tiny_s0", str(tmp_path / "tiny_s0"), "train", TINY + ["--seed=0"])
    outcome = run_plan(Plan(str(tmp_path), (run,), name="test"), verbose=False)
    assert outcome.ok, open(run.log_path).read()
    with open(os.path.join(run.workdir, "metrics.json")) as f:
        metrics = json.load(f)
    (record,) = records.read_records(str(tmp_path / "records.jsonl"))
    assert (record["kind"], record["run"], record["model"]) == ("train", "tiny_s0", "resnet8")
    assert record["accuracy"]["test"] == metrics["test_accuracy"] and record["seeds"] == {"seed": 0}
    assert record["costs"]["macs"] == metrics["macs"] and record["provenance"] == metrics["provenance"]
    done = run.record()
    assert done["kind"] == "train" and 0 < done["wall_seconds"]
    # A second sitting starts nothing and adds no second record.
    assert run_plan(Plan(str(tmp_path), (run,), name="test"), verbose=False).ok
    assert len(records.read_records(str(tmp_path / "records.jsonl"))) == 1
    assert open(run.log_path).read().count("== nce-tf test: ") == 1


def test_time_left_is_a_floor_naming_the_runs_no_finished_run_can_time():
    from nce_tf.plans import progress

    def run(kind, group=""):
        return Run(f"{kind}_{group}", "w", ("-c", "pass"), kind=kind, group=group)

    done = [{"kind": "train", "group": "a", "wall_seconds": 600.0}, {"kind": "train", "group": "b", "wall_seconds": 1200.0}]
    # by hand: a train of group a 600 s, of group c the kind's mean 900 s, a running a 600 - 100 s; 2 at a time
    pending, running = [run("train", "a"), run("train", "c")], {"x": (run("train", "a"), 1000.0)}
    assert progress.time_left(pending, running, done, 2, now=1100.0) == f"about {progress.human(2000 / 2)} left"
    # two searches no finished run can time: the rest is a floor, and says how many it leaves out
    text = progress.time_left([*pending, run("search"), run("search")], running, done, 2, now=1100.0)
    assert text == "over 16 min 40 s left (2 runs of a kind not timed yet)"
    assert progress.time_left([run("search")], {}, done, 2) == "time left unknown yet"
