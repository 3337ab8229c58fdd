"""How much the re-estimated projection BN cost each compression right after derivation (0.25x W8A8 cell).

Until the fix that freezes it, ``reestimate_bn`` re-estimated the BN of every identity projection the
derived network inserts at a residual add (gamma 1, beta 0), which then standardised the shortcut.
For each finished run of the cell (``results/compress_cifar.jsonl``, 0.25x W8A8, methods nce / l1_*),
this re-derives the network at the run's recorded widths from the run's trained network, exactly as
the pipeline's derive step does (inherit, PACT clips from statistics, BN re-estimation on the same
seeded batches), and reads the test accuracy twice: with the projection BN re-estimated (as the run
did: it should reproduce the record's ``derived`` accuracy) and frozen as the identity (as now).
No training; writes ``projection_bn.json`` beside this file (one entry per run, with provenance).

    python results/compress_cifar/projection_bn.py     # from the repository root, ~15 min on 2 cores
"""

import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests"))  # the tools' own flag parser, as the tests use it

from nce_tf import provenance  # noqa: E402
from nce_tf.compression import pipeline  # noqa: E402
from nce_tf.compression.inherit import calibrate_clips, inherited_model, reestimate_bn  # noqa: E402
from nce_tf.jobs.train import PACT_STATS_BATCHES  # noqa: E402
from tool_settings import compress_configs  # noqa: E402


def projections(model):
    return [layer for layer in model.layers if "_proj" in layer.name and layer.name.endswith("_bn")]


def derived_accuracy(tcfg, scfg, ccfg, setup, widths, frozen):
    model = inherited_model(setup.trained, widths, tcfg.policy(), tcfg.weight_decay, net=setup.net)
    for bn in projections(model):  # frozen: the identity (as now); trainable: re-estimated (as the runs did)
        bn.trainable = not frozen
    calibrate_clips(model, pipeline._batches(setup.source, tcfg, "compress/pact", PACT_STATS_BATCHES), seed=tcfg.seed)
    reestimate_bn(model, pipeline._batches(setup.source, tcfg, "compress/bn", ccfg.bn_batches))
    test = pipeline._batches(setup.source, tcfg, "compress/test", 0, training=False)
    return pipeline.accuracy(model, test), len(projections(model))


def main():
    os.chdir(REPO)
    out = []
    records = [json.loads(line) for line in open("results/compress_cifar.jsonl", encoding="utf-8")]
    cell = [r for r in records if r["budget"].get("flops_ratio") == 0.25 and r["w_bits"] == 8
            and r["method"] != "scratch"]
    for r in sorted(cell, key=lambda r: (r["seeds"]["seed"], r["method"])):
        seed = r["seeds"]["seed"]
        args = [f"--trained={r['settings']['trained']}", "--flagfile=cifar_subset/base", "--flops_ratio=0.25",
                "--params_ratio=0", "--w_bits=8", "--a_bits=8", "--method=l1_uniform", "--epochs=0",
                f"--seed={seed}", "--workdir=/tmp/projection_bn", "--noexport", "--verbose=0"]
        tcfg, scfg, ccfg = compress_configs(args)
        setup = pipeline._setup(tcfg, scfg, ccfg)
        re_estimated, n = derived_accuracy(tcfg, scfg, ccfg, setup, r["widths"], frozen=False)
        frozen, _ = derived_accuracy(tcfg, scfg, ccfg, setup, r["widths"], frozen=True)
        row = {"run": r["run"], "method": r["method"], "seed": seed, "widths": r["widths"], "projections": n,
               "recorded_derived": r["accuracy"]["derived"], "derived_re_estimated": re_estimated,
               "derived_frozen": frozen, "provenance": provenance.record()}
        print(json.dumps({k: v for k, v in row.items() if k != "provenance"}), flush=True)
        out.append(row)
    with open(os.path.join(REPO, "results", "compress_cifar", "projection_bn.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
