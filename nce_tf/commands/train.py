r"""Train a zoo model (or an arch.json network) in float or WxAy QAT.

Examples:

    nce-tf train --flagfile=quickstart --workdir=runs/quickstart
    nce-tf train --flagfile=cifar10_resnet20_w2a2 --tfds_data_dir=/data/tfds --workdir=runs/r20_w2a2
    nce-tf train --arch=runs/search/arch.json --w_bits=2 --a_bits=2 --workdir=runs/derived

Flags are listed by --help (all of absl's own too by --helpfull); the resolved settings are saved in
WORKDIR/config.json. Re-running the same command on the same work directory resumes an interrupted
run. From a checkout, python tools/train.py takes the same flags.
"""

from absl import flags

from nce_tf import cli
from nce_tf.cli import config_flags

config_flags.define_flags()
flags.adopt_module_key_flags(config_flags)  # so --help lists them, not only --helpfull


def main(argv):
    cli.no_positional(argv)
    config = config_flags.config_from_flags().validate()
    cli.load_tensorflow()
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf.jobs import run_training

    run_training(config)
