#!/usr/bin/env python
r"""Summarise finished searches: expanded layers, derived MACs / PARAMs ratios, the CE's Kendall scores.

Examples:

    python tools/search_summary.py runs/small/w2a2_s0 runs/small/w32a32_s0
    python tools/search_summary.py runs/small/*/ --by_layer --json=runs/small/summary.json

Prints one markdown table (a line per search work directory: bits, seed, layers expanded and by
how many candidates, the derived network's MACs and PARAMs as ratios of the original, the largest
probability any widest candidate reached, the mean per-layer Kendall score of the cross-entropy's
alpha gradient, wall time). See nce_tf/analysis/searches.py.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nce_tf import cli  # noqa: E402
from absl import flags  # noqa: E402

flags.DEFINE_boolean("by_layer", False, "Also print per-layer CE Kendall scores and expansions, averaged over "
                     "the searches of each bit width.")
flags.DEFINE_string("json", "", "Also write every summary (per-layer scores included) to this JSON file.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) < 2:
        cli.fail("Expected one or more search work directories. Received: none.")
    from nce_tf.analysis import searches

    summaries = [searches.summarize(d) for d in argv[1:]]
    print(searches.markdown(summaries))
    if FLAGS.by_layer:
        print()
        print(searches.layer_markdown(summaries))
    if FLAGS.json:
        searches.write_json(summaries, FLAGS.json)


if __name__ == "__main__":
    cli.run(main)
