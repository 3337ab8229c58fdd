"""Runs a plan: ``jobs`` child processes at a time, each run after the runs it needs, resumable.

A run whose output exists (``metrics.json``, ``arch.json``) is finished and never started again,
so a killed plan re-run continues where it stopped (a run cut off mid-way resumes from its own
checkpoints).  When a run exits cleanly with its output, the planner writes ``<workdir>.done.json``
(key, kind, group, wall time, log, and what the plan's :class:`Owner` reads off the run) and adds
the run's record (:func:`nce_tf.results.records.record_of`) to ``DIR/records.jsonl``.  A run
that fails is reported with its log; the runs that need it are skipped, all others go on; a
re-run retries both.  The plan directory is locked (:class:`PlanLock`) while the planner runs.

Example::

    outcome = run_plan(Plan("runs/p", runs, name="demo"), jobs=2)
    if not outcome.ok:
        print(outcome.message())
"""

import dataclasses
import os
import time

from nce_tf.errors import UsageError
from nce_tf.io_utils import atomic_write_json
from nce_tf.plans import launch, progress
from nce_tf.plans.lock import PlanLock
from nce_tf.results import records

RECORDS_FILE = "records.jsonl"


class Owner:
    """What a plan's owner (a study, a table) adds to the planner; every method may be overridden."""

    def before(self):
        """Under the plan's lock, before any run starts (a settings check)."""

    def annotate(self, run):
        """Fields of the run's ``.done.json`` read off its finished work directory."""
        return {}

    def describe(self, run, record):
        """The progress line's account of a finished run's result (``""``: none)."""
        return ""

    def after(self, run, record):
        """After each run that finished in this sitting (rewrite result tables)."""


@dataclasses.dataclass
class Outcome:
    """What a sitting left: ``finished`` ``{key: record}`` (before and now), ``failed``
    ``[(key, reason, log path)]``, ``skipped`` ``[(key, the failed run it needs)]``."""

    finished: dict
    failed: list
    skipped: list

    @property
    def ok(self):
        return not self.failed and not self.skipped

    def message(self):
        """One line naming every failed run with its log, and every run skipped for it."""
        parts = [f"{key} failed ({why}), see {log}" for key, why, log in self.failed]
        parts += [f"{key} not started ({need} failed)" for key, need in self.skipped]
        return "; ".join(parts)


def _record(plan, run, owner, wall_seconds, verbose):
    """Writes the run's ``.done.json`` and its results record; returns the former."""
    record = {"key": run.key, "kind": run.kind, "group": run.group, "workdir": run.workdir, "log": run.log_path,
              "wall_seconds": None if wall_seconds is None else round(wall_seconds, 1), **owner.annotate(run)}
    try:
        records.append_records(os.path.join(plan.directory, RECORDS_FILE),
                               [records.record_of(run.workdir, root=plan.directory)])
    except UsageError as e:  # a run of an earlier nce-tf (no provenance), or not an nce-tf run
        if verbose:
            print(f"nce-tf {plan.name}: no results record of {run.key}: {e}", flush=True)
    atomic_write_json(run.done_path, record)
    return record


def _finished_before(plan, owner, verbose):
    """``{key: record}`` of the runs whose output exists; a record is written for any that has none
    (finished outside the planner, or the planner was killed before writing it; wall time unknown)."""
    done = {}
    for run in plan.runs:
        if run.finished():
            done[run.key] = run.record() or _record(plan, run, owner, None, verbose)
    return done


def run_plan(plan, jobs=1, owner=None, verbose=True, in_process=False):
    """Runs (or continues) ``plan``; returns its :class:`Outcome`.

    Args:
        plan: a :class:`nce_tf.plans.Plan`.
        jobs: runs at a time, each its own process.
        owner: an :class:`Owner` (a settings check, fields of each record, result tables).
        verbose: print the plan's size, then a line per started, finished, failed or skipped run
            with runs done / total and the time left.
        in_process: run the runs that have a job spec in this process, one at a time.

    Raises:
        UsageError: an invalid plan, or another planner holds the directory.
    """
    plan = plan.validate()
    owner = owner or Owner()
    os.makedirs(plan.directory, exist_ok=True)
    with PlanLock(plan.directory, plan.name):
        owner.before()
        sitting = _Sitting(plan, 1 if in_process else jobs, owner, verbose, in_process)
        return sitting.run()


class _Sitting:
    """One planner process's pass over a plan."""

    def __init__(self, plan, jobs, owner, verbose, in_process):
        self.plan, self.jobs, self.owner, self.verbose, self.in_process = plan, jobs, owner, verbose, in_process
        self.done = _finished_before(plan, owner, verbose)
        self.pending = [r for r in plan.runs if r.key not in self.done]
        self.running = {}  # key -> (run, process, start time)
        self.failed, self.skipped, self.blocked = [], [], set()

    def say(self, text):
        if self.verbose:
            print(f"nce-tf {self.plan.name}: {text}", flush=True)

    def run(self):
        self.say(f"{len(self.plan.runs)} runs, {len(self.done)} finished before, {len(self.pending)} to go, "
                 f"{self.jobs} at a time")
        try:
            while self.pending or self.running:
                self.start_ready()
                if not self.running:
                    break
                if not self.in_process:
                    time.sleep(0.2)
                self.collect()
        except BaseException:
            launch.stop([proc for _, proc, _ in self.running.values()])
            raise
        return Outcome(self.done, self.failed, self.skipped)

    def start_ready(self):
        """Starts runs in plan order while slots are free: those whose needs finished; skips those
        whose needs failed (or were skipped)."""
        for run in list(self.pending):
            if len(self.running) >= self.jobs:
                return
            blocker = next((n for n in run.needs if n in self.blocked), None)
            if blocker is not None:
                self.pending.remove(run)
                self.blocked.add(run.key)
                self.skipped.append((run.key, blocker))
                self.say(f"{run.key} not started: {blocker} failed")
            elif all(n in self.done for n in run.needs):
                self.pending.remove(run)
                self.say(f"{run.key} started")
                self.running[run.key] = (run, launch.start(run, self.plan.name, self.in_process), time.time())

    def collect(self):
        """Records every run that ended: finished (its output exists) or failed."""
        for key, (run, proc, t0) in list(self.running.items()):
            if proc.poll() is None:
                continue
            del self.running[key]
            wall = time.time() - t0
            if proc.returncode != 0 or not run.finished():
                why = (progress.last_line(run.log_path) if proc.returncode != 0
                       else f"it exited without writing {run.output}")
                self.blocked.add(key)
                self.failed.append((key, why, run.log_path))
                self.say(f"{key} FAILED after {progress.human(wall)}: {why}; log: {run.log_path}")
                continue
            record = _record(self.plan, run, self.owner, wall, self.verbose)
            self.done[key] = record
            what = self.owner.describe(run, record)
            left = progress.time_left(self.pending, {k: (r, t) for k, (r, _, t) in self.running.items()},
                                      list(self.done.values()), self.jobs)
            self.say(f"[{len(self.done)}/{len(self.plan.runs)}] {key}{': ' + what if what else ''} in "
                     f"{progress.human(wall)}; {len(self.pending) + len(self.running)} to go, {left}")
            self.owner.after(run, record)
