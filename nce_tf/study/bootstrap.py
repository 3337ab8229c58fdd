"""Difference of two methods' mean accuracy with a percentile bootstrap confidence interval.

A study trains every searched structure several times, so a method's accuracy varies at two
levels: between structures (what the search derives) and between trainings of one structure.
The question "does NCE find better structures than TAS?" is about the first level, so the unit
of resampling is the structure, scored by the mean accuracy of its trainings:

- **paired** (both methods searched with the same search seeds, at least two of them):
  structure ``i`` of one method and structure ``i`` of the other come from the same seed (the
  same split of the training set into weight and architecture halves, the same super-net
  initialisation and warm-up), so the per-seed differences ``d_i`` are resampled:
  ``diff* = mean(d[I])`` with ``I`` drawn uniformly with replacement from ``0..S-1``;
- **unpaired** otherwise: each method's units are resampled on their own and
  ``diff* = mean(a[I]) - mean(b[J])``.  A method with a single structure (the original
  network, WRPN's uniform widening) has no between-structure spread, so its units are its
  trainings.

The interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of ``resamples``
values of ``diff*`` (Efron and Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13).
With few structures (the paper uses ten) the percentile interval is known to be somewhat too
narrow; it is a statement about these structures, not a test with guaranteed coverage.

Example:

>>> lo, hi = difference_ci([0.60, 0.62, 0.61], [0.58, 0.59, 0.60], paired=True, seed=0)[1:]
>>> bool(lo <= 0.02 <= hi)
True
"""

import numpy as np

from nce_tf.errors import UsageError


def _units(values, name):
    units = np.asarray(values, dtype=np.float64).ravel()
    if units.size == 0 or not np.all(np.isfinite(units)):
        raise UsageError(f"A bootstrap needs finite values. Received: {name}={list(units)!r}.")
    return units


def difference_ci(a, b, *, paired, level=0.95, resamples=10_000, seed=0):
    """``mean(a) - mean(b)`` and its percentile bootstrap interval.

    Args:
        a, b: the units of the two methods (per-structure mean accuracies, or trainings of a
            single-structure method).
        paired: resample the differences ``a[i] - b[i]`` (``a`` and ``b`` of equal length).
        level: coverage of the interval, in (0, 1).
        resamples: bootstrap resamples.
        seed: seed of the resampling (the interval is reproducible).

    Returns:
        ``(difference, low, high)`` as floats.
    """
    a, b = _units(a, "a"), _units(b, "b")
    if not 0 < level < 1:
        raise UsageError(f"Invalid level. Received: level={level!r}. Allowed: 0 < level < 1.")
    if resamples < 1:
        raise UsageError(f"Invalid resamples. Received: resamples={resamples!r}. Allowed: >= 1.")
    rng = np.random.default_rng(seed)
    if paired:
        if a.size != b.size:
            raise UsageError(f"Paired units must have equal counts. Received: {a.size} and {b.size}.")
        d = a - b
        draws = d[rng.integers(0, d.size, size=(resamples, d.size))].mean(axis=1)
        diff = float(d.mean())
    else:
        draws = (a[rng.integers(0, a.size, size=(resamples, a.size))].mean(axis=1)
                 - b[rng.integers(0, b.size, size=(resamples, b.size))].mean(axis=1))
        diff = float(a.mean() - b.mean())
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return diff, float(low), float(high)
