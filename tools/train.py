#!/usr/bin/env python
r"""Train a zoo model (or an arch.json network) in float or WxAy QAT.

Examples:

    python tools/train.py --flagfile=flags/quickstart.flags --workdir=runs/quickstart
    python tools/train.py --flagfile=flags/cifar10_resnet20_w2a2.flags --workdir=runs/r20_w2a2 \
        --dataset=cifar10 --tfds_data_dir=/data/tfds
    python tools/train.py --model=resnet20 --arch=runs/search/arch.json --w_bits=2 --a_bits=2 \
        --workdir=runs/derived

Flags are listed by --help (all of absl's own too by --helpfull); the resolved settings are saved in WORKDIR/config.json.
Re-running the same command on the same work directory resumes an interrupted run.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nce_tf import cli  # noqa: E402  (sets TF's log level before TensorFlow loads)
from absl import flags  # noqa: E402

from nce_tf import tool_flags as train_flags  # noqa: E402

train_flags.define_flags()
flags.adopt_module_key_flags(train_flags)  # so --help lists them, not only --helpfull


def main(argv):
    cli.no_positional(argv)
    config = train_flags.config_from_flags().validate()
    cli.load_tensorflow()
    from nce_tf.train import run_training

    run_training(config)


if __name__ == "__main__":
    cli.run(main)
