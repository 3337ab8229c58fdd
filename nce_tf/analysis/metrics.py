"""Numbers behind the analyses: SQNR, Kendall's tau, the channel-preference (Kendall) score.

- ``sqnr_db(x, q) = 10 log10(sum x^2 / sum (x - q)^2)``: signal-to-quantization-noise ratio of a
  quantized tensor ``q`` against its float source ``x`` (clipping counts as noise);
- ``kendall_tau(a, b)``: Kendall's tau-b rank correlation (ties handled), from its definition;
- ``preference_score(grads)``: the paper's Fig. 4c score of one layer: per recorded step, the
  Kendall tau between the candidate widths (ascending) and the NEGATIVE gradient of alpha (a
  negative gradient raises that candidate's alpha under gradient descent), averaged over steps;
  +1 means the gradient consistently favours more channels;
- ``t_statistic(values) = mean / (std(ddof=1) / sqrt(n))``: a mean in units of its standard error
  (the Kendall size measure: :mod:`nce_tf.analysis.kendall`).

Example:

>>> import numpy as np
>>> round(sqnr_db(np.array([1.0, -1.0]), np.array([0.9, -0.9])), 2)
20.0
>>> kendall_tau([1, 2, 3], [3, 2, 1])
-1.0
>>> round(t_statistic([1.0, 2.0, 3.0]), 3)
3.464
"""

import numpy as np


def sqnr_db(x, q):
    x, q = np.asarray(x, "float64"), np.asarray(q, "float64")
    noise = np.sum((x - q) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(x**2) / noise))


def kendall_tau(a, b):
    """Kendall's tau-b of two equally long sequences."""
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    upper = np.triu_indices(len(a), 1)
    concordance = (da * db)[upper].sum()
    ties_a, ties_b = (da[upper] != 0).sum(), (db[upper] != 0).sum()
    return float(concordance / np.sqrt(ties_a * ties_b)) if ties_a and ties_b else 0.0


def preference_score(grads, widths=None):
    """Mean over steps of ``kendall_tau(widths, -grad)`` for one layer's ``[steps, K]`` alpha gradients."""
    grads = np.atleast_2d(np.asarray(grads, "float64"))
    widths = np.arange(grads.shape[1]) if widths is None else np.asarray(widths)
    return float(np.mean([kendall_tau(widths, -g) for g in grads]))


def t_statistic(values):
    """``mean(values) / (std(values, ddof=1) / sqrt(n))``; ``None`` for fewer than two values or no spread."""
    v = np.asarray(values, "float64")
    if len(v) < 2:
        return None
    se = np.std(v, ddof=1) / np.sqrt(len(v))
    return float(np.mean(v) / se) if se > 0 else None
