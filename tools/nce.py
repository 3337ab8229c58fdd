#!/usr/bin/env python
r"""The NCE pipeline: warm-up, search with channel expansion, derivation, final QAT training, report.

Examples:

    python tools/nce.py --flagfile=flags/quickstart.flags --workdir=runs/quickstart
    python tools/nce.py --flagfile=flags/search/cifar10_resnet20_nce.flags --tfds_data_dir=/data/tfds \
        --workdir=runs/r20_nce

Writes WORKDIR/arch.json, WORKDIR/metrics.json (test accuracy, MACs and PARAMs of the derived
network and of the original), WORKDIR/report.md, and the final training under WORKDIR/train/.
The tools share one flag set (--help lists it); re-running the same command resumes.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nce_tf import cli  # noqa: E402  (sets TF's log level before TensorFlow loads)
from absl import flags  # noqa: E402

from nce_tf import tool_flags  # noqa: E402

tool_flags.define_flags()
flags.adopt_module_key_flags(tool_flags)


def main(argv):
    config, search = cli.tool_configs(argv)
    from nce_tf.pipeline import run_nce

    run_nce(config, search)


if __name__ == "__main__":
    cli.run(main)
