"""Costs in the units of hardware: weight memory in bytes and BOPs, at a quantization policy's bits.

The search space's cost terms (:class:`~nce_tf.search.space.SearchSpace`) name the role of their
weights and the node they read (:class:`~nce_tf.search.ops.CostTerms`); this module turns them into
two more units, with the same bilinear / linear / projection form as MACs and PARAMs, so that the
expected cost (:class:`~nce_tf.search.cost_model.CostModel`), the exact cost and the budget repair
treat them like MACs and PARAMs.

Conventions (``nce_tf.cost.count_model(model, float_bits)`` counts a built Keras model alike):

- **Weight memory** (bytes): every kernel weight at its layer's bits as deployed: ``w_bits`` for the
  quantized body, the policy's bits for the first conv, the classifier and the shortcut
  (projection) convs; a kernel the Keras model keeps at 32 bits (float) counts at ``float_bits``
  (8 by default: the int8 TFLite file stores those layers as int8).  BatchNorm's gamma and beta
  and every bias count at 32 bits (the TFLite file folds a conv's BN into an int32 bias and a
  float32 scale per output channel: the same 8 bytes).
- **BOPs**: per layer, MACs x its weight bits (as above) x the bits of its input activations:
  ``a_bits`` where its input holds only PACT levels (an activation, or a max pool / flatten /
  concatenation of them), ``float_bits`` elsewhere (the image, average pools, residual sums,
  and every activation when ``a_bits`` is 32).

Example (ResNet-8 W2A2; the first conv sees the 8-bit image, the body 2-bit weights and inputs):

>>> from nce_tf.models import QuantPolicy
>>> from nce_tf.sources import build_space
>>> space = build_space("resnet8")
>>> hw = HardwareCost(space, QuantPolicy(w_bits=2, a_bits=2), float_bits=8)
>>> hw.exact(space.default_widths())
{'memory_bytes': 24792.0, 'bops': 92315648}
"""

import dataclasses

import numpy as np

from nce_tf import choices
from nce_tf.errors import UsageError
from nce_tf.search.space import Coefficients

_AUX_BITS = 32  # BN and biases


class HardwareCost:
    """Weight memory and BOPs of a space's derived networks under ``policy`` (see the module doc).

    Args:
        space: a :class:`~nce_tf.search.space.SearchSpace`.
        policy: the :class:`~nce_tf.models.QuantPolicy` the derived network is trained with.
        float_bits: bits of what the Keras model keeps at 32 bits (8, 16 or 32).

    Attributes:
        coefficients: ``{"memory_bytes": Coefficients, "bops": Coefficients}``.
    """

    def __init__(self, space, policy, float_bits=8):
        self.space, self.policy, self.float_bits = space, policy, int(float_bits)
        grid = space.on_grid()
        w = lambda role: self._bits(policy.weight_bits(role))  # noqa: E731
        a = lambda src: self._bits(policy.a_bits if grid[src] else choices.FULL_PRECISION)  # noqa: E731
        terms = space.terms
        col = lambda values: np.array(list(values), "int64")  # noqa: E731
        shortcut = w("shortcut")  # a projection the derived network inserts is a shortcut conv
        self.coefficients = {
            "memory_bytes": Coefficients(
                col(p * w(role) for _, _, _, p, role, _ in terms.bi),
                col(k * w(role) + (p - k) * _AUX_BITS for _, _, p, k, role, _ in terms.lin),
                col(shortcut for _ in terms.proj), col(2 * _AUX_BITS for _ in terms.proj),
                space.const_params * _AUX_BITS, scale=1 / 8),
            "bops": Coefficients(
                col(m * w(role) * a(src) for _, _, m, _, role, src in terms.bi),
                col(m * w(role) * a(src) for _, m, _, _, role, src in terms.lin),
                col(hw * shortcut * a(src) for _, _, hw, src in terms.proj), col(0 for _ in terms.proj), 0),
        }

    def _bits(self, bits):
        return bits if bits < choices.FULL_PRECISION else self.float_bits

    def exact(self, widths):
        """``{"memory_bytes": float, "bops": int}`` of the derived network with ``widths``."""
        out = {}
        for unit, coef in self.coefficients.items():
            total = self.space.exact(widths, coef)
            out[unit] = total * coef.scale if coef.scale != 1 else total
        return out


_SHORT = {"memory_bytes": "memory", "bops": "bops"}  # the unit's name in flags (--memory_ratio, --lambda_bops)
_SYMBOL = {"memory_bytes": "bytes", "bops": "BOPs"}


@dataclasses.dataclass
class UnitBudget:
    """A budget in one hardware unit: the band ``[(1 - tolerance) target, target]``.

    A cost above the target is pushed down and one under the band pushed up, by TAS's log-form
    constraint with ``coefficient`` (:func:`nce_tf.search.cost_model.constraint_loss`);
    ``tolerance = 1`` makes the target a ceiling only.

    Args:
        unit: ``memory_bytes`` or ``bops``.
        original: the original network's cost in the unit.
        target: the limit, in the unit.
        tolerance: how far below the target the band reaches, as a fraction of the target.
        coefficient: the constraint loss's coefficient.
        given: the setting that defined the target (``memory_ratio=0.5``), for messages.
    """

    unit: str
    original: float
    target: float
    tolerance: float
    coefficient: float
    given: str = ""

    def limits(self):
        return (1.0 - self.tolerance) * self.target, self.target

    def describe(self):
        return self.given or f"{self.unit}={self.target:g}"

    def to_dict(self):
        short = _SHORT[self.unit]
        return {f"original_{self.unit}": self.original, f"target_{self.unit}": self.target,
                f"{self.unit}_limits": list(self.limits()), f"{short}_tolerance": self.tolerance,
                f"lambda_{short}": self.coefficient, f"{short}_budget": self.describe()}


def unit_budgets(config, original):
    """The :class:`UnitBudget` of every hardware budget a :class:`~nce_tf.search.SearchConfig` sets.

    ``original``: the original network's ``{"memory_bytes": ..., "bops": ...}`` (:meth:`HardwareCost.exact`).
    """
    out = []
    for unit, short in _SHORT.items():
        absolute, ratio = config.budget_value(unit), config.budget_value(f"{short}_ratio")
        if absolute is None and ratio is None:
            continue
        given = (f"{short}_ratio={getattr(config, f'{short}_ratio')}" if ratio is not None
                 else f"{unit}={getattr(config, unit)}")
        target = absolute if absolute is not None else ratio * original[unit]
        out.append(UnitBudget(unit, original[unit], float(target), getattr(config, f"{short}_tolerance"),
                              getattr(config, f"lambda_{short}"), given))
    return out


def check_unit_budgets(budget, narrowest, widest):
    """One-line error when no architecture meets a memory or BOPs budget: ``narrowest`` / ``widest``
    are the costs (:meth:`HardwareCost.exact`) with every row at its narrowest / widest candidate."""
    for u in budget.units:
        lo, hi = u.limits()
        name = _SHORT[u.unit]
        if narrowest[u.unit] > hi:
            raise UsageError(
                f"No architecture in the search space meets the {name} budget. Received: {u.describe()} "
                f"({u.target:,.0f} {_SYMBOL[u.unit]}). Allowed: at least {narrowest[u.unit]:,.0f} {_SYMBOL[u.unit]} "
                f"({name}_ratio >= {narrowest[u.unit] / u.original:.4f}: every layer at its narrowest candidate).")
        if widest[u.unit] < lo:
            raise UsageError(
                f"No architecture in the search space reaches the {name} budget's band. Received: {u.describe()}, "
                f"{name}_tolerance={u.tolerance} (band from {lo:,.0f} {_SYMBOL[u.unit]}). Allowed: a band that "
                f"reaches {widest[u.unit]:,.0f} {_SYMBOL[u.unit]} (every layer at its widest candidate), e.g. "
                f"{name}_tolerance=1 (a ceiling only).")
