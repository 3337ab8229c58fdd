r"""A study of ways to choose widths on one budget (the paper's Fig. 3): random, TAS, NCE, WRPN and
the original network, S searches per searched method, every structure trained T times.

Examples:

    nce-tf study --flagfile=study/cifar_subset_resnet8_w2a2 --workdir=runs/study_r8 --jobs=2
    nce-tf study --flagfile=quickstart --methods=random,nce --searches=2 --trainings=2 \
        --workdir=runs/study_quick

The runs take every flag of nce-tf nce (model, data, bits, training and search schedule); their
seeds come from --search_seed and --train_seed, their mode from the method; --init_from (and
--pact_init) start the searches from a trained network, the trainings are from scratch.  Writes WORKDIR/study.json,
study.csv, summary.md and study.png, and each run's work directory under WORKDIR/runs/ (nce_tf.study
documents the layout).  Re-running the same command continues a stopped study; --searches and
--trainings may grow between sittings.  Exit status 1 when runs failed (their logs are named).
From a checkout, python tools/study.py takes the same flags.
"""

import os
import sys

from absl import flags

from nce_tf import cli
from nce_tf.cli import config_flags
from nce_tf.study import flags as study_flags

study_flags.define_flags()
flags.adopt_module_key_flags(config_flags)
flags.adopt_module_key_flags(study_flags)
flags.DEFINE_boolean("summarize_only", False, "Start no run: write study.json, study.csv, summary.md and study.png "
                     "from the runs finished so far (also while the study runs in another process).")
FLAGS = flags.FLAGS


def main(argv):
    cli.no_positional(argv)
    study = study_flags.study_config_from_flags().validate()
    train = config_flags.config_from_flags().validate()
    search = config_flags.search_config_from_flags().validate()
    cli.load_tensorflow()  # the dataset check may load it; quietly
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf.study.runner import StudyFailed, run_study

    try:
        out = run_study(study, train, search, summarize_only=FLAGS.summarize_only)
    except StudyFailed as e:
        print(f"error: runs failed: {e}. Re-run the same command to retry them.", file=sys.stderr)
        sys.exit(1)
    print(f"nce-tf study: {out['runs_finished']} of {out['runs_planned']} runs finished -> "
          f"{os.path.join(os.path.abspath(study.workdir), 'summary.md')}", flush=True)
    with open(os.path.join(os.path.abspath(study.workdir), "summary.md"), encoding="utf-8") as f:
        print(f.read(), flush=True)

