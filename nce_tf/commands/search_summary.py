r"""Summarise finished searches: expanded layers, derived MACs / PARAMs ratios, the CE's Kendall scores.

Examples:

    nce-tf search-summary runs/small/w2a2_s0 runs/small/w32a32_s0
    nce-tf search-summary runs/small/*/ --by_layer --json=runs/small/summary.json
    nce-tf search-summary runs/premise/search_* --probe=runs/premise/sensitivity/sensitivity.json

Prints one markdown table (a line per search work directory: bits, seed, layers expanded and by
how many candidates, the derived network's MACs and PARAMs as ratios of the original, the largest
probability any widest candidate reached, the mean per-layer Kendall score of the cross-entropy's
alpha gradient, wall time), then what drove alpha (the cost terms' share of the architecture
steps, the cost / CE gradient norm ratio, the 1X sub-network's accuracy), and with --probe the
rank correlation of each search's derived widths with the sensitivity probe's per-layer measures
(nce_tf/analysis/search_vs_probe.py). See nce_tf/analysis/searches.py. From a checkout, python
tools/search_summary.py takes the same arguments.
"""

import os

from absl import flags

from nce_tf import cli
from nce_tf.analysis import search_vs_probe, searches

flags.DEFINE_boolean("by_layer", False, "Also print per-layer CE Kendall scores and expansions, averaged over "
                     "the searches of each bit width.")
flags.DEFINE_string("json", "", "Also write every summary (per-layer scores included) to this JSON file.")
flags.DEFINE_string("probe", "", "A sensitivity.json of `nce-tf analyze sensitivity`: also test each search's "
                    "derived widths against the probe's per-layer CE changes (Kendall's tau, permutation p).")
flags.DEFINE_float("probe_ratio", 0.5, "The probe's width ratio the --probe test reads (one of its grid).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) < 2:
        cli.fail("Expected one or more search work directories. Received: none.")
    sensitivity = search_vs_probe.read_sensitivity(FLAGS.probe) if FLAGS.probe else None
    summaries = [searches.summarize(d) for d in argv[1:]]
    print(searches.markdown(summaries))
    print()
    print(searches.drive_markdown(summaries))
    if sensitivity is not None:
        results = [(os.path.basename(os.path.normpath(s["workdir"])),
                    search_vs_probe.agreement(s, sensitivity, ratio=FLAGS.probe_ratio)) for s in summaries]
        for s, (_, r) in zip(summaries, results):
            s["probe_agreement"] = r
        print()
        print(search_vs_probe.markdown(results))
    if FLAGS.by_layer:
        print()
        print(searches.layer_markdown(summaries))
    if FLAGS.json:
        searches.write_json(summaries, FLAGS.json)

