"""What a set of searches derived: expansion, cost ratios and the cross-entropy's channel preference.

For each search work directory (``arch.json`` + ``search_log.jsonl``) :func:`summarize` reads

- the rows that expanded (``num_candidates`` above the row's initial count: ``arch.json``'s
  ``width_grid``, else the log's warm-up; until this was fixed it was read off the log's first
  search epoch, after that epoch's expansions, which missed them) and by how many candidates;
- the derived widths' MACs and PARAMs as ratios of the original network;
- the per-layer Kendall score of the cross-entropy's part of alpha's gradient
  (:func:`nce_tf.analysis.kendall.layer_stats`; Fig. 4c's quantity) and its mean, with the size
  measures beside it: the gap between the narrowest and widest candidates' CE gradients and that
  gap in units of its standard error over the search epochs (``gap_t``), per layer and their means;
- the largest probability any row's widest candidate reached (how close T was), the final
  probabilities of each row's live candidates and, per row, the epoch whose check first expanded it;
- what drove alpha (:func:`drive`): per budgeted unit, the share of architecture steps its cost
  term pushed down or up; the cost part's gradient norm over the CE part's; the 1X sub-network's
  accuracy on the architecture half at the first and the last epoch.

:func:`markdown` lays several of them out as one table, :func:`layer_markdown` the per-layer
scores and expansions averaged over the searches of each bit width (``tools/search_summary.py``).
"""

import json
import os

import numpy as np

from nce_tf import arch as arch_lib
from nce_tf.analysis import kendall
from nce_tf.errors import UsageError
from nce_tf.search.methods import method_for


def _initial_candidates(arch, log):
    """Each row's live candidates before the search expanded any: recorded in ``arch.json``'s ``width_grid``
    since nce-tf 866426b; before, the last warm-up epoch's record (nothing expands in a warm-up); without
    one, for an expanding method on the default grid, the candidates up to the row's original width;
    else the first search epoch's record (after that epoch's expansions: what grew then is missed)."""
    grid = arch.extra.get("width_grid") or {}
    if "initial_candidates" in grid:
        return np.asarray(grid["initial_candidates"])
    warmup = [r for r in log if r.get("phase") == "warmup"]
    if warmup:
        return np.asarray(warmup[-1]["num_candidates"])
    original = arch.extra.get("original_widths")
    mode = (arch.extra.get("search") or {}).get("mode", "nce")
    if grid.get("candidates") and original and grid.get("width_ratios", "nce") == "nce" and method_for(mode).expands:
        return np.asarray([sum(c <= n for c in row) for row, n in zip(grid["candidates"], original)])
    search = [r for r in log if r.get("phase") == "search"]
    return np.asarray(search[0]["num_candidates"] if search else arch.extra.get("num_candidates", []))


def summarize(workdir):
    """One search's summary as a dict (see the module doc)."""
    arch_path, log_path = os.path.join(workdir, "arch.json"), os.path.join(workdir, "search_log.jsonl")
    for path in (arch_path, log_path):
        if not os.path.exists(path):
            raise UsageError(f"Not a finished search work directory. Received: {workdir!r} (no {os.path.basename(path)}).")
    arch = arch_lib.load_arch(arch_path)
    log = kendall.read_log(log_path)
    search = [r for r in log if r.get("phase") == "search"]
    start = _initial_candidates(arch, log)
    final = np.asarray(arch.extra.get("num_candidates", start))
    names = arch.extra.get("width_names") or [str(i) for i in range(len(final))]
    grown = [(names[i], int(final[i] - start[i])) for i in np.flatnonzero(final > start)]
    p_widest = [max(p[k - 1] for p, k in zip(r["probs"], r["num_candidates"])) for r in search]
    stats = kendall.layer_stats(log, "ce")
    scores = [r["score"] for r in stats]
    gap = [r["gap"] for r in stats if r["epochs"]]  # rows with no epoch to read are left out of both means
    gap_t = [r["gap_t"] for r in stats if r["gap_t"] is not None]
    return {
        "workdir": workdir, "model": arch.model, "w_bits": arch.extra.get("w_bits"), "a_bits": arch.extra.get("a_bits"),
        "seed": arch.extra.get("seed"), "expanded": grown, "layers_expanded": len(grown),
        "macs_ratio": arch.extra.get("macs_ratio"), "params_ratio": arch.extra.get("params_ratio"),
        "kendall_ce": scores, "kendall_ce_mean": float(np.mean(scores)) if scores else None,
        "kendall_gap": [r["gap"] for r in stats], "kendall_gap_t": [r["gap_t"] for r in stats],
        "kendall_gap_mean": float(np.mean(gap)) if gap else None,
        "kendall_gap_t_mean": float(np.mean(gap_t)) if gap_t else None, "kendall_gap_t_rows": len(gap_t),
        "max_p_widest": float(max(p_widest)) if p_widest else None,
        "final_probs": arch.extra.get("final_probs"), "expanded_at": _expanded_at(log, len(final)),
        "elapsed_seconds": log[-1].get("elapsed_seconds") if log else None,
        "widths": arch.widths, "original_widths": arch.extra.get("original_widths"), "layers": list(names),
        "mode": (arch.extra.get("search") or {}).get("mode"), "supernet_training": arch.extra.get("supernet_training"),
        # recorded only when set (SearchConfig.to_dict): a search without it merged by interpolation
        "pair_merge": (arch.extra.get("search") or {}).get("pair_merge", "cwi"),
        "provenance": arch.extra.get("provenance"), **drive(log),
    }


def _expanded_at(log, rows):
    """Per row, the epoch (``search_log.jsonl``'s) whose expansion check first grew it; None if none did."""
    out = [None] * rows
    for record in log:
        for row in record.get("expanded_rows", ()):
            if out[row] is None:
                out[row] = record["epoch"]
    return out


def drive(log):
    """How much of a search the cost term drove, from its log's instruments (empty before they existed).

    Returns ``{"cost_active": {unit: {"down", "up"}}, "grad_norm_ratio", "subnet_1x_accuracy"}``:
    the share of all search-phase architecture steps in which each unit's constraint pushed the cost
    down / up (epochs weighted by their steps); per row the mean cost-part gradient norm over the
    mean CE-part norm, the median over rows (above 1: the cost part's push was the larger); and the
    1X sub-network's accuracy ``[first record, last record]``.
    """
    search = [r for r in log if r.get("phase") == "search" and r.get("alpha_grad_steps")]
    out = {}
    if search:
        steps = np.array([r["alpha_grad_steps"] for r in search], np.float64)
        units = sorted({u for r in search for u in r.get("cost_active", {})})
        out["cost_active"] = {u: {d: float(sum(r["cost_active"].get(u, {}).get(d, 0.0) * n
                                               for r, n in zip(search, steps)) / steps.sum())
                                  for d in ("down", "up")} for u in units}
        ce, cost = (np.array([r[f"alpha_grad_norm_{k}"] for r in search], np.float64) for k in ("ce", "cost"))
        if ce.size:
            ratio = (cost * steps[:, None]).sum(0) / np.maximum((ce * steps[:, None]).sum(0), 1e-30)
            out["grad_norm_ratio"] = float(np.median(ratio))
    accuracy = [r["subnet_1x_accuracy"] for r in log if "subnet_1x_accuracy" in r]
    if accuracy:
        out["subnet_1x_accuracy"] = [accuracy[0], accuracy[-1]]
        # Unrecorded in logs from before the field: the read-out took running statistics up to commit
        # 10bb112 and batch statistics from the next one (see jobs/search_log.subnet_accuracy).
        out["subnet_1x_statistics"] = next(r.get("subnet_1x_statistics", "unrecorded") for r in log
                                           if "subnet_1x_accuracy" in r)
    # Per epoch: the phase, the sampled sub-networks' training accuracy, the accuracy of the forwards
    # alpha's CE gradient was read from (arch_accuracy) and the 1X read-out.
    keys = ("epoch", "phase", "accuracy", "arch_accuracy", "subnet_1x_accuracy")
    out["trajectory"] = [{k: r[k] for k in keys if k in r} for r in log]
    return out


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


def drive_markdown(summaries):
    """One line per search: the cost terms' shares of the architecture steps, the cost / CE gradient
    norm ratio, and the 1X sub-network's accuracy at the first and last epoch (:func:`drive`)."""
    lines = ["| search | bits | mode | cost pushing down / up (share of arch steps) | cost / CE grad norm "
             "(median row) | 1X accuracy first -> last |", "|---|---|---|---|---|---|"]
    for s in summaries:
        active = ", ".join(f"{u} {a['down']:.2f} / {a['up']:.2f}" for u, a in s.get("cost_active", {}).items())
        ratio = f"{s['grad_norm_ratio']:.2f}" if "grad_norm_ratio" in s else "-"
        acc = "{:.3f} -> {:.3f}".format(*s["subnet_1x_accuracy"]) if "subnet_1x_accuracy" in s else "-"
        lines.append(f"| {os.path.basename(os.path.normpath(s['workdir']))} | W{s['w_bits']}A{s['a_bits']} | "
                     f"{s.get('mode') or '-'} | {active or '-'} | {ratio} | {acc} |")
    return "\n".join(lines)


def write_json(summaries, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(summaries, f, indent=1)
