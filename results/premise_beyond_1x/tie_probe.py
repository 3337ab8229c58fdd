"""Does the search's CE gradient prefer the widest candidate in an exact tie? (post hoc, README "One step past n")

From a trained network, the beyond-1X search's super-net (its settings, before any search step): every row is
expanded once, warm, so 1.125n first computes exactly what n does (in float), and alpha is set to a tie over
the three live candidates. An unbiased estimate of the CE gradient then gives 1.125n and n the same
gradient in expectation; the pair merge (channel-wise interpolation of the narrower partner) need not. Per row,
the mean over arch-half batches of the gaps g(n) - g(1.125n) (the new tie: positive = the CE wants the
wider) and g(0.875n) - g(n) (two real widths, for scale), with their standard errors over batches; and the
row mean's sign-flip test over the batches (disjoint images; Monte Carlo past 2^20 patterns). Run from
the repository's root, after results/premise_beyond_1x/commands.sh has restored the networks into runs/r8:

    python results/premise_beyond_1x/tie_probe.py --bits=32 --seed=0 --batches=40 --json=results/premise_beyond_1x/tie_probe/w32a32_s0.json

(the architecture half has 39 batches of 64, so 40 takes them all)

and, over the committed per-network records (the network is the unit; exact sign-flip over the 8):

    python results/premise_beyond_1x/tie_probe.py --summary

``--merge=pad`` is the control: the narrower partner zero-padded instead of interpolated (records
``..._pad.json``), under which the float tie must give the two candidates the same gradient. (Its records,
at b4a656a, swapped the layers' merge function in this process; since 76adf3d the layers' own
``pair_merge`` is set, the same matrix.)

``--from_search=WORKDIR`` probes the super-net a finished search left instead (its recorded settings, its last
checkpoint; e.g. one trained from scratch under the merge, results/merge_from_scratch/plan.md), and
``--summary=DIR`` summarises a directory of records named ``w32a32_s<seed>[_pad].json``.
"""

import argparse
import json
import os
import sys

import numpy as np
import tensorflow as tf

from nce_tf import provenance, stats
from nce_tf.cli import config_flags, flagfiles
from nce_tf.data.pipeline import make_pipeline
from nce_tf.jobs.search import _Search  # the search job as the CLI builds it (settings, init_from, split)
from nce_tf.jobs.search import restore_search
from nce_tf.search.expansion import expand
from absl import flags


def configs(bits, seed):
    args = ["--flagfile=cifar_subset/nce_from_trained", "--model=resnet8", f"--init_from=runs/r8/w{bits}a{bits}_s{seed}",
            f"--w_bits={bits}", f"--a_bits={bits}", f"--seed={seed + 100}", "--width_ratios=0.875,1",
            "--threshold=0.6", "--max_width_ratio=1.125", "--expansion_init=warm", "--lambda_flops=0",
            "--lambda_params=0", "--noenforce_budget", "--tau_min=5", "--workdir=/tmp/tie_probe_unused"]
    values = flags.FlagValues()
    config_flags.define_flags(values)
    values(flagfiles.expand(["tool", *args]))
    return config_flags.config_from_flags(values).validate(), config_flags.search_config_from_flags(values).validate()


def summary(here=None):
    here = here or os.path.join(os.path.dirname(os.path.abspath(__file__)), "tie_probe")
    cwi_real, cwi_tie = {}, {}
    for merge, bits in (("", 32), ("", 2), ("_pad", 32), ("_pad", 2)):
        # the networks probed with both merges if any was (a pilot may hold fewer than 8)
        seeds = [s for s in range(8) if os.path.exists(os.path.join(here, f"w{bits}a{bits}_s{s}.json"))
                 and (not merge or os.path.exists(os.path.join(here, f"w{bits}a{bits}_s{s}{merge}.json")))]
        if not seeds:
            continue
        names = [os.path.join(here, f"w{bits}a{bits}_s{s}{merge}.json") for s in seeds]
        recs = [json.load(open(n, encoding="utf-8")) for n in names]
        print(f"merge {recs[0].get('merge', 'cwi')}:", end=" ")
        tie = [r["gap_new_row_mean"] for r in recs]
        real = [r["gap_old_row_mean"] for r in recs]
        ratio = [t / g for t, g in zip(tie, real)]
        if not merge:
            cwi_real[bits], cwi_tie[bits] = dict(zip(seeds, real)), dict(zip(seeds, tie))
        else:  # the share of the interpolating merge's real-width gap that padding removes
            d = [cwi_tie[bits][s] - p for s, p in zip(seeds, tie)]
            print(f"W{bits}A{bits}: tie gap cwi - pad per network mean {np.mean(d):+.4f} (exact sign-flip over the "
                  f"networks p = {stats.sign_flip_test(d)['p']:.3g})")
            share = [1 - p / cwi_real[bits][s] for s, p in zip(seeds, real)]
            kept = np.mean([cwi_real[bits][s] for s in seeds])
            print(f"W{bits}A{bits}: padding removes {1 - np.mean(real) / kept:.2f} of the real-width "
                  f"gap (per network {min(share):.2f} to {max(share):.2f})")
        commits = sorted({(r["provenance"]["commit"] or "")[:7] + ("-dirty" if r["provenance"]["dirty"] else "")
                          for r in recs})
        print(f"W{bits}A{bits}: tie gap g(n) - g(1.125n), row mean per network: {', '.join(f'{t:+.4f}' for t in tie)}"
              f" (mean {np.mean(tie):+.4f}; exact sign-flip over {len(tie)} networks p = {stats.sign_flip_test(tie)['p']:.3g});"
              f" real gap g(0.875n) - g(n): mean {np.mean(real):+.4f}; tie / real per network "
              f"{min(ratio):.2f}-{max(ratio):.2f}; largest |logit| difference n vs 1.125n "
              f"{max(r['max_logit_diff_n_vs_1.125n'] for r in recs):.2g}; within-network p "
              f"{min(r['gap_new_row_mean_p'] for r in recs):.2g} to {max(r['gap_new_row_mean_p'] for r in recs):.2g}; "
              f"real gap per network {min(real):+.4f} to {max(real):+.4f}; commits {', '.join(commits)}")


def main(argv):
    if argv == ["--summary"]:
        return summary()
    if len(argv) == 1 and argv[0].startswith("--summary="):
        return summary(argv[0].split("=", 1)[1])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, choices=(2, 32))
    parser.add_argument("--seed", type=int, choices=range(8))
    parser.add_argument("--from_search", default="", help="a finished search's work directory (instead of --bits "
                        "and --seed: the beyond-1X super-net from a trained network)")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--json", default="")
    parser.add_argument("--merge", choices=("cwi", "pad"), default="cwi",
                        help="cwi: the search's merge; pad: the narrower partner zero-padded (the control)")
    a = parser.parse_args(argv)
    if not a.from_search and (a.bits is None or a.seed is None):
        parser.error("--bits and --seed are required without --from_search")
    code = provenance.record()  # the code this process loaded, before anything is written
    if a.from_search:
        tcfg, scfg, job = restore_search(a.from_search)
        a.bits, a.seed = tcfg.w_bits, tcfg.seed
    else:
        tcfg, scfg = configs(a.bits, a.seed)
        job = _Search(tcfg, scfg, verbose=False)
        job.prepare(tf.distribute.get_strategy())
        job.build()
    net = job.net
    for layer in net.conv_layers:  # the probe runs eagerly: a layer reads its merge at each call
        if hasattr(layer, "pair_merge"):
            layer.pair_merge = a.merge
    k = net.num_candidates.numpy()
    alpha = np.zeros(net.alpha.shape, "float32")
    alpha[np.arange(len(k)), k - 1] = 10.0  # every row's widest dominates: one expansion each
    net.alpha.assign(alpha)
    grown = expand(net, threshold=scfg.threshold, seed=tcfg.seed)
    assert len(grown) == len(k), grown
    net.alpha.assign(np.zeros(net.alpha.shape, "float32"))  # a tie over the three live candidates
    batches = make_pipeline(job.ds_a, job.info, training=True, batch_size=64, seed=tcfg.seed)
    # the function identity the tie rests on: the sub-networks at n and at 1.125n, one batch, inference BN
    x0, _ = next(iter(batches))
    widths = [net.table_np[r, k[r] - 1] for r in range(len(k))]
    wider = [net.table_np[r, k[r]] for r in range(len(k))]
    same = float(tf.reduce_max(tf.abs(net.forward(x0, net.subnet_sample(widths))[0]
                                      - net.forward(x0, net.subnet_sample(wider))[0])))
    grads = []
    for i, (x, y) in enumerate(batches):
        if i == a.batches:
            break
        with tf.GradientTape() as tape:
            logits, _ = net.forward(x, net.sample(), training=True)
            ce = net.ce(y, logits)
        grads.append(tape.gradient(ce, net.alpha).numpy()[:, :3])
    g = np.stack(grads)  # [batches, rows, 3]: 0.875n, n, 1.125n
    new, old = g[:, :, 1] - g[:, :, 2], g[:, :, 0] - g[:, :, 1]
    se = lambda v: v.std(0, ddof=1) / np.sqrt(len(v))  # noqa: E731
    out = {"bits": a.bits, "seed": a.seed, "merge": a.merge, "from_search": a.from_search or None, "batches": len(g), "max_logit_diff_n_vs_1.125n": same,
           "gap_new_mean": new.mean(0).tolist(), "gap_new_se": se(new).tolist(),
           "gap_old_mean": old.mean(0).tolist(), "gap_old_se": se(old).tolist(),
           # the row mean per batch: batches are the units (disjoint images of the arch half); sign-flip test of 0
           "gap_new_row_mean": float(new.mean()), "gap_new_row_mean_p": stats.sign_flip_test(new.mean(1))["p"],
           "gap_old_row_mean": float(old.mean()), "provenance": code}
    print(json.dumps(out))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
