"""Does a search widen the layers the sensitivity probe found width-hungry?  A rank correlation per search.

The premise chain (issue 25) runs: quantization makes some layers need channels (the probe,
:mod:`nce_tf.analysis.sensitivity_report`), so the search's CE prefers wide candidates there and
expansion follows.  This module tests the last link on finished searches: per layer, the derived
width over the original (``widths / original_widths`` in ``arch.json``) against the probe's mean
change at one width ratio, by Kendall's tau-b over the layers with a permutation p-value
(:func:`nce_tf.stats.rank_correlation_test`).  Two probe measures, named before looking:

- ``own``: the mean over the probed networks of the search's own precision of the CE change when
  the layer alone is narrowed to ``ratio`` (default 0.5x; positive = narrowing it hurts).  A search
  that gives width where narrowing hurts has tau > 0.  This is the primary test.
- ``quantization``: that change at the search's precision minus at the float reference precision
  (W32A32): where quantization, not the layer's role, makes width matter (the paper's premise).

The unit is a layer of one search; the layers of a network are not independent draws, so p is
that of "the search's widths are unrelated to this ranking of layers", nothing wider.

Example:

>>> sens = {"labels": ["W2A2", "W32A32"], "probes": [
...     {"label": "W2A2", "changes": [{"layer": f"l{i}", "ratio": 0.5, "delta_ce": d} for i, d in
...                                  enumerate([0.3, 0.1, 0.2, 0.0])]},
...     {"label": "W32A32", "changes": [{"layer": f"l{i}", "ratio": 0.5, "delta_ce": 0.1} for i in range(4)]}]}
>>> search = {"w_bits": 2, "a_bits": 2, "layers": ["l0", "l1", "l2", "l3"], "widths": [24, 12, 20, 8],
...           "original_widths": [16, 16, 16, 16]}
>>> out = agreement(search, sens)
>>> out["own"]["tau"], out["quantization"]["tau"]
(1.0, 1.0)
"""

import collections
import json

import numpy as np

from nce_tf import stats
from nce_tf.errors import UsageError

REFERENCE = "W32A32"


def read_sensitivity(path):
    """The ``sensitivity.json`` at ``path``; a one-line :class:`UsageError` when it is not one."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"Invalid probe: not a readable sensitivity.json. Received: probe={path!r} "
                         f"({type(e).__name__}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("probes"), list):
        raise UsageError(f"Invalid probe: no probes in it. Received: probe={path!r}. Allowed: the "
                         f"sensitivity.json `nce-tf analyze sensitivity` writes.")
    return data


def probe_means(sensitivity, label, ratio=0.5, metric="delta_ce"):
    """``{layer: mean metric}`` over the probes labelled ``label`` at width ratio ``ratio``."""
    values = collections.defaultdict(list)
    for p in sensitivity["probes"]:
        if p["label"] == label:
            for c in p["changes"]:
                if abs(c["ratio"] - ratio) < 1e-9:
                    values[c["layer"]].append(c[metric])
    return {layer: float(np.mean(v)) for layer, v in values.items()}


def agreement(search, sensitivity, ratio=0.5, metric="delta_ce", reference=REFERENCE, resamples=20_000, seed=0):
    """Rank correlation of one search's width ratios with the probe's ``own`` and ``quantization`` measures.

    Args:
        search: a :func:`nce_tf.analysis.searches.summarize` dict.
        sensitivity: the ``sensitivity.json`` of ``nce-tf analyze sensitivity``.
        ratio, metric: the probe's width ratio and measure.
        reference: the label the ``quantization`` measure subtracts.

    Returns:
        ``{"label", "layers", "width_ratio", "own": {...}, "quantization": {...}}``, each measure
        with its per-layer ``values`` and :func:`~nce_tf.stats.rank_correlation_test` result (the
        ``quantization`` one ``None`` for a search at the reference precision or without its probes).
    """
    label = f"W{search['w_bits']}A{search['a_bits']}"
    own = probe_means(sensitivity, label, ratio, metric)
    if not own:
        raise UsageError(f"The probe has no {label} networks at ratio {ratio}. Received: labels "
                         f"{sorted({p['label'] for p in sensitivity['probes']})}. Allowed: a probe of the "
                         f"search's precision.")
    layers = [n for n in search["layers"] if n in own]
    index = [search["layers"].index(n) for n in layers]
    width_ratio = [search["widths"][i] / search["original_widths"][i] for i in index]
    out = {"label": label, "ratio": ratio, "metric": metric, "layers": layers, "width_ratio": width_ratio}
    measures = {"own": [own[n] for n in layers]}
    ref = probe_means(sensitivity, reference, ratio, metric) if label != reference else {}
    if ref and all(n in ref for n in layers):
        measures["quantization"] = [own[n] - ref[n] for n in layers]
    for name in ("own", "quantization"):
        values = measures.get(name)
        out[name] = None if values is None else {
            "values": values, **stats.rank_correlation_test(width_ratio, values, resamples=resamples, seed=seed)}
    return out


def markdown(results):
    """One line per search: its label, layers widened / narrowed, and both measures' tau and p."""
    lines = ["| search | bits | layers wider / narrower than 1X | tau (own: CE change at narrowing) | p | "
             "tau (quantization: minus W32A32) | p |", "|---|---|---|---|---|---|---|"]
    for name, r in results:
        wider = sum(w > 1 for w in r["width_ratio"])
        narrower = sum(w < 1 for w in r["width_ratio"])
        cells = []
        for m in ("own", "quantization"):
            t = r[m]
            cells += ["-", "-"] if t is None or t["tau"] is None else [f"{t['tau']:+.2f}", f"{t['p']:.3g}"]
        lines.append(f"| {name} | {r['label']} | {wider} / {narrower} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
