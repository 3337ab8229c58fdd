"""A study's statistics and tables from its per-training rows (no file, no TensorFlow): per method,
the reference against every other method, and the markdown of both with the width table.

:mod:`nce_tf.study.results` writes a study's files with these; the README's study block is made
with them from the committed ``study.json`` (:mod:`nce_tf.results.summary_tables`), so their
statistics never differ. Two fixed methods that train one network are compared once
(:func:`distinct_comparisons`; a ``summary.md`` written by earlier code lists both). The unit of every comparison is the structure: see :mod:`nce_tf.study.results`.

Example:

>>> rows = [{"method": "nce", "structure": s, "test_accuracy": a} for s, a in (("a", 0.6), ("b", 0.7))]
>>> by_structure(rows, "nce")
{'a': [0.6], 'b': [0.7]}
"""

import statistics

import numpy as np

from nce_tf.stats import compare, holm


def _mean_std(values):
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def by_structure(study_rows, method):
    """``{structure: [accuracies]}`` of one method, in row order."""
    out = {}
    for r in study_rows:
        if r["method"] == method:
            out.setdefault(r["structure"], []).append(r["test_accuracy"])
    return out


def summary(study_rows, methods):
    out = []
    for method in methods:
        mine = [r for r in study_rows if r["method"] == method]
        if not mine:
            continue
        structs = by_structure(study_rows, method)
        t_mean, t_std = _mean_std([r["test_accuracy"] for r in mine])
        s_mean, s_std = _mean_std([statistics.fmean(v) for v in structs.values()])
        ratios = lambda key: statistics.fmean(r[key] for r in mine) if mine[0][key] is not None else None  # noqa: E731
        out.append({"method": method, "structures": len(structs), "trainings": len(mine),
                    "accuracy_mean": t_mean, "accuracy_std": t_std,
                    "structure_mean": s_mean, "structure_std": s_std,
                    "macs_ratio": ratios("macs_ratio"), "params_ratio": ratios("params_ratio"),
                    "layers_expanded": statistics.fmean(r["layers_expanded"] for r in mine)})
    return out


def _units(study_rows, method):
    """``(structure means, replicates)``: a method's units, and for a one-structure method its
    trainings (the replicates that give that structure's standard error; ``None`` otherwise)."""
    structs = by_structure(study_rows, method)
    means = [statistics.fmean(v) for v in structs.values()]
    replicates = next(iter(structs.values())) if len(structs) == 1 else None
    return means, replicates


def comparisons(study_rows, methods, reference, level=0.95, resamples=10_000):
    """Reference minus every other method (see the module doc): a :func:`nce_tf.stats.compare`
    dict each, with ``reference`` and ``method`` added."""
    out = []
    ref, ref_reps = _units(study_rows, reference)
    if not ref:
        return out
    for method in methods:
        if method == reference:
            continue
        other, reps = _units(study_rows, method)
        if other:
            out.append({"reference": reference, "method": method,
                        **compare(ref, other, level=level, replicates_a=ref_reps, replicates_b=reps,
                                  resamples=resamples)})
    return out


def same_networks(study_rows, methods, fixed=("original", "wrpn")):
    """``{method: method it repeats}`` among the ``fixed`` methods (one network each, whatever the seed):
    one whose trainings train the network another's train (WRPN at the original's cost is the original)
    is one network, compared once. The original keeps its name; otherwise the one listed first does.
    Searched methods are never merged, even when a search happens to return a fixed method's widths."""
    fixed = [m for m in sorted(methods, key=lambda m: m != "original") if m in fixed]  # "original" first
    widths = {m: {tuple(r["widths"]) for r in study_rows if r["method"] == m} for m in fixed}
    out = {}
    for i, m in enumerate(fixed):
        first = next((e for e in fixed[:i] if e not in out and len(widths[e]) == 1 and widths[e] == widths[m]), None)
        if first is not None:
            out[m] = first
    return out


def distinct_comparisons(comps, study_rows, methods):
    """``comps`` without a fixed method that trains the network another one trains (:func:`same_networks`),
    and a note naming each one dropped (empty when none is): the one family a study's ``summary.md`` and
    the README's block compare, so Holm's adjustment (over the tested comparisons) is the same in both."""
    same = same_networks(study_rows, methods)
    note = "".join(f"{m} trains the same network as {e} (equal widths): one network, compared once, as {e}.\n"
                   for m, e in same.items())
    return [c for c in comps if c["method"] not in same], note


def _width_markdown(table, order=()):
    # columns in the method table's order (a study.json written with sorted keys lists them alphabetically)
    methods = {m: table["methods"][m] for m in [*order, *sorted(table["methods"])]
               if m in table["methods"]}
    lines = ["| layer (original width) | " + " | ".join(f"{m} ({v['structures']})" for m, v in methods.items()) + " |",
             "|---|" + "---|" * len(methods)]
    for i, (name, n) in enumerate(zip(table["layers"], table["original"])):
        cells = [f"{v['mean_ratio'][i]:.2f}x" + (f", {v['wider'][i]} wider" if v["wider"][i] else "")
                 for v in methods.values()]
        lines.append(f"| {name} ({n}) | " + " | ".join(cells) + " |")
    return lines


def _pct(x, digits=2):
    return "-" if x is None else f"{100 * x:.{digits}f}"


def _test_name(c):
    if c["test"] == "permutation":
        return f"{'exact' if c['exact'] else 'Monte Carlo'} permutation ({c['relabelings']:,} relabelings)"
    if c["test"] == "welch_t":
        return "Welch t against one structure"
    return "none: one structure, fewer than two trainings"


def _comparison_row(c):
    interval = "-" if c["low"] is None else f"[{100 * c['low']:+.2f}, {100 * c['high']:+.2f}]"
    units = " vs ".join(str(n) if r is None else f"1 ({r} trainings)" for n, r in zip(c["units"], c["replicates"]))
    p = "-" if c["p"] is None else f"{c['p']:.3g}"
    mdd = "-" if c["mdd"] is None else f"{100 * c['mdd']:.2f}"
    if c["resolved"] is None:
        verdict = "untested"
    elif c["resolved"]:
        verdict = "yes"
    else:  # say so when no difference at all could have resolved with these units
        verdict = "no" + (f" (p >= {c['p_min']:.3g} always)" if c["p_min"] >= c["alpha"] else "")
    return (f"| {c['method']} | {100 * c['difference']:+.2f} | {interval} | {p} | {_test_name(c)} | {units} | "
            f"{mdd} | {verdict} |")


def _holm_cell(adjusted):
    return " - |" if adjusted is None else f" {adjusted['p_adjusted']:.3g}, {'yes' if adjusted['resolved'] else 'no'} |"


def markdown(summ, comps, widths=None):
    lines = ["| method | structures | trainings | accuracy (%), all trainings | accuracy (%), per structure | "
             "MACs ratio | PARAMs ratio | layers expanded |", "|---|---|---|---|---|---|---|---|"]
    for s in summ:
        ratio = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"| {s['method']} | {s['structures']} | {s['trainings']} | {_pct(s['accuracy_mean'])} +- "
                     f"{_pct(s['accuracy_std'])} | {_pct(s['structure_mean'])} +- {_pct(s['structure_std'])} | "
                     f"{ratio(s['macs_ratio'])} | {ratio(s['params_ratio'])} | {s['layers_expanded']:.1f} |")
    if comps:
        c0 = comps[0]
        tested = sum(c["p"] is not None for c in comps)
        header = (f"| {c0['reference']} minus | difference (points) | {c0['level']:.0%} Welch t interval | p | "
                  f"test | units | MDD at {c0['power']:.0%} power (points) | resolved (p < {c0['alpha']:g}) |")
        rule, rows = "|---|---|---|---|---|---|---|---|", [_comparison_row(c) for c in comps]
        if tested > 1:  # Holm over the tested comparisons (a study's planned family)
            header, rule = header + f" Holm over the {tested} tested: adjusted p, resolved |", rule + "---|"
            rows = [r + _holm_cell(a) for r, a in zip(rows, holm([c["p"] for c in comps], c0["alpha"]))]
        lines += ["", header, rule, *rows]
    if widths:
        lines += ["", "Mean width per layer over each method's structures, as a multiple of the original "
                      "(and how many structures are wider than the original there):", ""]
        lines += _width_markdown(widths, [s["method"] for s in summ])
    return "\n".join(lines) + "\n"


def seed_ties(study_rows, resamples=10_000, seed=0):
    """Do trainings with one training seed share randomness across structures? Exact ties of test
    accuracy between two different networks trained with the same seed, against the same count with
    each structure's seeds shuffled among its own trainings.

    Two trainings of different widths tie by chance now and then (accuracy takes ~1000 values);
    trainings that share a random stream (the zoo before its per-structure initialisation seeds:
    same-shape kernels identical across structures) tie more often at one seed than across seeds.
    Structures with equal widths (WRPN at the original's cost is the original) are one network: it
    is counted once (under the first name, with the trainings of all its names, one per seed), since
    one network trained twice with one seed ties by determinism, and a third network's tie with it is
    one coincidence, not two.

    The null: a training's seed carries nothing shared with other structures, so relabelling each
    structure's trainings' seeds among themselves (a Monte Carlo over ``resamples`` relabellings,
    seeded by ``seed``) gives tie counts like the observed one. ``p``: the share of relabellings with
    at least as many same-seed ties (``(1 + hits) / (1 + resamples)``).

    Returns:
        ``{"pairs", "ties", "expected", "p", "resamples"}``: same-seed pairs of different networks, their
        ties, the mean tie count over the relabellings, and ``p``.

    Example:

    >>> rows = [{"structure": s, "train_seed": t, "test_accuracy": a, "widths": [w]}
    ...         for s, w in (("a", 1), ("b", 2)) for t, a in ((0, 0.5), (1, 0.6))]
    >>> seed_ties(rows, resamples=100)["ties"]  # both seeds tie across the two structures
    2
    """
    by_structure = {}
    for r in study_rows:
        by_structure.setdefault(r["structure"], []).append(r)
    networks = {}  # widths -> {training seed: accuracy}, named by the first structure (by name) of those widths
    names = {}
    for s in sorted(by_structure):
        key = tuple(by_structure[s][0]["widths"])
        names.setdefault(key, s)
        for r in by_structure[s]:  # a seed trained under both names is one training (determinism)
            networks.setdefault(key, {}).setdefault(r["train_seed"], r["test_accuracy"])
    accs = {names[k]: list(v.values()) for k, v in networks.items()}
    seeds = {names[k]: list(v) for k, v in networks.items()}
    names = sorted(accs)
    compared = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]

    def count(seed_of):
        pairs = ties = 0
        for a, b in compared:
            at_b = {}
            for t, acc in zip(seed_of[b], accs[b]):
                at_b.setdefault(t, []).append(acc)
            for t, acc in zip(seed_of[a], accs[a]):
                for other in at_b.get(t, ()):
                    pairs += 1
                    ties += acc == other
        return pairs, ties

    pairs, ties = count(seeds)
    rng = np.random.default_rng(seed)
    counts = [count({s: list(rng.permutation(seeds[s])) for s in names})[1] for _ in range(resamples)]
    hits = sum(c >= ties for c in counts)
    return {"pairs": pairs, "ties": ties, "expected": float(np.mean(counts)) if counts else 0.0,
            "p": (1 + hits) / (1 + resamples), "resamples": resamples}
