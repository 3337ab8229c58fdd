"""One run planner for everything that runs many jobs: the study, the CIFAR-subset table, analyze.

- :class:`Run`, :class:`Plan` (``plan.py``): runs with dependencies, each an ordinary ``nce-tf``
  work directory made by one child process (``Run.tool``: an ``nce-tf`` command line; ``Run.job``:
  exact configs, run by ``job.py``);
- :func:`run_plan` (``execute.py``): ``jobs`` processes at a time, resume without redoing finished
  runs, ``<workdir>.done.json`` and a results record (``DIR/records.jsonl``) per finished run, a
  failed run's dependants skipped and the rest run; :class:`Owner` is what a plan's owner adds;
- :class:`PlanLock` (``lock.py``): one planner per plan directory;
- ``progress.py``: runs done / total and the time left; ``settings.py``: the run settings a plan
  directory holds, checked on every sitting.

Example::

    from nce_tf.plans import Plan, Run, run_plan
    a = Run.tool("w32a32_s0", "/abs/out/w32a32_s0", "train", ["--flagfile=cifar_subset/w32a32", "--seed=0"])
    b = Run.tool("w2a2_float_init_s0", "/abs/out/w2a2_float_init_s0", "train",
                 ["--flagfile=cifar_subset/w2a2_float_init", "--seed=0", f"--init_from={a.workdir}"],
                 needs=[a.key])
    outcome = run_plan(Plan("/abs/out", (a, b), name="demo"), jobs=2)
"""

from nce_tf.plans.execute import RECORDS_FILE, Outcome, Owner, run_plan
from nce_tf.plans.lock import LOCK_FILE, PlanLock
from nce_tf.plans.plan import Plan, Run

__all__ = ["LOCK_FILE", "Outcome", "Owner", "Plan", "PlanLock", "RECORDS_FILE", "Run", "run_plan"]
