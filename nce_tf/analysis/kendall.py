"""Fig. 4: the channel preference of the architecture gradients, with and without quantization
and with and without expansion.

A search records, per epoch, the mean gradient of the architecture loss with respect to every
layer's live alpha entries, in two parts (``search_log.jsonl``): the cross-entropy's
(``alpha_grad_ce``) and the cost constraint's (``alpha_grad_cost``).  The score reads the
cross-entropy's part alone: the cost part is monotone in width by construction (``d E[F] / d
alpha_j`` grows with ``C_j``), so a score of the sum is +-1 whenever the constraint is active,
with or without quantization.  For a layer, the Kendall score is the mean over epochs of
Kendall's tau between the candidate widths and the negative CE gradient
(:func:`nce_tf.analysis.metrics.kendall_tau`): +1 when the cross-entropy always ranks wider
candidates as more wanted, -1 when it always prefers narrower ones.  The paper's observation:
quantization during the search raises the score (quantization errors make the loss prefer more
channels), and NCE's expansion raises it further.
"""

import csv
import json
import os

import numpy as np

from nce_tf.analysis import metrics, plots


def read_log(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def layer_scores(log, part="ce"):
    """Per layer, the preference score of one gradient part (``ce`` or ``cost``) over the search epochs."""
    key = f"alpha_grad_{part}"
    epochs = [r for r in log if r.get(key)]
    if not epochs:
        return []
    scores = []
    for row in range(len(epochs[0][key])):
        per_epoch = []
        for r in epochs:
            g = np.asarray(r[key][row], "float64")
            if np.any(g):
                per_epoch.append(metrics.kendall_tau(np.arange(len(g)), -g))
        scores.append(float(np.mean(per_epoch)) if per_epoch else 0.0)
    return scores


def run(logs_by_label, out_dir, layer=None):
    """Writes ``kendall.png``, ``kendall.csv``, ``kendall.json`` for ``{label: search_log.jsonl path}``."""
    logs = {label: read_log(path) for label, path in logs_by_label.items()}
    scores = {label: layer_scores(log) for label, log in logs.items()}
    n = max(len(s) for s in scores.values())
    with open(os.path.join(out_dir, "kendall.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["layer", *scores])
        for row in range(n):
            writer.writerow([row, *[s[row] if row < len(s) else "" for s in scores.values()]])
    cost = {label: layer_scores(log, "cost") for label, log in logs.items()}
    summary = {"scores": scores, "mean": {k: float(np.mean(v)) if v else None for k, v in scores.items()},
               "cost_scores": cost, "part": "cross-entropy"}
    with open(os.path.join(out_dir, "kendall.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    first = next(iter(logs.values()))
    layer = (n // 2) if layer is None else layer
    fig, (ax1, ax2) = plots.figure(9.0, 7.0, rows=2, sharex=False)
    grads = [r["alpha_grad_ce"][layer] for r in first if r.get("alpha_grad_ce")]
    width = max((len(g) for g in grads), default=0)
    for j in range(width):
        ax1.plot([g[j] if j < len(g) else np.nan for g in grads], label=f"candidate {j + 1}")
    ax1.set_title(f"cross-entropy gradients of layer {layer}'s alpha ({next(iter(logs))}), per search epoch")
    ax1.set_xlabel("search epoch")
    ax1.legend(fontsize=6, ncol=4)
    for i, (label, s) in enumerate(scores.items()):
        ax2.plot(range(len(s)), s, marker="o", label=label, color=f"C{i}")
    ax2.set_xlabel("layer")
    ax2.set_ylabel("Kendall score")
    ax2.legend()
    plots.save(fig, os.path.join(out_dir, "kendall.png"))
    return summary
