r"""Summarise finished searches: expanded layers, derived MACs / PARAMs ratios, the CE's Kendall scores.

Examples:

    nce-tf search-summary runs/small/w2a2_s0 runs/small/w32a32_s0
    nce-tf search-summary runs/small/*/ --by_layer --json=runs/small/summary.json

Prints one markdown table (a line per search work directory: bits, seed, layers expanded and by
how many candidates, the derived network's MACs and PARAMs as ratios of the original, the largest
probability any widest candidate reached, the mean per-layer Kendall score of the cross-entropy's
alpha gradient, wall time). See nce_tf/analysis/searches.py. From a checkout, python
tools/search_summary.py takes the same arguments.
"""

from absl import flags

from nce_tf import cli

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

