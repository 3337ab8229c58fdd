"""The compression budget: ceilings on the compressed network's exact cost, in every unit it names.

The budget is the search's own :class:`~nce_tf.search.units.Budget` (one
:class:`~nce_tf.search.units.UnitBudget` per unit it limits) built as the search
job builds it, with nothing allowed above a target (``tolerance_above = 0``): a width list *meets* the
budget when its exact cost (each unit's ``exact``; memory and BOPs at ``float_bits``) is at or under every target.  The same
space counts what the built Keras model costs (``nce_tf.cost.count_model``), so a width list that
meets the budget here gives a compressed model that meets it there.

Bad budgets are one-line errors before anything is written: an absolute memory or BOPs budget at or
above the original's cost (nothing to compress), and a budget that even the narrowest width list
allowed misses.
"""

import dataclasses

import numpy as np

from nce_tf.errors import UsageError
from nce_tf.search.units import Budget

_UNITS = {"macs": ("flops_ratio", "MACs"), "params": ("params_ratio", "PARAMs"),
          "memory_bytes": ("memory_ratio", "bytes"), "bops": ("bops_ratio", "BOPs")}


def ceiling_budget(space, policy, scfg):
    """The :class:`~nce_tf.search.units.Budget` of ``scfg``'s ceilings on ``space`` under ``policy``.

    Raises:
        UsageError: an absolute memory / BOPs budget at or above the original's cost.
    """
    budget = Budget.from_config(space, dataclasses.replace(scfg, tolerance_above=0.0), policy)
    for e in budget.constrained:
        if e.target >= e.original:
            name, symbol = _UNITS[e.name][0].split("_")[0], _UNITS[e.name][1]
            raise UsageError(f"The {name} budget is at or above the original's cost: nothing to compress. Received: "
                             f"{e.describe()} ({e.target:,.0f} {symbol}). Allowed: below the original's "
                             f"{e.original:,.0f} {symbol} ({name}_ratio < 1).")
    return budget


def meets(budget, space, widths):
    """Whether ``widths`` cost at most every target of ``budget`` (no lower limit)."""
    return budget.fits(budget.costs(space, widths), upper_only=True)


def check_reachable(budget, space, narrowest, what):
    """A one-line :class:`UsageError` when ``narrowest`` (every searchable row at the narrowest width the
    method allows, ``what`` says which) misses a ceiling of ``budget``."""
    costs = budget.costs(space, narrowest)
    for e in budget.constrained:
        if costs[e.name] > e.high:
            field, symbol = _UNITS[e.name]
            given = f"{field}={e.settings[field]}" if field in e.settings else e.describe()
            raise UsageError(
                f"No width list meets the budget. Received: {given} ({e.high:,.0f} {symbol}). Allowed: at least "
                f"{costs[e.name]:,.0f} {symbol} ({field} >= {costs[e.name] / e.original:.4f}: {what}).")


def narrowest_widths(space, table=None):
    """Every searchable row at its narrowest width: the search table's first candidate, or 1 channel;
    pinned rows at their own width."""
    if table is not None:
        return [int(w) for w in np.asarray(table)[:, 0]]
    return [r.n if r.frozen else 1 for r in space.rows]
