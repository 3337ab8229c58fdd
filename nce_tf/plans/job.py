"""A run of exactly these configs in its own process: ``python -m nce_tf.plans.job SPEC.json``.

``SPEC.json`` (written by the planner at the run's start, ``<workdir>.job.json``) holds ``kind``
(``search``, ``train`` or ``nce``) and the run's ``train_config`` / ``search_config`` as dicts: the
configs themselves, not flags, so a study's runs are exactly what it planned.  A fresh process per
run keeps runs from sharing TensorFlow state and lets ``--jobs`` of them use the cores side by side.
Exit status: 0 done, 2 a usage error (one line on stderr), anything else a crash (traceback in the
run's log).

:func:`run_inline` runs a spec in the calling process instead (a study's ``in_process``: notebooks
and tests), its output and any error in the run's log as a child's would be.
"""

import contextlib
import json
import os
import sys
import traceback

from nce_tf import cli
from nce_tf.errors import UsageError
from nce_tf.search.config import SearchConfig
from nce_tf.train.config import TrainConfig


def execute(kind, train_config, search_config=None):
    """Runs one search, training or pipeline (in this process)."""
    if kind == "search":
        from nce_tf.jobs.search import run_search  # TensorFlow: loaded only once a job runs

        run_search(train_config, search_config, verbose=train_config.verbose > 0)
    elif kind == "nce":
        from nce_tf.pipeline import run_nce  # as above: TensorFlow only in a run's process

        run_nce(train_config, search_config, verbose=train_config.verbose > 0)
    else:
        from nce_tf.jobs.train import run_training  # as above

        run_training(train_config)


def configs(spec):
    """The spec's ``(TrainConfig, SearchConfig or None)``."""
    scfg = SearchConfig(**spec["search_config"]) if spec.get("search_config") else None
    return TrainConfig(**spec["train_config"]), scfg


def run_inline(spec, log_path):
    """Runs ``spec`` here, its output appended to ``log_path``; returns the exit status a child would give."""
    import keras  # a notebook's or test's process: TensorFlow is loaded there already

    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        try:
            keras.backend.clear_session()
            execute(spec["kind"], *configs(spec))
        except Exception as e:  # recorded like a child's failure: the log holds the reason
            traceback.print_exc(file=log)
            log.write(f"error: {' '.join(str(e).split())}\n")
            return 2 if isinstance(e, UsageError) else 1
    return 0


def main(argv):
    if len(argv) != 2:
        cli.fail(f"Usage: python -m nce_tf.plans.job SPEC.json. Received: {argv[1:]!r}")
    with open(argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    cli.load_tensorflow()
    try:
        execute(spec["kind"], *configs(spec))
    except UsageError as e:
        cli.fail(e)


if __name__ == "__main__":
    main(sys.argv)
