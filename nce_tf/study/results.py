"""A study's results: one row per training, a summary per method, the reference method against
each other one, and the Fig. 3-style figure.

Files written in the study's work directory (rewritten after every finished run):

- ``study.json``: ``rows`` (every finished training: method, structure, search and training seed,
  widths, MACs, PARAMs and their ratios to the original network, expanded layers, test
  accuracy, wall time of the training and of its structure's search, the provenance of both:
  :mod:`nce_tf.provenance`), ``summary`` (per method),
  ``comparisons`` (reference minus each method, a fixed method that trains another's network
  compared once: interval, test, p-value, MDD), ``widths`` (per
  method and layer, the mean width as a multiple of the original's) and the study's settings;
- ``study.csv``: the rows, one per line (widths and expanded layers joined by spaces);
- ``summary.md``: the three tables as markdown;
- ``study.png``: accuracy per method, one point per structure (the mean of its trainings, the
  bar spanning their lowest to highest), the method's mean as a line (the paper's Fig. 3).

Per method: ``trainings`` mean +- std over all of its trainings; ``structures`` mean +- std over
its structures of each structure's mean.

**Comparisons** (the reference minus every other method, :mod:`nce_tf.stats`).  The unit is
the structure, for every method: a searched method's units are its structures' mean accuracies
(over their trainings); the original network and WRPN's widening are one structure each, one
unit, whose trainings are replicates (they measure that structure's accuracy and its standard
error, not a spread of structures).  Each comparison gives the difference of means, its Welch t
interval (coverage ``level``), a p-value and the test that gave it, the units, the minimum
difference detectable at 80% power (MDD) and whether the difference is *resolved*
(``p < 1 - level``):

- several structures a side: the exact two-sided permutation test on structure means (a seeded
  Monte Carlo over ``resamples`` relabelings past 10^6 of them);
- one structure on a side: a Welch t test of the other side's mean structure against that
  network's accuracy, its standard error from its trainings (the permutation test of 1 vs n
  cannot give p below ``1 / (n + 1)``, and asks whether the network is like a random structure
  of the method, not whether the method beats it); untested without two trainings of it.

**No pairing.**  A paired test is right only where the two members of a pair share something
that moves both.  In this study design nothing does: a ``random`` structure's search seed only
draws its widths; the split of the training set is ``split_seed`` (111) for every search; ``tas``
and ``nce`` with one search seed see the same batches from super-nets of different search spaces,
but the structure each derives is then trained from scratch with an initialisation of its own
(seeded by the training seed and the structure's widths).  What all structures share, the
training seeds' data orders, is one set for the whole study: it shifts every structure mean alike
and cancels in every difference.  So the comparisons are unpaired, fixed before any result is
seen (pairing or not must not be chosen by which resolves);
:func:`nce_tf.stats.sign_flip_test` is there for designs whose pairs do share something
(one structure under two training recipes, say).
"""

import csv
import io
import json
import os
import statistics

from nce_tf import arch as arch_lib
from nce_tf.io_utils import atomic_write_json, atomic_write_text
from nce_tf.plans.plan import read_done
from nce_tf.results.study_summary import comparisons, distinct_comparisons, markdown, summary

CSV_FIELDS = ("method", "structure", "search_seed", "train_seed", "test_accuracy", "macs", "params",
              "macs_ratio", "params_ratio", "layers_expanded", "expanded", "widths", "train_seconds",
              "search_seconds")


def run_record(run):
    """What a finished run produced, read from its work directory: the study's part of its
    ``<run>.done.json`` (the planner adds the wall time, :mod:`nce_tf.plans`)."""
    record = {"key": run.key, "method": run.method, "structure": run.structure, "kind": run.kind,
              "search_seed": run.search_seed, "train_seed": run.train_seed, "workdir": run.workdir}
    if run.kind == "search":
        arch = arch_lib.load_arch(os.path.join(run.workdir, "arch.json"))
        expanded = []
        if os.path.exists(os.path.join(run.workdir, "search_log.jsonl")):
            # the analysis loads matplotlib: a study's records are read without it
            from nce_tf.analysis import searches

            expanded = searches.summarize(run.workdir)["expanded"]
        record.update(widths=arch.widths, macs=arch.extra["macs"], params=arch.extra["params"],
                      original_macs=arch.extra["original_macs"], original_params=arch.extra["original_params"],
                      macs_ratio=arch.extra["macs_ratio"], params_ratio=arch.extra["params_ratio"],
                      within_budget=arch.extra.get("within_budget"), expanded=[[n, int(k)] for n, k in expanded],
                      provenance=arch.extra.get("provenance"))
    else:
        with open(os.path.join(run.workdir, "metrics.json"), encoding="utf-8") as f:
            m = json.load(f)
        record.update(test_accuracy=m["test_accuracy"], macs=m["macs"], params=m["params"], widths=m["widths"],
                      train_seconds=m.get("train_seconds"), provenance=m.get("provenance"))
    return record


def finished(runs):
    """``{key: record}`` of the runs that finished (have the planner's ``.done.json``)."""
    done = {}
    for run in runs:
        record = read_done(run.workdir)
        if record is not None:
            done[run.key] = record
    return done


def rows(runs):
    """One row per finished training, in plan order."""
    done = finished(runs)
    original = next((d for d in done.values() if d["method"] == "original" and d["kind"] == "train"), None)
    searches = [d for d in done.values() if d["kind"] == "search"]
    base = ((searches[0]["original_macs"], searches[0]["original_params"]) if searches
            else (original["macs"], original["params"]) if original else None)
    out = []
    for run in runs:
        d = done.get(run.key)
        if d is None or run.kind != "train":
            continue
        s = done.get(run.needs) if run.needs else None
        expanded = s["expanded"] if s else []
        out.append({
            "method": run.method, "structure": run.structure, "search_seed": run.search_seed,
            "train_seed": run.train_seed, "test_accuracy": d["test_accuracy"], "macs": d["macs"],
            "params": d["params"],
            "macs_ratio": d["macs"] / base[0] if base else None,
            "params_ratio": d["params"] / base[1] if base else None,
            "layers_expanded": len(expanded), "expanded": [n for n, _ in expanded], "widths": d["widths"],
            "train_seconds": d["wall_seconds"], "search_seconds": s["wall_seconds"] if s else None,
            # what ran (commit, versions, times): the training's, and its structure's search's
            "provenance": d.get("provenance"), "search_provenance": s.get("provenance") if s else None,
        })
    return out












def width_table(runs, methods):
    """Per method and layer: the mean width over its structures as a multiple of the original's,
    and how many structures are wider than the original there (``None`` before any search)."""
    searches = [d for d in finished(runs).values() if d["kind"] == "search"]
    if not searches:
        return None
    first = arch_lib.load_arch(os.path.join(searches[0]["workdir"], "arch.json"))
    original, names = first.extra["original_widths"], first.extra.get("width_names")
    names = names or [str(i) for i in range(len(original))]
    table = {"layers": names, "original": original, "methods": {}}
    for method in methods:
        widths = ([original] if method == "original" else
                  [d["widths"] for d in searches if d["method"] == method])
        if widths:
            table["methods"][method] = {
                "structures": len(widths),
                "mean_ratio": [statistics.fmean(w[i] / n for w in widths) for i, n in enumerate(original)],
                "wider": [sum(w[i] > n for w in widths) for i, n in enumerate(original)]}
    return table












def write(workdir, study, runs, figure=True):
    """Writes ``study.json``, ``study.csv``, ``summary.md`` (and ``study.png``); returns the json dict."""
    study_rows = rows(runs)
    summ = summary(study_rows, study.methods)
    comps, note = distinct_comparisons(comparisons(study_rows, study.methods, study.reference, study.level,
                                                   study.resamples), study_rows, study.methods)
    done = finished(runs)
    widths = width_table(runs, study.methods)
    out = {"study": study.to_dict(), "runs_planned": len(runs), "runs_finished": len(done),
           "searches": [d for d in done.values() if d["kind"] == "search"],
           "rows": study_rows, "summary": summ, "comparisons": comps, "widths": widths}
    atomic_write_json(os.path.join(workdir, "study.json"), out)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for r in study_rows:
        writer.writerow([" ".join(str(x) for x in r[k]) if isinstance(r[k], list) else ("" if r[k] is None else r[k])
                         for k in CSV_FIELDS])
    atomic_write_text(os.path.join(workdir, "study.csv"), buf.getvalue())
    atomic_write_text(os.path.join(workdir, "summary.md"),
                      markdown(summ, comps, widths) + (f"\n{note}" if note else ""))
    if figure and study_rows:
        # matplotlib only when a figure is drawn
        from nce_tf.study.figure import plot

        plot(study_rows, study.methods, os.path.join(workdir, "study.png"))
    return out
