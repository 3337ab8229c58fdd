"""Runs a study: its plan of searches and trainings on the run planner (:mod:`nce_tf.plans`).

Each run is a child process (:mod:`nce_tf.plans.job`, the run's exact configs) with its output in
``<run>.log``; when it finishes the planner writes ``<run>.done.json`` (the study's record of the
run: its result and wall time, :func:`nce_tf.study.results.run_record`).  A finished run is never
started again, so a killed study re-run continues where it stopped; a run that was cut off mid-way
resumes from its own checkpoints.  A run that fails does not stop the others (except the trainings
of a failed search); the study ends with exit status 1 naming every failed run and its log, and a
re-run retries them.

After every finished run the results (``study.json``, ``study.csv``, ``summary.md``;
:mod:`nce_tf.study.results`) are rewritten, so a study stopped early can be read; ``study.png``
at the end of each sitting.

Example::

    from nce_tf.search import SearchConfig
    from nce_tf.study import StudyConfig, run_study
    from nce_tf.train import TrainConfig
    results = run_study(StudyConfig(workdir="runs/study", methods=("random", "nce"), searches=2, trainings=2),
                        TrainConfig(workdir="unused", model="resnet8", w_bits=2, a_bits=2, epochs=10),
                        SearchConfig(search_warmup_epochs=2, search_epochs=4))
"""

import dataclasses
import os

from nce_tf import plans
from nce_tf.errors import UsageError
from nce_tf.plans.settings import check_settings
from nce_tf.study import results as results_lib
from nce_tf.study.plan import plan
from nce_tf.train.config import DEFAULT_MODEL, prepare_workdir

CONFIG_FILE = "study_config.json"


class StudyFailed(RuntimeError):
    """Some runs of a study failed (their logs say why); a re-run retries them."""


def run_settings(study, train_config, search_config):
    """What every run of the study shares; a study directory holds runs of one setting only."""
    train = {k: v for k, v in train_config.run_settings().items() if k not in ("seed", "arch")}
    search = {k: v for k, v in search_config.to_dict().items() if k != "mode"}
    return {"train": train, "search": search, "tas_width_ratios": study.tas_width_ratios}


def check_fits(train_config):
    """Refuses a dataset whose kind (CIFAR-sized or ImageNet-sized images) is not the zoo model's."""
    from nce_tf import sources  # it loads TensorFlow: not at import, so bad flags fail fast

    model = train_config.model or DEFAULT_MODEL
    spec = sources.get_spec(model)
    info = sources.source_for(train_config).info
    if spec.kind in ("cifar", "imagenet") and info.kind != spec.kind:
        size = "x".join(str(s) for s in info.image_shape[:2])
        raise UsageError(f"The dataset does not fit the model: {model} takes {spec.kind}-sized images "
                         f"({'x'.join(str(s) for s in spec.input_shape[:2])}), {info.name} has {size} images. "
                         f"Received: model={model!r}, dataset={train_config.dataset!r}.")
    return info


class _StudyOwner(plans.Owner):
    """The study's part in its plan: the settings check, each run's result, the result tables."""

    def __init__(self, workdir, study, runs, settings):
        self.workdir, self.study, self.runs, self.settings = workdir, study, runs, settings
        self.by_key = {r.key: r for r in runs}

    def before(self):
        check_settings(os.path.join(self.workdir, CONFIG_FILE), self.settings, {"study": self.study.to_dict()},
                       "study", "methods, searches, trainings and seeds may change")

    def annotate(self, run):
        return results_lib.run_record(self.by_key[run.key])

    def describe(self, run, record):
        if run.kind == "train":
            return f"{record['test_accuracy'] * 100:.2f}%"
        return (f"MACs {record['macs_ratio']:.3f}x, PARAMs {record['params_ratio']:.3f}x"
                + (f", {len(record['expanded'])} layers expanded" if run.group == "nce" else ""))

    def after(self, run, record):
        results_lib.write(self.workdir, self.study, self.runs, figure=False)


def _as_plan(workdir, runs):
    """The study's runs as a plan: each a job of its exact configs, a training after its search."""
    return plans.Plan(workdir, tuple(
        plans.Run.job(r.key, r.kind, r.train_config, r.search_config, needs=(r.needs,) if r.needs else (),
                      group=r.method) for r in runs), name="study")


def run_study(study, train_config, search_config, verbose=True, in_process=False, summarize_only=False):
    """Runs (or continues) a study; returns the results written to ``study.json``.

    Args:
        study: a :class:`nce_tf.study.StudyConfig`.
        train_config: the :class:`nce_tf.train.TrainConfig` of every run (model, data, bits,
            training schedule); its ``workdir`` and ``seed`` are replaced per run.
        search_config: the :class:`nce_tf.search.SearchConfig` of every search; its ``mode``
            is replaced by each method.
        verbose: print a line per finished run with the time left.
        in_process: run every run in this process, one at a time, instead of ``jobs`` child
            processes (for notebooks and tests).
        summarize_only: start no run; write the results of the runs finished so far (allowed
            beside a running study process: every file is replaced atomically).

    Raises:
        UsageError: bad settings, a dataset that does not fit the model, a work directory that
            holds a study with other run settings, another study process in it.
        StudyFailed: some runs failed (the others finished and are in the results).
    """
    study = study.validate()
    if train_config.arch:
        raise UsageError(f"A study derives its own architectures. Received: arch={train_config.arch!r}.")
    train_config = dataclasses.replace(train_config, workdir=train_config.workdir or study.workdir).validate()
    search_config = search_config.validate()
    check_fits(train_config)
    if summarize_only and not os.path.exists(os.path.join(study.workdir, CONFIG_FILE)):
        raise UsageError(f"No study in this work directory. Received: workdir={study.workdir!r}.")
    workdir = prepare_workdir(study.workdir)
    runs = plan(dataclasses.replace(study, workdir=workdir), train_config, search_config)
    if summarize_only:
        return results_lib.write(workdir, study, runs)
    owner = _StudyOwner(workdir, study, runs, run_settings(study, train_config, search_config))
    outcome = plans.run_plan(_as_plan(workdir, runs), study.jobs, owner, verbose, in_process)
    out = results_lib.write(workdir, study, runs)
    if not outcome.ok:
        raise StudyFailed(outcome.message())
    return out
