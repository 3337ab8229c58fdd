"""Fig. 5: the channels of every searched layer in the original and in the derived network."""

import csv
import json
import os

import numpy as np

from nce_tf import arch as arch_lib
from nce_tf.analysis import plots
from nce_tf.sources import default_widths, width_names
from nce_tf.sources.user import keras_name


def run(arch_path, out_dir):
    """Writes ``channels.png``, ``channels.csv`` and ``channels.json`` from an ``arch.json``."""
    arch = arch_lib.load_arch(arch_path)

    names, original, derived = width_names(arch.model), default_widths(arch.model), arch.widths
    rows = [{"layer": n, "original": o, "derived": d, "ratio": d / o} for n, o, d in zip(names, original, derived)]
    with open(os.path.join(out_dir, "channels.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = {"model": arch.model, "layers": rows, "expanded": sum(d > o for o, d in zip(original, derived)),
               "narrowed": sum(d < o for o, d in zip(original, derived))}
    with open(os.path.join(out_dir, "channels.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    fig, ax = plots.figure(max(6.0, 0.4 * len(names)), 4.0)
    x = np.arange(len(names))
    ax.bar(x - 0.2, original, 0.4, label="original", color="#9aa5b1")
    ax.bar(x + 0.2, derived, 0.4, label="derived (NCE)", color="#d9480f")
    ax.set_xticks(x, [n.removesuffix("_conv") for n in names], rotation=70, fontsize=7)
    ax.set_ylabel("output channels")
    ax.set_title(f"{keras_name(arch.model)}: channels per layer, original vs derived")
    ax.legend()
    plots.save(fig, os.path.join(out_dir, "channels.png"))
    return summary
