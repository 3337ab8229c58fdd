r"""The NCE pipeline: warm-up, search with channel expansion, derivation, final QAT training, report.

Examples:

    nce-tf nce --flagfile=quickstart --workdir=runs/quickstart
    nce-tf nce --flagfile=paper/table1_resnet20_nce_w2a2 --tfds_data_dir=/data/tfds --workdir=runs/r20_nce

Writes WORKDIR/arch.json, WORKDIR/metrics.json (test accuracy, MACs and PARAMs of the derived
network and of the original), WORKDIR/report.md, and the final training under WORKDIR/train/.
The tools share one flag set (--help lists it); re-running the same command resumes.
From a checkout, python tools/nce.py takes the same flags.
"""

from absl import flags

from nce_tf import cli
from nce_tf.cli import config_flags

config_flags.define_flags()
flags.adopt_module_key_flags(config_flags)


def main(argv):
    configs = cli.tool_configs(argv)  # the training's and the search's, validated before TensorFlow loads
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf.pipeline import run_nce

    run_nce(*configs)
