"""The paper's comparison points that need no search: random widths and WRPN's uniform widening.

- ``random``: every row takes a width drawn uniformly from its candidates (the search's grid up
  to 2X: ``j n / 8`` by default); draws are repeated (seeded) until the exact cost meets the
  budget's limits (its constrained units, :class:`~nce_tf.search.units.Budget`: the MACs band, the
  PARAMs ceiling, memory and BOPs bands; the limits a search's result must meet).
- ``wrpn``: one width multiplier ``m`` for every row (``round(m n)``, at least 1); the largest
  ``m`` in ``[1/8, 2]`` whose exact cost stays under the budget's upper limits (bisection; cost
  grows with ``m``).

Both raise a one-line :class:`UsageError` when the budget cannot be met.

Example:

>>> from nce_tf.sources import build_space
>>> from nce_tf.search.config import SearchConfig
>>> from nce_tf.search.units import Budget
>>> space = build_space("resnet20")
>>> budget = Budget.from_config(space, SearchConfig())
>>> wrpn_widths(space, budget)[:3]
[16, 16, 16]
"""

import numpy as np

from nce_tf.errors import UsageError


def _fits(budget, space, widths):
    return budget.fits(budget.costs(space, widths, constrained=True), upper_only=True)


def random_widths(space, budget, table, k_caps, seed=0, max_draws=200_000):
    """Random per-row widths from a candidate table whose exact cost meets the budget's limits.

    ``table`` / ``k_caps``: the search's candidates and how many of each row may be drawn
    (:func:`nce_tf.search.candidates.search_table`; the ``random`` method draws from the NCE grid,
    every distinct width up to 2X).
    """
    rng = np.random.default_rng(seed)
    caps = np.asarray(k_caps)
    rows = np.arange(len(table))
    for _ in range(max_draws):
        widths = [int(w) for w in table[rows, (rng.random(len(table)) * caps).astype(int)]]
        if budget.fits(budget.costs(space, widths, constrained=True)):
            return widths
    raise UsageError(
        f"No random architecture met the budget in {max_draws} draws. Received: {budget.describe()}. "
        "Allowed: a budget band that random widths up to 2X can reach (widen --tolerance)."
    )


def wrpn_widths(space, budget):
    """The widest uniform widening (or thinning) whose exact cost fits the budget."""
    base = space.default_widths()
    scale = lambda m: [max(1, int(m * n + 0.5)) for n in base]  # noqa: E731
    lo, hi = 1 / 8, 2.0
    if not _fits(budget, space, scale(lo)):
        raise UsageError(
            f"The budget is below the cost of the narrowest uniform network (1/8 X). Received: {budget.describe()}.")
    if _fits(budget, space, scale(hi)):
        return scale(hi)
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _fits(budget, space, scale(mid)) else (lo, mid)
    return scale(lo)
