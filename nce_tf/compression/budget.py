"""The compression budget: ceilings on the compressed network's exact cost, in every unit it names.

The budget is the search's own :class:`~nce_tf.search.supernet.Budget` (MACs and PARAMs relative to
the original, weight memory and BOPs as :class:`~nce_tf.search.units.UnitBudget`) built as the search
job builds it, with nothing allowed above a target (``tolerance_above = 0``): a width list *meets* the
budget when its exact cost (:meth:`~nce_tf.search.space.SearchSpace.exact_cost`, memory and BOPs by
:class:`~nce_tf.search.units.HardwareCost` at ``float_bits``) is at or under every target.  The same
space counts what the built Keras model costs (``nce_tf.cost.count_model``), so a width list that
meets the budget here gives a compressed model that meets it there.

Bad budgets are one-line errors before anything is written: an absolute memory or BOPs budget at or
above the original's cost (nothing to compress), and a budget that even the narrowest width list
allowed misses.
"""

import numpy as np

from nce_tf.errors import UsageError
from nce_tf.search.supernet import Budget
from nce_tf.search.units import HardwareCost, unit_budgets

_UNITS = {"macs": ("flops_ratio", "MACs"), "params": ("params_ratio", "PARAMs"),
          "memory_bytes": ("memory_ratio", "bytes"), "bops": ("bops_ratio", "BOPs")}


def ceiling_budget(space, policy, scfg):
    """The :class:`~nce_tf.search.supernet.Budget` of ``scfg``'s ceilings on ``space`` under ``policy``.

    Raises:
        UsageError: an absolute memory / BOPs budget at or above the original's cost.
    """
    hardware = HardwareCost(space, policy, scfg.float_bits)
    original = hardware.exact(space.default_widths())
    budget = Budget(space.exact_cost(space.default_widths()), scfg.flops_ratio, scfg.params_ratio, scfg.tolerance,
                    scfg.lambda_flops, scfg.lambda_params, 0.0, hardware=hardware,
                    units=unit_budgets(scfg, original))
    for u in budget.units:
        if u.target >= u.original:
            name = _UNITS[u.unit][0].split("_")[0]
            raise UsageError(f"The {name} budget is at or above the original's cost: nothing to compress. Received: "
                             f"{u.describe()} ({u.target:,.0f} {_UNITS[u.unit][1]}). Allowed: below the original's "
                             f"{u.original:,.0f} {_UNITS[u.unit][1]} ({name}_ratio < 1).")
    return budget


def meets(budget, space, widths):
    """Whether ``widths`` cost at most every target of ``budget`` (no lower limit)."""
    return budget.fits(budget.costs(space, widths), upper_only=True)


def check_reachable(budget, space, narrowest, what):
    """A one-line :class:`UsageError` when ``narrowest`` (every searchable row at the narrowest width the
    method allows, ``what`` says which) misses a ceiling of ``budget``."""
    costs = budget.costs(space, narrowest)
    original = {"macs": budget.original[0], "params": budget.original[1],
                **{u.unit: u.original for u in budget.units}}
    for unit, _, _, high in budget.bands():
        if costs[unit] > high:
            field, symbol = _UNITS[unit]
            given = (f"{field}={getattr(budget, field)}" if unit in ("macs", "params")
                     else next(u.describe() for u in budget.units if u.unit == unit))
            raise UsageError(
                f"No width list meets the budget. Received: {given} ({high:,.0f} {symbol}). Allowed: at least "
                f"{costs[unit]:,.0f} {symbol} ({field} >= {costs[unit] / original[unit]:.4f}: {what}).")


def narrowest_widths(space, table=None):
    """Every searchable row at its narrowest width: the search table's first candidate, or 1 channel;
    pinned rows at their own width."""
    if table is not None:
        return [int(w) for w in np.asarray(table)[:, 0]]
    return [r.n if r.frozen else 1 for r in space.rows]
