"""What every cost unit owns, its budget, and the registry that lists the units.

A **unit** (:class:`Unit`) is one way of costing a derived network: MACs, PARAMs, weight memory,
BOPs.  It owns, for a :class:`~nce_tf.search.space.SearchSpace`:

- its **coefficients** on the space's cost terms (:class:`Coefficients`, ``terms``): the expected
  cost from the super-net's probabilities (:class:`~nce_tf.search.cost_model.CostModel`) and the
  exact cost of a width list (:meth:`Unit.exact`) are the same terms, so they cannot disagree;
- its **budget** from a :class:`~nce_tf.search.SearchConfig` (``budget``): a :class:`UnitBudget`
  with the band, the constraint's coefficient and the settings that set it, or ``None``;
- what ``arch.json`` records of it (``record``, and ``budget_fields`` in the ``budget`` entry),
  its progress-line label, its config checks (``check_config``, without TensorFlow) and the
  one-line error when no architecture of the space can meet its band (``unreachable``).

The search log, the constraint loss, the derivation's budget repair and ``arch.json`` iterate the
units of a :class:`~nce_tf.search.units.Budget`; adding a unit is one subclass registered with
:func:`register_unit` (and its test).

Example:

>>> from nce_tf.search.units import UNITS
>>> list(UNITS)
['macs', 'params', 'memory_bytes', 'bops']
"""

import dataclasses

import numpy as np

UNITS = {}  # name -> Unit subclass, in the order logs and records list them


def register_unit(cls):
    """Class decorator: registers a :class:`Unit` subclass under ``cls.name``."""
    UNITS[cls.name] = cls
    return cls


@dataclasses.dataclass
class Coefficients:
    """One unit's coefficient per cost term (see :class:`~nce_tf.search.space.SearchSpace`): ``bi``
    per bilinear term, ``lin`` per linear term, per projection ``proj_prod`` on ``C_i C_o`` and
    ``proj_out`` on ``C_o`` (both only when ``C_i != C_o``), and ``const``; integers, the unit being
    ``scale`` times them."""

    bi: np.ndarray
    lin: np.ndarray
    proj_prod: np.ndarray
    proj_out: np.ndarray
    const: int
    scale: float = 1.0


@dataclasses.dataclass
class UnitBudget:
    """The budget of one unit: the cost must lie in ``[low, high]``.

    A cost above ``high`` is pushed down and one under ``low`` pushed up, by TAS's log-form
    constraint with ``coefficient`` (:func:`nce_tf.search.cost_model.constraint_loss`); how far a
    cost lies outside is measured in fractions of ``target`` (:meth:`violation`).

    Args:
        unit: the :class:`Unit`.
        original: the original network's cost in the unit.
        target: the budget's target (``0`` for an inactive MACs / PARAMs entry).
        low, high: the hard limits a result must meet.
        coefficient: the constraint loss's coefficient.
        given: the settings that set it (``memory_ratio=0.5``), for messages.
        settings: ``{field: value}`` of the config fields that set it (``budget_fields`` records them).
        active: ``False`` for an entry that is recorded but limits nothing (MACs at ``flops_ratio=0``).
    """

    unit: object
    original: float
    target: float
    low: float
    high: float
    coefficient: float
    given: str = ""
    settings: dict = dataclasses.field(default_factory=dict)
    active: bool = True

    @property
    def name(self):
        return self.unit.name

    def limits(self):
        return self.low, self.high

    def describe(self):
        return self.given or f"{self.name}={self.target:g}"

    def violation(self, cost):
        """How far ``cost`` lies outside ``[low, high]``, as a fraction of the target."""
        return max(0.0, (cost - self.high) / self.target) + max(0.0, (self.low - cost) / self.target)

    def to_dict(self):
        """What ``arch.json``'s ``budget`` entry records of it (the unit's ``budget_fields``)."""
        return self.unit.budget_fields(self)


class Unit:
    """One cost unit (see the module doc); a subclass sets the class attributes and ``terms``.

    Args:
        policy: the :class:`~nce_tf.models.QuantPolicy` the derived network is trained with (units
            that count bits need it: ``needs_policy``).
        float_bits: bits of what the Keras model keeps at 32 bits (8, 16 or 32).

    Attributes:
        name: the cost's key: ``expected_<name>`` / ``argmax_<name>`` / ``target_<name>`` in the
            search log, ``<name>`` / ``original_<name>`` in ``arch.json``.
        ratio_key: ``arch.json``'s key of the cost over the original's.
        label: its name in the progress line; ``scale`` / ``suffix``: the line shows ``v / scale``.
        needs_policy: counted only when the budget knows the quantization policy.
    """

    name = ""
    ratio_key = ""
    label = ""
    scale, suffix, digits = 1e6, "M", 2
    needs_policy = False

    def __init__(self, policy=None, float_bits=8):
        self.policy, self.float_bits = policy, int(float_bits)
        self._cached = (None, None)  # (space, its coefficients): the repair costs thousands of trials

    def terms(self, space):
        """This unit's :class:`Coefficients` on ``space``'s cost terms."""
        raise NotImplementedError

    def coefficients(self, space):
        if self._cached[0] is not space:
            self._cached = (space, self.terms(space))
        return self._cached[1]

    def exact(self, space, widths):
        """The exact cost of the derived network with ``widths`` (Python numbers)."""
        coef = self.coefficients(space)
        total = space.exact(widths, coef)
        return total * coef.scale if coef.scale != 1 else total

    def original(self, space):
        return self.exact(space, space.default_widths())

    def record(self, space, cost):
        """What ``arch.json`` records of a derived network costing ``cost``."""
        original = self.original(space)
        return {self.name: cost, f"original_{self.name}": original, self.ratio_key: cost / original}

    @classmethod
    def check_config(cls, config, need):
        """Checks this unit's fields of a :class:`~nce_tf.search.SearchConfig` (``need(ok, field, allowed)``
        raises the one-line error)."""

    def budget(self, config, original):
        """The :class:`UnitBudget` ``config`` sets (``original``: the original network's cost), or ``None``."""
        return None

    def budget_fields(self, budget):
        """``arch.json``'s ``budget`` entry for this unit's :class:`UnitBudget`."""
        return {f"original_{self.name}": budget.original, f"target_{self.name}": budget.target,
                f"{self.name}_limits": list(budget.limits()), f"lambda_{self.name}": budget.coefficient}

    def unreachable(self, budget, narrowest, widest):
        """The one-line error (or ``None``) when the space's narrowest / widest costs miss the band."""
        lo, hi = budget.limits()
        if narrowest > hi or widest < lo:
            return (f"No architecture in the search space meets the {self.name} budget. Received: {budget.describe()}. "
                    f"Allowed: a band [{lo:,.0f}, {hi:,.0f}] that meets [{narrowest:,.0f}, {widest:,.0f}] "
                    f"(every layer at its narrowest / widest candidate).")
        return None

    def target_text(self, budget):
        """What the search's start line says of the budget (``None``: nothing)."""
        return f"{self.name} <= {budget.target:,.0f}" if budget.active else None

    @classmethod
    def show(cls, value):
        """``value`` as the search's progress line shows it."""
        return f"{value / cls.scale:.{cls.digits}f}{cls.suffix}"
