#!/usr/bin/env python
r"""Search a zoo model's channel widths with NCE (or TAS / random / WRPN) and write arch.json.

Examples:

    python tools/search.py --flagfile=flags/quickstart.flags --workdir=runs/search
    python tools/search.py --flagfile=flags/search/cifar10_resnet20_nce.flags --tfds_data_dir=/data/tfds \
        --workdir=runs/r20_nce

Writes WORKDIR/arch.json (the derived widths, their MACs / PARAMs, the search settings and the
per-layer candidate counts) and WORKDIR/search_log.jsonl (one line per epoch). The tools share one
flag set (--help lists it); re-running the same command resumes from the last finished epoch.
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
    from nce_tf.jobs.search import run_search

    run_search(config, search)


if __name__ == "__main__":
    cli.run(main)
