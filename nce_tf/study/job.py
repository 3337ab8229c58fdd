"""One run of a study in its own process: ``python -m nce_tf.study.job SPEC.json``.

``SPEC.json`` (written by :mod:`nce_tf.study.runner`) holds ``kind`` (``search`` or ``train``)
and the run's ``train_config`` / ``search_config`` as dicts.  Each run gets a fresh process so
that runs cannot share TensorFlow state and ``--jobs`` of them use the cores side by side.
Exit status: 0 done, 2 a usage error (one line on stderr), anything else a crash (traceback
in the run's log).
"""

import json
import sys


def execute(kind, train_config, search_config=None):
    """Runs one search or training (in this process)."""
    if kind == "search":
        from nce_tf.jobs.search import run_search

        run_search(train_config, search_config, verbose=train_config.verbose > 0)
    else:
        from nce_tf.train.trainer import run_training

        run_training(train_config)


def main(argv):
    from nce_tf import cli

    if len(argv) != 2:
        cli.fail(f"Usage: python -m nce_tf.study.job SPEC.json. Received: {argv[1:]!r}")
    with open(argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    cli.load_tensorflow()
    from nce_tf.errors import UsageError
    from nce_tf.search.config import SearchConfig
    from nce_tf.train.config import TrainConfig

    scfg = SearchConfig(**spec["search_config"]) if spec["search_config"] else None
    try:
        execute(spec["kind"], TrainConfig(**spec["train_config"]), scfg)
    except UsageError as e:
        cli.fail(e)


if __name__ == "__main__":
    main(sys.argv)
