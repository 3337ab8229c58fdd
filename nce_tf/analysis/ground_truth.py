"""Ground truth for the sensitivity probe: one-layer-changed networks trained, and the rank agreement.

The one-shot probe (:mod:`nce_tf.analysis.sensitivity`) estimates what a one-layer change costs
from a shared super-net; whether that estimate ranks the changes as training them would is a
measurement, not an assumption.  :func:`run` trains, with a trained run's own recipe (its
``config.json``: data, epochs, learning rate, bits, ``init_from``), the original widths and every
one-layer change of a handful of layers, each with several seeds; :func:`agreement` compares
the retrained accuracy changes (seed-matched differences from the original's trainings, averaged)
with the probe's, by Kendall's tau over the changes and its exact permutation p.

Each training is an ordinary ``nce-tf train`` work directory (``OUT/LABEL/NAME_sSEED``), resumed or
skipped when it exists, so a stopped ground truth continues where it stopped.

Example:

>>> agreement({("a", 0.5): -0.10, ("b", 0.5): -0.02, ("c", 1.5): 0.01},
...           {("a", 0.5): [-0.08, -0.12], ("b", 0.5): [-0.03, 0.0], ("c", 1.5): [0.02, 0.0]})["kendall_tau"]
1.0
"""

import dataclasses
import os

import numpy as np

from nce_tf.analysis.metrics import kendall_tau
from nce_tf.analysis.probe_config import one_layer_widths
from nce_tf.arch import Arch
from nce_tf.stats import rank_correlation_test
from nce_tf.train.config import TrainConfig

REFERENCE = ("original", 1.0)


def plan(names, default_widths, rows, ratios, seeds):
    """``[(key, widths, seed)]``: the original and every ``(row name, ratio)`` change, for each seed."""
    index = {name: i for i, name in enumerate(names)}
    changes = [REFERENCE] + [(row, float(r)) for row in rows for r in ratios]
    out = []
    for key in changes:
        widths = list(default_widths) if key == REFERENCE else one_layer_widths(default_widths, index[key[0]], key[1])
        out.extend((key, widths, int(seed)) for seed in seeds)
    return out


def run(settings, model, names, default_widths, rows, ratios, seeds, out_dir, train_fn, verbose=True):
    """Trains the plan of :func:`plan` with a run's recipe; returns ``{key: {seed: test accuracy}}``.

    Args:
        settings: the trained run's ``config.json`` (its recipe; seed and work directory replaced).
        model: the model name the widths are of.
        names, default_widths: the rows' names and original widths.
        rows, ratios, seeds: the layers, width changes and training seeds.
        out_dir: where the trainings' work directories go.
        train_fn: ``nce_tf.jobs.run_training`` (or a stand-in with its signature).
    """
    results = {}
    for key, widths, seed in plan(names, default_widths, rows, ratios, seeds):
        workdir = os.path.join(out_dir, f"{key[0]}_{key[1]}_s{seed}")
        config = dataclasses.replace(TrainConfig.from_settings(settings), workdir=workdir, seed=seed, model=model,
                                     arch="", verbose=0)
        if verbose:
            print(f"nce-tf: ground truth {key[0]} at {key[1]}x, seed {seed} -> {workdir}", flush=True)
        metrics = train_fn(config, arch=Arch(model=model, widths=widths))
        results.setdefault(key, {})[seed] = float(metrics["test_accuracy"])
    return results


def deltas(results):
    """``{change: [accuracy - the original's, per seed both have]}`` (seed-matched differences)."""
    ref = results.get(REFERENCE, {})
    return {key: [acc[s] - ref[s] for s in sorted(acc) if s in ref]
            for key, acc in results.items() if key != REFERENCE}


def agreement(one_shot, retrained):
    """Kendall's tau between the probe's changes and the retrained ones, over the changes both have.

    Args:
        one_shot: ``{(layer, ratio): the probe's mean accuracy change}``.
        retrained: ``{(layer, ratio): [retrained changes, one per seed]}`` (:func:`deltas`).
    """
    keys = sorted(k for k in one_shot if retrained.get(k))
    a = [one_shot[k] for k in keys]
    b = [float(np.mean(retrained[k])) for k in keys]
    # The exact permutation p of "no association" (n <= 9); with 4 changes it cannot go below 1/12.
    test = rank_correlation_test(a, b) if len(keys) >= 3 else {}
    return {"changes": [list(k) for k in keys], "one_shot": a, "retrained": b,
            "kendall_tau": kendall_tau(a, b) if len(keys) >= 2 else None,
            "p": test.get("p"), "p_min": test.get("p_min")}


def markdown(label, found, retrained):
    """``ground_truth.md``'s lines for one precision: each change's probe and retrained accuracy
    change (points; per seed and mean), then Kendall's tau and its exact p."""
    lines = [f"## {label}", "", "| layer | width | probe (mean over networks) | retrained, per seed | retrained, mean |",
             "|---|---|---|---|---|"]
    for (layer, ratio), probe, mean in zip(found["changes"], found["one_shot"], found["retrained"]):
        seeds = ", ".join(f"{100 * d:+.2f}" for d in retrained[(layer, ratio)])
        lines.append(f"| {layer} | {ratio}x | {100 * probe:+.2f} | {seeds} | {100 * mean:+.2f} |")
    tau, p = found["kendall_tau"], found.get("p")
    lines += ["", f"Kendall tau (probe vs retrained) over {len(found['changes'])} changes: "
              + ("-" if tau is None else f"{tau:+.2f}")
              + ("" if p is None else f", exact permutation p = {p:.3g} (smallest possible {found['p_min']:.3g})"), ""]
    return lines
