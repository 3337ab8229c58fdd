"""Fig. 1: how quantization changes the activations, layer by layer, and how NCE compensates.

For every activation site (a ``ReLU`` or a PACT ``QuantActivation``, named alike in the zoo's
networks whatever their widths) of each network, over a batch of test images:

- ``std``: the standard deviation of the site's output;
- ``sqnr_db``: for PACT sites, the SQNR of the quantized output against the float ReLU of the
  same input, ``10 log10(sum relu(x)^2 / sum (relu(x) - q(x))^2)`` (clipping counts as noise).

Networks compared: the original W32A32 and W2A2 networks and the NCE-derived W2A2 network.
"""

import csv
import json
import os

import keras
import numpy as np

from nce_tf.analysis import metrics, plots
from nce_tf.search.ops import keras_op


def activation_stats(model, images, batch_size=128):
    """``{site name: {"std": ..., "sqnr_db": ... or None}}`` of every activation site of ``model``."""
    sites = [layer for layer in model.layers if getattr(keras_op(layer), "kind", "") == "act"]  # PACT or ReLU
    probe = keras.Model(model.inputs, [t for s in sites for t in (s.input, s.output)])
    inputs = {s.name: [] for s in sites}
    outputs = {s.name: [] for s in sites}
    for start in range(0, len(images), batch_size):
        values = probe([images[start:start + batch_size]], training=False)
        for i, s in enumerate(sites):
            inputs[s.name].append(np.asarray(values[2 * i]))
            outputs[s.name].append(np.asarray(values[2 * i + 1]))
    stats = {}
    for s in sites:
        x, y = np.concatenate(inputs[s.name]), np.concatenate(outputs[s.name])
        quantized = getattr(s, "quantizer", None) is not None
        stats[s.name] = {"std": float(y.std()),
                         "sqnr_db": metrics.sqnr_db(np.maximum(x, 0), y) if quantized else None}
    return stats


def run(models_by_label, images, out_dir):
    """Writes ``stdev.png``, ``stdev.csv``, ``stdev.json`` for ``{label: keras model}``."""
    stats = {label: activation_stats(m, images) for label, m in models_by_label.items()}
    sites = list(next(iter(stats.values())))
    rows = []
    for site in sites:
        row = {"site": site}
        for label, s in stats.items():
            entry = s.get(site, {})
            row[f"std_{label}"] = entry.get("std")
            row[f"sqnr_db_{label}"] = entry.get("sqnr_db")
        rows.append(row)
    with open(os.path.join(out_dir, "stdev.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(out_dir, "stdev.json"), "w", encoding="utf-8") as f:
        json.dump({"sites": sites, "stats": stats}, f, indent=2)
    fig, (ax1, ax2) = plots.figure(max(8.0, 0.45 * len(sites)), 6.5, rows=2)
    x = np.arange(len(sites))
    for i, label in enumerate(stats):
        color = f"C{i}"  # the same colour for a network in both panels
        ax1.plot(x, [stats[label].get(s, {}).get("std", np.nan) for s in sites], marker="o", label=label, color=color)
        sq = [stats[label].get(s, {}).get("sqnr_db") for s in sites]
        if any(v is not None for v in sq):
            ax2.plot(x, [np.nan if v is None else v for v in sq], marker="s", label=label, color=color)
    ax1.set_ylabel("std of output activations")
    ax1.legend()
    ax2.set_ylabel("SQNR of PACT output (dB)")
    ax2.set_xticks(x, [s.removesuffix("_act") for s in sites], rotation=70, fontsize=7)
    ax2.legend()
    plots.save(fig, os.path.join(out_dir, "stdev.png"))
    return {"sites": sites, "stats": stats}
