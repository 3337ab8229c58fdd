"""Fig. 2: accuracy against FLOPs and against PARAMs, NCE against uniform widening (WRPN).

Input: finished ``tools/nce.py`` runs (their ``metrics.json``), labelled by method, at several
budgets.  Output: ``tradeoff.png`` (two panels: accuracy vs MACs, accuracy vs PARAMs, one line per
method ordered by cost), ``tradeoff.csv`` and ``tradeoff.json``.
"""

import csv
import json
import os

from nce_tf.analysis import plots


def collect(runs):
    """``[(method, budget, metrics dict)]`` -> rows of method, budget, accuracy, MACs, PARAMs."""
    return [{"method": m, "budget": b, "test_accuracy": r["test_accuracy"], "macs": r["macs"],
             "params": r["params"]} for m, b, r in runs]


def run(runs, out_dir):
    rows = collect(runs)
    with open(os.path.join(out_dir, "tradeoff.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(out_dir, "tradeoff.json"), "w", encoding="utf-8") as f:
        json.dump(rows, f, indent=2)
    fig, (ax1, ax2) = plots.figure(9.0, 4.0, rows=2, sharex=False)
    for i, method in enumerate(sorted({r["method"] for r in rows})):
        mine = [r for r in rows if r["method"] == method]
        for ax, key, scale in ((ax1, "macs", 1e-6), (ax2, "params", 1e-3)):
            pts = sorted((r[key] * scale, 100 * r["test_accuracy"]) for r in mine)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method, color=f"C{i}")
    ax1.set_xlabel("MACs (M)")
    ax2.set_xlabel("PARAMs (K)")
    for ax in (ax1, ax2):
        ax.set_ylabel("test accuracy (%)")
        ax.legend()
    plots.save(fig, os.path.join(out_dir, "tradeoff.png"))
    return rows
