"""A plan: runs with dependencies, each an ordinary ``nce-tf`` work directory made by one child process.

A :class:`Run` is what one child process does (its command line, or a job spec for
:mod:`nce_tf.plans.job`), the work directory it fills, the runs it needs first and the file whose
presence means it finished (``metrics.json`` for a training or a pipeline, ``arch.json`` for a
search: what a study, the subset table and analyze have always looked for).  Beside the work
directory the planner keeps ``<workdir>.log`` (the child's output) and ``<workdir>.done.json``
(its record: wall time and what the plan's owner reads off the run), as a study always did.

A :class:`Plan` is the runs in the order they start, in one directory (its lock and its
``records.jsonl``); every run a run needs is planned before it, so a plan has no circle.

Example:

>>> a = Run.tool("float", "/tmp/p/float", "train", ["--epochs=1"])
>>> b = Run.tool("w2a2", "/tmp/p/w2a2", "train", [f"--init_from={a.workdir}"], needs=(a.key,))
>>> Plan("/tmp/p", (a, b), name="demo").validate().keys
('float', 'w2a2')
>>> a.argv[:3]
('-m', 'nce_tf', 'train')
"""

import dataclasses
import json
import os
from typing import Optional

from nce_tf.errors import UsageError

OUTPUTS = {"train": "metrics.json", "nce": "metrics.json", "search": "arch.json"}


def done_path(workdir):
    """Where the planner keeps the record of the run in ``workdir``: ``<workdir>.done.json``."""
    return workdir + ".done.json"


def read_done(workdir):
    """The record the planner wrote for the run in ``workdir`` (``None`` before it finished)."""
    if not os.path.isfile(done_path(workdir)):
        return None
    with open(done_path(workdir), encoding="utf-8") as f:
        return json.load(f)


@dataclasses.dataclass(frozen=True)
class Run:
    """One child process of a plan.

    Args:
        key: unique in the plan; names the run in progress lines, errors and ``needs``.
        workdir: the run's work directory (absolute).
        argv: the child's arguments after the Python interpreter (``("-m", "nce_tf", "train", ...)``);
            with ``spec``, the job spec's path is appended.
        spec: a job spec for :mod:`nce_tf.plans.job` (``kind``, ``train_config``, ``search_config``
            as dicts), written to ``<workdir>.job.json`` when the run starts; such a run can also run
            in the planner's own process.
        needs: keys of the runs that must finish first.
        output: the file of ``workdir`` whose presence means the run finished.
        kind, group: what the run is (``train``, ``search``, ``nce``) and a finer class (a study's
            method); the time left is estimated from finished runs of the same kind and group.
        cwd: the child's working directory (``None``: the planner's).
    """

    key: str
    workdir: str
    argv: tuple = ()
    spec: Optional[dict] = None
    needs: tuple = ()
    output: str = "metrics.json"
    kind: str = "run"
    group: str = ""
    cwd: Optional[str] = None

    @classmethod
    def tool(cls, key, workdir, tool, flags, needs=(), group="", cwd=None):
        """``nce-tf TOOL FLAGS --workdir=WORKDIR --verbose=0`` as a run (``tool``: train, search or nce)."""
        argv = ("-m", "nce_tf", tool, *flags, f"--workdir={workdir}", "--verbose=0")
        return cls(key, workdir, argv, needs=tuple(needs), output=OUTPUTS[tool], kind=tool, group=group, cwd=cwd)

    @classmethod
    def job(cls, key, kind, train_config, search_config=None, needs=(), group=""):
        """A search, training or pipeline of exactly these configs (run by :mod:`nce_tf.plans.job`)."""
        spec = {"kind": kind, "train_config": train_config.to_dict(),
                "search_config": search_config.to_dict() if search_config is not None else None}
        return cls(key, train_config.workdir, ("-m", "nce_tf.plans.job"), spec, tuple(needs), OUTPUTS[kind], kind,
                   group)

    @property
    def log_path(self):
        return self.workdir + ".log"

    @property
    def done_path(self):
        return done_path(self.workdir)

    @property
    def spec_path(self):
        return self.workdir + ".job.json"

    def finished(self):
        """Whether the run's output exists (its work directory holds a finished run)."""
        return os.path.isfile(os.path.join(self.workdir, self.output))

    def record(self):
        """The run's ``.done.json`` (``None`` before the planner wrote it)."""
        return read_done(self.workdir)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Runs in start order, kept in ``directory`` (``.plan.lock``, ``records.jsonl``); ``name`` begins
    every progress line (``nce-tf NAME: ...``)."""

    directory: str
    runs: tuple
    name: str = "plan"

    @property
    def keys(self):
        return tuple(r.key for r in self.runs)

    def validate(self):
        """Checks keys are unique and every need is planned before its run; returns ``self``."""
        seen = set()
        for run in self.runs:
            if run.key in seen:
                raise UsageError(f"Invalid plan: a run key twice. Received: key={run.key!r}. Allowed: unique keys.")
            missing = [n for n in run.needs if n not in seen]
            if missing:
                raise UsageError(f"Invalid plan: a run needs a run not planned before it. Received: "
                                 f"{run.key!r} needs {missing[0]!r}. Allowed: needs planned earlier.")
            seen.add(run.key)
        return dataclasses.replace(self, runs=tuple(self.runs))
