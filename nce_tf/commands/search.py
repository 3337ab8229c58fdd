r"""Search a model's channel widths with NCE (or TAS / random / WRPN) and write arch.json.

Examples:

    nce-tf search --flagfile=quickstart --workdir=runs/search
    nce-tf search --flagfile=cifar_subset/nce_small_budget --workdir=runs/nce_small

Writes WORKDIR/arch.json (the derived widths, their MACs / PARAMs, the search settings and the
per-layer candidate counts) and WORKDIR/search_log.jsonl (one line per epoch). The tools share one
flag set (--help lists it); re-running the same command resumes from the last finished epoch.
From a checkout, python tools/search.py takes the same flags.
"""

from absl import flags

from nce_tf import cli
from nce_tf.cli import config_flags

config_flags.define_flags()
flags.adopt_module_key_flags(config_flags)


def main(argv):
    config, search = cli.tool_configs(argv)
    # loaded after the flags are checked: a bad flag fails before TensorFlow and the jobs load
    from nce_tf.jobs.search import run_search

    run_search(config, search)
