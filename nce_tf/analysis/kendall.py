"""Fig. 4: the channel preference of the architecture gradients, with and without quantization
and with and without expansion.

A search records, per epoch, the mean gradient of the architecture loss with respect to every
layer's live alpha entries, in two parts (``search_log.jsonl``): the cross-entropy's
(``alpha_grad_ce``) and the cost constraint's (``alpha_grad_cost``).  The score reads the
cross-entropy's part alone: the cost part is monotone in width by construction (``d E[F] / d
alpha_j`` grows with ``C_j``), so a score of the sum is +-1 whenever the constraint is active,
with or without quantization.  The paper's observation: quantization during the search raises
the score (quantization errors make the loss prefer more channels), and NCE's expansion raises
it further.

Per layer (row) and search epoch ``e``, with ``g_e`` the epoch's mean CE gradient over the ranked
candidates (every live one, or with ``min_ratio`` only those at least ``min_ratio`` times the
row's original width ``n``, ascending in width):

- **score** (the paper's): Kendall's tau between the candidates' widths and ``-g_e``
  (:func:`nce_tf.analysis.metrics.kendall_tau`), averaged over the search epochs: +1 when the
  cross-entropy always ranks wider candidates as more wanted, -1 when it always prefers narrower
  ones.  It counts how consistently the order holds, not how strongly: every epoch weighs the
  same however small its gradients, and with all candidates ranked, the pairs with the ``n/8``
  candidates (which any precision rejects) are 13 of the 28 pairs of a 1x8 row;
  ``min_ratio=0.5`` ranks the candidates from ``n/2`` up only.
- **gap**: ``d_e = g_e[narrowest] - g_e[widest]`` (the narrowest and widest ranked candidates),
  positive when the CE pushes the widest candidate's alpha up more than the narrowest's; its mean
  over the ``E`` search epochs, ``gap = mean(d)``, is in gradient units;
- **gap_t**: the size measure, ``gap / (std(d, ddof=1) / sqrt(E))``: the mean gap in units of
  its standard error over the search epochs (a t statistic, ``E >= 2``), so ``|gap_t| > 2``
  says the widest-vs-narrowest preference is there beyond the epoch-to-epoch noise, and its
  size compares across searches whose gradients differ in scale.

An epoch whose ranked gradients are all zero (no architecture step) is left out of all three.
Logs written before an expansion's new entry was left out of its epoch's mean recorded it as
0 (or as a mean over steps it was not live in); their expanded rows are cut back to the
candidates live at the epoch's start (:func:`search_gradients`).

Fig. 4c compares TAS 1x8 searches with and without quantization (and NCE searches), same
seeds: :func:`run` takes groups of searches and reports per layer each group's mean and spread
over the seeds (``nce-tf analyze kendall --group=...``).

Example:

>>> log = [{"phase": "search", "alpha_grad_steps": 4, "alpha_grad_ce": [[0.3, 0.1, -0.2]]},
...        {"phase": "search", "alpha_grad_steps": 4, "alpha_grad_ce": [[0.2, 0.3, -0.1]]}]
>>> [round(s["score"], 3) for s in layer_stats(log)], [round(s["gap"], 3) for s in layer_stats(log)]
([0.667], [0.4])
"""

import csv
import json
import os

import numpy as np

from nce_tf.analysis import metrics, plots
from nce_tf.errors import UsageError


def read_log(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def nce_ratios(rows, k=16):
    """Candidate width / original width of the NCE grid, ``(j + 1) / 8``, for ``rows`` rows."""
    return [[(j + 1) / 8 for j in range(k)] for _ in range(rows)]


def search_gradients(log, part="ce"):
    """``(epoch, [per-row gradient list])`` of every search epoch that recorded the part.

    A record written before entries were averaged over their own live steps (no
    ``alpha_grad_steps``) holds, for each row it expanded, entries the expansion added: they are
    cut back to the row's candidate count of the record before.
    """
    key, out, previous = f"alpha_grad_{part}", [], None
    for r in log:
        grads = r.get(key)
        if grads and r.get("phase", "search") == "search":
            if "alpha_grad_steps" not in r and previous is not None:
                grads = [g[:previous[i]] if i in r.get("expanded_rows", ()) else g for i, g in enumerate(grads)]
            out.append((r.get("epoch"), grads))
        previous = r.get("num_candidates", previous)
    return out


def layer_stats(log, part="ce", min_ratio=0.0, ratios=None):
    """Per layer, ``{"score", "gap", "gap_t", "epochs"}`` of one gradient part over the search epochs.

    Args:
        log: the records of one ``search_log.jsonl``.
        part: ``ce`` or ``cost``.
        min_ratio: rank only the candidates at least this many times the row's original width.
        ratios: per row, each candidate's width / original width (default :func:`nce_ratios`).

    ``score`` and ``gap`` are ``0.0`` and ``gap_t`` ``None`` for a layer with no epoch to read
    (``gap_t`` is also ``None`` with fewer than two epochs or a gap that never varies).
    """
    epochs = search_gradients(log, part)
    if not epochs:
        return []
    rows = len(epochs[0][1])
    ratios = nce_ratios(rows) if ratios is None else ratios
    out = []
    for row in range(rows):
        taus, gaps = [], []
        for _, grads in epochs:
            g = np.asarray(grads[row], "float64")
            ranked = np.flatnonzero(np.asarray(ratios[row][:len(g)]) >= min_ratio - 1e-9)
            if len(ranked) < 2 or not np.any(g[ranked]):
                continue
            taus.append(metrics.kendall_tau(ranked, -g[ranked]))
            gaps.append(g[ranked[0]] - g[ranked[-1]])
        out.append({"score": float(np.mean(taus)) if taus else 0.0, "gap": float(np.mean(gaps)) if gaps else 0.0,
                    "gap_t": metrics.t_statistic(gaps), "epochs": len(taus)})
    return out


def layer_scores(log, part="ce", min_ratio=0.0, ratios=None):
    """Per layer, the preference score of one gradient part (``ce`` or ``cost``) over the search epochs."""
    return [s["score"] for s in layer_stats(log, part, min_ratio, ratios)]


def search_run(path):
    """``(log, ratios, layer names, seed)`` of a search: a work directory or its ``search_log.jsonl``.

    The candidates' width ratios and the layer names come from the ``arch.json`` beside the log
    when there is one (the NCE grid and row numbers otherwise), the seed from ``search_config.json``.
    """
    workdir = path if os.path.isdir(path) else os.path.dirname(path)
    log_path = os.path.join(path, "search_log.jsonl") if os.path.isdir(path) else path
    if not os.path.exists(log_path):
        raise UsageError(f"Not a search work directory or log. Received: {path!r} (no {log_path}).")
    log = read_log(log_path)
    ratios = names = seed = None
    arch_path = os.path.join(workdir, "arch.json")
    if os.path.exists(arch_path):
        with open(arch_path, encoding="utf-8") as f:
            arch = json.load(f)
        grid, original = (arch.get("width_grid") or {}).get("candidates"), arch.get("original_widths")
        if grid and original:
            ratios = [[c / n for c in row] for row, n in zip(grid, original)]
        names, seed = arch.get("width_names"), arch.get("seed")
    config_path = os.path.join(workdir, "search_config.json")
    if seed is None and os.path.exists(config_path):
        with open(config_path, encoding="utf-8") as f:
            seed = json.load(f).get("seed")
    return log, ratios, names, seed


def _spread(values):
    """Sample standard deviation over seeds (0 for one seed)."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def group_stats(paths, min_ratio=0.0):
    """One group's searches (same settings, several seeds): per layer the mean and spread of the score
    over the seeds, the mean of ``gap_t``, and each search's own numbers."""
    runs = []
    for path in paths:
        log, ratios, names, seed = search_run(path)
        stats = layer_stats(log, "ce", min_ratio, ratios)
        runs.append({"path": path, "seed": seed, "names": names, "scores": [s["score"] for s in stats],
                     "gap": [s["gap"] for s in stats], "gap_t": [s["gap_t"] for s in stats],
                     "cost_scores": layer_scores(log, "cost", min_ratio, ratios)})
    layers = max(len(r["scores"]) for r in runs)
    column = lambda key, i: [r[key][i] for r in runs if i < len(r[key]) and r[key][i] is not None]  # noqa: E731
    mean = lambda v: float(np.mean(v)) if v else None  # noqa: E731
    return {"runs": runs, "seeds": [r["seed"] for r in runs],
            "names": next((r["names"] for r in runs if r["names"]), None) or [str(i) for i in range(layers)],
            "score": [mean(column("scores", i)) for i in range(layers)],
            "spread": [_spread(column("scores", i)) for i in range(layers)],
            "gap_t": [mean(column("gap_t", i)) for i in range(layers)],
            "cost_score": [mean(column("cost_scores", i)) for i in range(layers)]}


def run(groups, out_dir, layer=None, min_ratio=0.0):
    """Writes ``kendall.png``, ``kendall.csv``, ``kendall.json`` for ``{label: searches}``; returns the summary.

    A group's searches are one path (a ``search_log.jsonl`` or a work directory) or a list of them
    (the seeds of one setting).  The summary's ``scores`` / ``cost_scores`` hold each group's
    per-layer mean over its seeds, ``spread`` the standard deviation over them, ``gap_t`` the
    mean size measure, ``groups`` everything per search (see the module doc).
    """
    groups = {label: group_stats([paths] if isinstance(paths, str) else list(paths), min_ratio)
              for label, paths in groups.items()}
    n = max(len(g["score"]) for g in groups.values())
    names = next(iter(groups.values()))["names"]
    with open(os.path.join(out_dir, "kendall.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["layer", *[f"{label} {c}" for label in groups for c in ("score", "spread", "gap_t")]])
        for row in range(n):
            writer.writerow([names[row] if row < len(names) else row,
                             *[_cell(g[key], row) for g in groups.values() for key in ("score", "spread", "gap_t")]])
    summary = {"scores": {k: g["score"] for k, g in groups.items()},
               "mean": {k: float(np.mean([s for s in g["score"] if s is not None])) if g["score"] else None
                        for k, g in groups.items()},
               "spread": {k: g["spread"] for k, g in groups.items()}, "gap_t": {k: g["gap_t"] for k, g in groups.items()},
               "cost_scores": {k: g["cost_score"] for k, g in groups.items()}, "part": "cross-entropy",
               "min_ratio": min_ratio, "layers": names, "groups": groups}
    with open(os.path.join(out_dir, "kendall.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    _figure(groups, out_dir, n // 2 if layer is None else layer, next(iter(groups)))
    return summary


def _cell(values, row):
    return "" if row >= len(values) or values[row] is None else values[row]


def table(summary):
    """A markdown table of :func:`run`'s summary: per layer, each group's score mean +- spread and gap_t."""
    groups = summary["groups"]
    lines = ["| layer | " + " | ".join(f"{label} (n={len(g['runs'])}): score +- std, gap_t" for label, g in groups.items())
             + " |", "|---|" + "---|" * len(groups)]
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    for row, name in enumerate(summary["layers"]):
        cells = [f"{fmt(_at(g['score'], row), '+.2f')} +- {fmt(_at(g['spread'], row), '.2f')}, "
                 f"{fmt(_at(g['gap_t'], row), '+.1f')}" for g in groups.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| mean | " + " | ".join(fmt(summary["mean"][label], "+.2f") for label in groups) + " |")
    return "\n".join(lines)


def _at(values, row):
    return values[row] if row < len(values) else None


def _figure(groups, out_dir, layer, first_label):
    """Top: one search's CE gradients of ``layer`` per epoch; bottom: every group's score per layer."""
    fig, (ax1, ax2) = plots.figure(9.0, 7.0, rows=2, sharex=False)
    log = search_run(groups[first_label]["runs"][0]["path"])[0]
    grads = [g[layer] for _, g in search_gradients(log) if layer < len(g)]
    for j in range(max((len(g) for g in grads), default=0)):
        ax1.plot([g[j] if j < len(g) else np.nan for g in grads], label=f"candidate {j + 1}")
    ax1.set_title(f"cross-entropy gradients of layer {layer}'s alpha ({first_label}), per search epoch")
    ax1.set_xlabel("search epoch")
    ax1.legend(fontsize=6, ncol=4)
    for i, (label, g) in enumerate(groups.items()):
        score = np.array([np.nan if s is None else s for s in g["score"]])
        ax2.errorbar(range(len(score)), score, yerr=g["spread"], marker="o", capsize=3, label=label, color=f"C{i}")
    ax2.set_xlabel("layer")
    ax2.set_ylabel("Kendall score (mean +- std over seeds)")
    ax2.legend()
    plots.save(fig, os.path.join(out_dir, "kendall.png"))
