"""The sensitivity probes of several trained networks side by side: per layer, per precision, with intervals.

Each probe (:func:`nce_tf.analysis.sensitivity.probe`) is one trained network: the unit of every
comparison here (a network's test images are not independent replicates of its training).  For
each layer and width change, a precision's networks give the mean change of test accuracy with a
t interval over networks, and the two precisions are compared by
:func:`nce_tf.stats.compare` (Welch interval, exact permutation test over networks, the
minimum difference the design could detect at 80% power).  With 3 networks a precision the
permutation test cannot give p below 0.1: the interval and the detectable difference say what the
design can resolve.

Example:

>>> rows = summarize([
...     {"label": "W2A2", "changes": [{"layer": "c", "n": 16, "width": 8, "ratio": 0.5, "delta_accuracy": -0.05,
...                                   "delta_ce": 0.2}]},
...     {"label": "W2A2", "changes": [{"layer": "c", "n": 16, "width": 8, "ratio": 0.5, "delta_accuracy": -0.03,
...                                   "delta_ce": 0.1}]}], ["W2A2"])
>>> rows[0]["groups"]["W2A2"]["mean"], rows[0]["groups"]["W2A2"]["n"]
(-0.04, 2)
"""

import collections
import json
import os

import numpy as np

from nce_tf.analysis import plots
from nce_tf.io_utils import atomic_write_text
from nce_tf import stats


def _interval(values, level=0.95):
    """``(mean, low, high)`` of a t interval over ``values`` (``None`` bounds with fewer than 2)."""
    v = np.asarray(values, np.float64)
    mean = float(v.mean())
    if v.size < 2:
        return mean, None, None
    half = float(stats.t_quantile((1 + level) / 2, v.size - 1)) * float(v.std(ddof=1)) / np.sqrt(v.size)
    return mean, mean - half, mean + half


def summarize(probes, labels, metric="delta_accuracy"):
    """Per (layer, ratio): each label's networks' ``metric`` (mean, t interval) and, for two labels,
    their comparison (the first minus the second).

    Args:
        probes: probe results, each with a ``label`` (e.g. ``"W2A2"``) and its ``changes``.
        labels: the labels, in the order the comparison takes them.
        metric: ``delta_accuracy`` or ``delta_ce``.
    """
    values = collections.defaultdict(lambda: collections.defaultdict(list))
    meta = {}
    for p in probes:
        for c in p["changes"]:
            key = (c["layer"], c["ratio"])
            values[key][p["label"]].append(c[metric])
            meta[key] = (c["n"], c["width"])
    rows = []
    for key in sorted(values, key=lambda k: (list(meta).index(k), k[1])):
        rows.append(_row(key[0], key[1], meta[key][0], meta[key][1], values[key], labels))
    return rows


def _row(layer, ratio, n, width, values, labels):
    """One table row: per label its values' mean and t interval, and for two labels their comparison."""
    groups = {}
    for label in labels:
        v = values.get(label, [])
        if v:
            mean, low, high = _interval(v)
            groups[label] = {"n": len(v), "mean": round(mean, 10), "low": low, "high": high, "values": v}
    row = {"layer": layer, "ratio": ratio, "n": n, "width": width, "groups": groups}
    if len(labels) == 2 and all(len(values.get(label, [])) >= 2 for label in labels):
        row["comparison"] = stats.compare(values[labels[0]], values[labels[1]])
    return row


def overall(probes, labels, metric="delta_accuracy"):
    """Per ratio: each network's mean ``metric`` over the layers it probed, then per label the mean
    with a t interval over networks and, for two labels, their comparison: is width, on average over
    layers, worth more at one precision than at the other?"""
    per = collections.defaultdict(lambda: collections.defaultdict(list))
    for p in probes:
        by_ratio = collections.defaultdict(list)
        for c in p["changes"]:
            by_ratio[c["ratio"]].append(c[metric])
        for ratio, v in by_ratio.items():
            per[ratio][p["label"]].append(float(np.mean(v)))
    return [_row("mean over layers", ratio, "-", "-", per[ratio], labels) for ratio in sorted(per)]


def _pct(x, signed=True):
    return "-" if x is None else (f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}")


def markdown(rows, labels, metric="delta_accuracy"):
    """The per-layer table (points of accuracy, or CE x 100) as Markdown."""
    unit = "points" if metric == "delta_accuracy" else "CE x 100"
    head = ["layer (n)", "width"] + [f"{label}: change ({unit}) [95% t interval], networks" for label in labels]
    if len(labels) == 2:
        head += [f"{labels[0]} - {labels[1]} [Welch 95%]", "p (permutation)", "smallest detectable"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = ([r["layer"], f"{r['ratio']}x"] if r["n"] == "-" else
                 [f"{r['layer']} ({r['n']})", f"{r['width']} ({r['ratio']}x)"])
        for label in labels:
            g = r["groups"].get(label)
            cells.append("-" if g is None else f"{_pct(g['mean'])} [{_pct(g['low'])}, {_pct(g['high'])}], {g['n']}")
        if len(labels) == 2:
            c = r.get("comparison")
            if c is None:
                cells += ["-", "-", "-"]
            else:
                cells += [f"{_pct(c['difference'])} [{_pct(c['low'])}, {_pct(c['high'])}]",
                          "-" if c["p"] is None else f"{c['p']:.3g}", _pct(c["mdd"], signed=False)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write(probes, labels, out_dir):
    """Writes ``sensitivity.json`` (every probe and both summaries), ``sensitivity.md`` and ``sensitivity.png``."""
    os.makedirs(out_dir, exist_ok=True)
    summary = {m: summarize(probes, labels, m) for m in ("delta_accuracy", "delta_ce")}
    summary["overall"] = overall(probes, labels)
    atomic_write_text(os.path.join(out_dir, "sensitivity.json"),
                      json.dumps({"labels": labels, "probes": probes, "summary": summary}, indent=1))
    refs = "\n".join(f"- {p['label']} `{p['run']}`: reference (1X, BN re-estimated) accuracy "
                     f"{100 * p['reference']['accuracy']:.2f}%, CE {p['reference']['ce']:.3f}" for p in probes)
    text = (f"# Width sensitivity per layer\n\n{refs}\n\n## Mean over layers (test accuracy)\n\n"
            f"{markdown(summary['overall'], labels)}\n\n## Test accuracy\n\n"
            f"{markdown(summary['delta_accuracy'], labels)}\n\n## Cross-entropy\n\n"
            f"{markdown(summary['delta_ce'], labels, 'delta_ce')}\n")
    atomic_write_text(os.path.join(out_dir, "sensitivity.md"), text)
    _figure(summary["delta_accuracy"], labels, os.path.join(out_dir, "sensitivity.png"))
    return summary


def _figure(rows, labels, path):
    ratios = sorted({r["ratio"] for r in rows})
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    fig, axes = plots.figure(max(6.0, 0.45 * len(layers)), 2.6 * len(ratios), rows=len(ratios))
    axes = np.atleast_1d(axes)
    for ax, ratio in zip(axes, ratios):
        for k, label in enumerate(labels):
            xs, ys, err = [], [], [[], []]
            for i, layer in enumerate(layers):
                g = next((r["groups"].get(label) for r in rows if r["layer"] == layer and r["ratio"] == ratio), None)
                if g is None:
                    continue
                xs.append(i + (k - (len(labels) - 1) / 2) * 0.25)
                ys.append(100 * g["mean"])
                # max(0, .): the record's mean is rounded to 10 decimals, so with no spread (two equal
                # values) it can sit a hair outside its own interval, and matplotlib refuses negative bars.
                err[0].append(0 if g["low"] is None else max(0.0, 100 * (g["mean"] - g["low"])))
                err[1].append(0 if g["high"] is None else max(0.0, 100 * (g["high"] - g["mean"])))
            ax.errorbar(xs, ys, yerr=err, fmt="o", capsize=2, label=label)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylabel(f"{ratio}x: acc. change (pts)")
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels(layers if ax is axes[-1] else [], rotation=75, fontsize=7)
    axes[0].legend(fontsize=8)
    plots.save(fig, path)
