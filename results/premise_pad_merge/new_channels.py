"""Did the expanded candidate's new channels switch on? (post hoc, README "The same measurements with a merge
that does not favour the wider")

The beyond-1X searches start the new candidate 1.125n warm: its first n channels take n's BN, its new n/8
channels gamma = beta = 0, so it computes what n does. R (its log-probability over n's at the end) can only
measure the new channels' worth if they came to compute something. This reads each finished b1x search's last
checkpoint (runs/ of the machine that ran it: checkpoints are not committed) and, per expanded row, the new
candidate's BN on its new channels against its old ones: mean |gamma| and mean |beta| on channels
[C_n, C_1.125n) and mean |gamma| on [0, C_n). One record per search, committed:

    python results/premise_pad_merge/new_channels.py runs/beyond/b1x_*/ runs/pad/b1x_*/ \
        --json=results/premise_pad_merge/new_channels.json
    python results/premise_pad_merge/new_channels.py --summary     # the README's figures, from the record
"""

import argparse
import json
import os
import statistics
import sys

import numpy as np

from nce_tf import provenance
from nce_tf.jobs.search import restore_search

HERE = os.path.dirname(os.path.abspath(__file__))


def read(workdir):
    tcfg, scfg, job = restore_search(workdir)
    net = job.net
    k = net.num_candidates.numpy()
    rows = []
    # net._conv_layers maps a node index to its layer (the super-net's own bookkeeping): the first conv of
    # each row is the one whose BN the row's candidates own (a tied shortcut conv shares the row).
    seen = set()
    for i, node in enumerate(net.space.nodes):
        layer = net._conv_layers.get(i)
        if layer is None or not getattr(layer, "use_bn", False) or node.row in seen or k[node.row] < 3:
            continue
        seen.add(node.row)
        j = int(k[node.row]) - 1
        old, new = int(net.table_np[node.row, j - 1]), int(net.table_np[node.row, j])
        gamma, beta = layer.gamma.numpy()[j], layer.beta.numpy()[j]
        rows.append({"row": node.row, "name": node.name, "channels": [old, new],
                     "new_abs_gamma": float(np.abs(gamma[old:new]).mean()),
                     "new_abs_beta": float(np.abs(beta[old:new]).mean()),
                     "old_abs_gamma": float(np.abs(gamma[:old]).mean())})
    return {"workdir": workdir, "w_bits": tcfg.w_bits, "pair_merge": scfg.pair_merge, "seed": tcfg.seed,
            "rows": rows}


def summary():
    with open(os.path.join(HERE, "new_channels.json"), encoding="utf-8") as f:
        data = json.load(f)
    for merge in ("cwi", "pad"):
        for bits in (2, 32):
            recs = [r for r in data["searches"] if r["pair_merge"] == merge and r["w_bits"] == bits]
            ratio = [row["new_abs_gamma"] / row["old_abs_gamma"] for r in recs for row in r["rows"]]
            beta = [row["new_abs_beta"] for r in recs for row in r["rows"]]
            if ratio:
                print(f"{merge} W{bits}A{bits}: {len(recs)} searches, {len(ratio)} expanded rows; new channels' "
                      f"mean |gamma| / old channels' {statistics.fmean(ratio):.4f} (largest {max(ratio):.4f}); "
                      f"new channels' mean |beta| {statistics.fmean(beta):.4f} (largest {max(beta):.4f})")


def main(argv):
    if argv == ["--summary"]:
        return summary()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdirs", nargs="+")
    parser.add_argument("--json", required=True)
    a = parser.parse_args(argv)
    code = provenance.record()  # the code this process loaded, before anything is written
    searches = [read(w) for w in a.workdirs]
    with open(a.json, "w", encoding="utf-8") as f:
        json.dump({"provenance": code, "searches": searches}, f, indent=1)
    print(f"wrote {a.json}: {len(searches)} searches")


if __name__ == "__main__":
    main(sys.argv[1:])
