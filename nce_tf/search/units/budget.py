"""``Budget``: the cost limits of a search, one :class:`~nce_tf.search.units.UnitBudget` per unit.

A budget holds the units whose cost it counts (``units``: MACs and PARAMs always, weight memory and
BOPs when it knows the quantization policy) and the budget entries the config sets (``entries``:
MACs and PARAMs always, possibly inactive; memory and BOPs when a flag sets them).  Everything that
reads a budget iterates them: the constraint loss (:meth:`SuperNet.cost_terms
<nce_tf.search.supernet.SuperNet.cost_terms>`: ``sum lambda_u L_u`` over the ``constrained``
entries), the search log (``expected_<unit>``, ``argmax_<unit>``, ``target_<unit>`` per entry),
the budget repair and baselines (:meth:`violation`, :meth:`fits`), ``arch.json`` (every counted
unit's cost, the entries' :meth:`to_dict`) and the check that the space can meet it
(:meth:`check_reachable`).

Example:

>>> from nce_tf.search.config import SearchConfig
>>> from nce_tf.sources import build_space
>>> space = build_space("resnet8")
>>> b = Budget.from_config(space, SearchConfig(flops_ratio=1.0, params_ratio=0.5))
>>> [e.name for e in b.constrained], b.limits("params")
(['macs', 'params'], (0.0, 39021.0))
>>> b.fits(b.costs(space, space.default_widths()))
False
"""

import numbers

from nce_tf.errors import UsageError
from nce_tf.search.units.base import UNITS
from nce_tf.search.units.macs import Macs
from nce_tf.search.units.params import Params


def _in_unit_order(items, name):
    order = list(UNITS)
    return sorted(items, key=lambda item: order.index(name(item)) if name(item) in order else len(order))


def _default_entries(original):
    """MACs and PARAMs budgets at the default settings on the original ``(macs, params)``."""
    # Imported here: the config imports this package (every unit checks its own fields there).
    from nce_tf.search.config import SearchConfig

    config = SearchConfig()
    return [Macs().budget(config, original[0]), Params().budget(config, original[1])]


class Budget:
    """Cost limits of a search, relative to the ORIGINAL network (see the module doc).

    Args:
        entries: :class:`~nce_tf.search.units.UnitBudget` per unit the config sets (at most one per unit);
            or, the short form of the README's example, the original network's ``(macs, params)``:
            MACs and PARAMs at the default settings (ratio 1, :class:`~nce_tf.search.SearchConfig`'s).
        counted: further :class:`~nce_tf.search.units.Unit` objects whose cost is counted and recorded
            without a budget (the entries' units are counted too).

    Attributes:
        entries: the budget entries, in the registry's unit order.
        constrained: the active entries: the bands a result must meet.
        units: every counted unit, in the registry's order.
    """

    def __init__(self, entries=(), counted=()):
        entries = tuple(entries)
        if len(entries) == 2 and all(isinstance(v, numbers.Number) for v in entries):
            entries = _default_entries(entries)
        self.entries = tuple(_in_unit_order(entries, lambda e: e.name))
        names = [e.name for e in self.entries]
        if len(set(names)) != len(names):
            raise ValueError(f"One budget entry per unit. Received: {names}.")
        self.constrained = tuple(e for e in self.entries if e.active)
        units = {e.name: e.unit for e in self.entries}
        for unit in counted:
            units.setdefault(unit.name, unit)
        self.units = tuple(_in_unit_order(units.values(), lambda u: u.name))

    @classmethod
    def from_config(cls, space, config, policy=None):
        """The budget a :class:`~nce_tf.search.SearchConfig` sets on ``space``: every registered unit
        counted (those that count bits only with ``policy``), each with the entry ``config`` gives it."""
        units = [unit(policy, config.float_bits) for unit in UNITS.values() if policy is not None or not unit.needs_policy]
        entries = [unit.budget(config, unit.original(space)) for unit in units]
        return cls([e for e in entries if e is not None], counted=units)

    def entry(self, name):
        """The entry of unit ``name``, or ``None``."""
        return next((e for e in self.entries if e.name == name), None)

    def limits(self, name):
        """``(low, high)`` of unit ``name``: ``(0, inf)`` when it limits nothing."""
        e = self.entry(name)
        return e.limits() if e is not None and e.active else (0.0, float("inf"))

    def costs(self, space, widths, constrained=False):
        """``{unit: exact cost of widths}`` of every counted unit (with ``constrained``, only of those
        with a band: the repair's many trials skip what they do not need)."""
        units = [e.unit for e in self.constrained] if constrained else self.units
        return {unit.name: unit.exact(space, widths) for unit in units}

    def bands(self):
        """``(unit, scale, low, high)`` per constrained unit: the cost must lie in ``[low, high]``,
        and ``scale`` (the target) measures how far it lies outside."""
        return [(e.name, e.target, e.low, e.high) for e in self.constrained]

    def violation(self, costs):
        """How far ``costs`` (:meth:`costs`) lie outside the bands, summed in fractions of the targets."""
        return sum(e.violation(costs[e.name]) for e in self.constrained)

    def fits(self, costs, upper_only=False):
        """True when ``costs`` (:meth:`costs`) meet every band (only its upper limits with ``upper_only``)."""
        return all(costs[e.name] <= e.high and (upper_only or e.low <= costs[e.name]) for e in self.constrained)

    def check_reachable(self, space, narrowest, widest):
        """One-line error when no architecture between ``narrowest`` and ``widest`` (every row at its
        narrowest / widest candidate) can meet a band."""
        for e in self.constrained:
            message = e.unit.unreachable(e, e.unit.exact(space, narrowest), e.unit.exact(space, widest))
            if message:
                raise UsageError(message)

    def describe(self):
        """The settings that define the limits, for one-line errors."""
        return ", ".join(e.describe() for e in self.entries)

    def to_dict(self):
        """``arch.json``'s ``budget`` entry: every entry's fields."""
        out = {}
        for e in self.entries:
            out.update(e.to_dict())
        return out
