"""What a set of searches derived: expansion, cost ratios and the cross-entropy's channel preference.

For each search work directory (``arch.json`` + ``search_log.jsonl``) :func:`summarize` reads

- the rows that expanded (``num_candidates`` above the row's initial count, from the log's
  first search epoch) and by how many candidates;
- the derived widths' MACs and PARAMs as ratios of the original network;
- the per-layer Kendall score of the cross-entropy's part of alpha's gradient
  (:func:`nce_tf.analysis.kendall.layer_scores`; Fig. 4c's quantity) and its mean;
- the largest probability any row's widest candidate reached (how close T was).

:func:`markdown` lays several of them out as one table, :func:`layer_markdown` the per-layer
scores and expansions averaged over the searches of each bit width (``tools/search_summary.py``).
"""

import json
import os

import numpy as np

from nce_tf import arch as arch_lib
from nce_tf.analysis import kendall
from nce_tf.errors import UsageError


def summarize(workdir):
    """One search's summary as a dict (see the module doc)."""
    arch_path, log_path = os.path.join(workdir, "arch.json"), os.path.join(workdir, "search_log.jsonl")
    for path in (arch_path, log_path):
        if not os.path.exists(path):
            raise UsageError(f"Not a finished search work directory. Received: {workdir!r} (no {os.path.basename(path)}).")
    arch = arch_lib.load_arch(arch_path)
    log = kendall.read_log(log_path)
    search = [r for r in log if r.get("phase") == "search"]
    start = np.asarray(search[0]["num_candidates"] if search else arch.extra.get("num_candidates", []))
    final = np.asarray(arch.extra.get("num_candidates", start))
    names = arch.extra.get("width_names") or [str(i) for i in range(len(final))]
    grown = [(names[i], int(final[i] - start[i])) for i in np.flatnonzero(final > start)]
    p_widest = [max(p[k - 1] for p, k in zip(r["probs"], r["num_candidates"])) for r in search]
    scores = kendall.layer_scores(log, "ce")
    return {
        "workdir": workdir, "model": arch.model, "w_bits": arch.extra.get("w_bits"), "a_bits": arch.extra.get("a_bits"),
        "seed": arch.extra.get("seed"), "expanded": grown, "layers_expanded": len(grown),
        "macs_ratio": arch.extra.get("macs_ratio"), "params_ratio": arch.extra.get("params_ratio"),
        "kendall_ce": scores, "kendall_ce_mean": float(np.mean(scores)) if scores else None,
        "max_p_widest": float(max(p_widest)) if p_widest else None,
        "elapsed_seconds": log[-1].get("elapsed_seconds") if log else None,
        "widths": arch.widths, "original_widths": arch.extra.get("original_widths"), "layers": list(names),
    }


def markdown(summaries):
    """A markdown table: one line per search."""
    lines = ["| search | bits | seed | layers expanded (+candidates) | MACs ratio | PARAMs ratio | "
             "max p(widest) | Kendall (CE), mean | minutes |", "|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        grown = ", ".join(f"{n} +{k}" for n, k in s["expanded"]) or "none"
        minutes = f"{s['elapsed_seconds'] / 60:.1f}" if s["elapsed_seconds"] else "-"
        kmean = f"{s['kendall_ce_mean']:+.2f}" if s["kendall_ce_mean"] is not None else "-"
        lines.append(f"| {os.path.basename(os.path.normpath(s['workdir']))} | W{s['w_bits']}A{s['a_bits']} | "
                     f"{s['seed']} | {s['layers_expanded']}: {grown} | {s['macs_ratio']:.3f} | "
                     f"{s['params_ratio']:.3f} | {s['max_p_widest']:.3f} | {kmean} | {minutes} |")
    return "\n".join(lines)


def layer_markdown(summaries):
    """Per layer and per bit width: mean (and spread) of the CE Kendall score, searches that expanded it."""
    groups = {}
    for s in summaries:
        groups.setdefault(f"W{s['w_bits']}A{s['a_bits']}", []).append(s)
    names = summaries[0]["layers"]
    head = "| layer | " + " | ".join(f"{g}: Kendall (CE) mean +- std, expanded in" for g in groups) + " |"
    lines = [head, "|---|" + "---|" * len(groups)]
    for i, name in enumerate(names):
        cells = []
        for runs in groups.values():
            k = [r["kendall_ce"][i] for r in runs if i < len(r["kendall_ce"])]
            grown = sum(1 for r in runs if any(n == name for n, _ in r["expanded"]))
            cells.append(f"{np.mean(k):+.2f} +- {np.std(k):.2f}, {grown}/{len(runs)}" if k else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    means = [np.mean([r["kendall_ce_mean"] for r in runs if r["kendall_ce_mean"] is not None]) for runs in groups.values()]
    lines.append("| mean | " + " | ".join(f"{m:+.2f}" for m in means) + " |")
    return "\n".join(lines)


def write_json(summaries, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(summaries, f, indent=1)
