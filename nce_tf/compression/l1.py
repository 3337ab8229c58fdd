"""L1-norm structured pruning (Li et al., 2017, "Pruning filters for efficient ConvNets"): the
simple ways of choosing a compressed network's widths, on the rows of the adapter's search space.

A row is one width choice of the adapted space (:func:`nce_tf.adapt`): a conv or hidden dense layer,
or the convs tied at a residual add (they keep one width); pinned rows (the first conv) keep theirs.
A filter's **score** is its L1 norm over its layer's mean filter L1 norm, averaged over the row's
layers (each layer votes with equal weight, as :mod:`nce_tf.adapter.from_trained` orders channels):
a row of filters of equal norm scores 1 everywhere, whatever the layer's scale.

- :func:`uniform_widths` (``l1_uniform``): one keep ratio ``rho`` for every searchable row,
  ``w_r = max(1, floor(rho n_r))``; the largest ``rho`` whose width list meets the budget.  The
  candidates are the breakpoints ``k / n_r`` (where some row's width changes), scanned from the top,
  so the answer is exact even where the cost is not monotone in ``rho`` (a projection appears
  where a residual add's widths start to differ).
- :func:`global_widths` (``l1_global``): one threshold ``t`` over every searchable row's scores,
  ``w_r = max(1, #{scores >= t})``; the lowest ``t`` (the most filters kept) whose width list meets
  the budget, scanned over the scores themselves.

Either way the channels kept are the largest-L1 ones (the derivation's rule), so the two baselines
differ from the search only in the widths.

Example:

>>> import numpy as np
>>> scores = [np.ones(4), np.array([4.0, 3.0, 0.5, 0.5]) / 2]
>>> global_widths(scores, [False, False], lambda w: sum(w) <= 4)   # t = 1.5: no filter of row 0 passes
[1, 2]
>>> uniform_widths([4, 4], [False, False], lambda w: sum(w) <= 4)
[2, 2]
"""

import numpy as np

from nce_tf.errors import UsageError


def filter_l1(kernel):
    """The L1 norm of every output filter of a conv or dense kernel (the last axis)."""
    kernel = np.asarray(kernel, np.float64)
    return np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)


def row_scores(space, model):
    """Per row of ``space``, its filters' scores (module doc) read off the trained ``model``.

    Args:
        space: the adapted :class:`~nce_tf.search.space.SearchSpace` of ``model``.
        model: the trained Keras model (its layers named as the space's nodes' ``layer``).
    """
    sums, counts = {}, {}
    for node in space.nodes:
        if not node.kind.has_row:
            continue
        l1 = filter_l1(model.get_layer(node.layer).kernel.numpy())
        sums[node.row] = sums.get(node.row, 0.0) + l1 / max(float(l1.mean()), 1e-30)
        counts[node.row] = counts.get(node.row, 0) + 1
    return [sums[r] / counts[r] for r in range(len(space.rows))]


def uniform_widths(original, pinned, fits):
    """``l1_uniform``'s widths: the largest common keep ratio that ``fits`` (module doc).

    Args:
        original: each row's original width.
        pinned: per row, whether its width is fixed.
        fits: ``fits(widths) -> bool``, whether a width list meets the budget.
    """
    ratios = sorted({k / n for n, p in zip(original, pinned) if not p for k in range(1, n + 1)}, reverse=True)
    for rho in ratios:
        widths = [n if p else max(1, int(np.floor(rho * n + 1e-9))) for n, p in zip(original, pinned)]
        if fits(widths):
            return widths
    raise UsageError("No keep ratio meets the budget, down to one channel per layer.")


def global_widths(scores, pinned, fits):
    """``l1_global``'s widths: the lowest global score threshold that ``fits`` (module doc).

    Args:
        scores: per row, its filters' scores (:func:`row_scores`).
        pinned: per row, whether its width is fixed.
        fits: ``fits(widths) -> bool``.
    """
    thresholds = np.unique(np.concatenate([s for s, p in zip(scores, pinned) if not p]))
    for t in thresholds:
        widths = [len(s) if p else max(1, int((s >= t).sum())) for s, p in zip(scores, pinned)]
        if fits(widths):
            return widths
    raise UsageError("No L1 threshold meets the budget, down to one channel per layer.")
