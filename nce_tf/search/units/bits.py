"""Units counted at a quantization policy's bits: the deployed bits of each cost term, and the budget
that weight memory and BOPs share (a target in the unit, or a ratio of the original network's).

Conventions (``nce_tf.cost.count_model(model, float_bits)`` counts a built Keras model alike):

- a kernel's weights are at its layer's bits as deployed: ``w_bits`` for the quantized body, the
  policy's bits for the first conv, the classifier and the shortcut (projection) convs; a kernel the
  Keras model keeps at 32 bits (float) counts at ``float_bits`` (8 by default: the int8 TFLite file
  stores those layers as int8).  BatchNorm's gamma and beta and every bias count at 32 bits
  (:data:`AUX_BITS`: the TFLite file folds a conv's BN into an int32 bias and a float32 scale per
  output channel, the same 8 bytes);
- a layer's input is at ``a_bits`` where it holds only PACT levels (an activation, or a max pool /
  flatten / concatenation of them), at ``float_bits`` elsewhere (the image, average pools, residual
  sums, and every activation when ``a_bits`` is 32).

The budget is the band ``[(1 - tolerance) target, target]`` (``tolerance = 1``: a ceiling only),
set by ``--<flag>_ratio`` or the unit's absolute field (``--memory_bytes``, ``--bops``).
"""

import numpy as np

from nce_tf import choices
from nce_tf.errors import UsageError
from nce_tf.search.units.base import Unit, UnitBudget

AUX_BITS = 32  # BN and biases


def column(values):
    return np.array(list(values), "int64")


class BitsUnit(Unit):
    """A unit counted at the policy's bits, with a budget in the unit (see the module doc).

    Attributes:
        flag: the unit's name in flags (``--<flag>_ratio``, ``--<flag>_tolerance``, ``--lambda_<flag>``).
        symbol: what messages call one of the unit (``bytes``).
    """

    needs_policy = True
    flag, symbol = "", ""
    ratio_field = tolerance_field = lambda_field = ""  # its SearchConfig fields besides ``name`` (the absolute one)

    def weight_bits(self, role):
        """The deployed bits of a kernel with ``role``."""
        return self.deployed(self.policy.weight_bits(role))

    def input_bits(self, space):
        """Per node, the bits a layer reading it sees."""
        return [self.deployed(self.policy.a_bits if on else choices.FULL_PRECISION) for on in space.on_grid()]

    def deployed(self, bits):
        return bits if bits < choices.FULL_PRECISION else self.float_bits

    @classmethod
    def check_config(cls, config, need):
        ratio = cls.ratio_field
        if None not in (config.budget_value(cls.name), config.budget_value(ratio)):
            raise UsageError(f"Set one of {cls.name} and {ratio}. Received: {cls.name}={getattr(config, cls.name)!r}, "
                             f"{ratio}={getattr(config, ratio)!r}.")
        need(0 <= getattr(config, cls.tolerance_field) <= 1, cls.tolerance_field, "0 <= tolerance <= 1 (1 = a ceiling)")
        need(getattr(config, cls.lambda_field) >= 0, cls.lambda_field, ">= 0")

    def budget(self, config, original):
        ratio_field = self.ratio_field
        absolute, ratio = config.budget_value(self.name), config.budget_value(ratio_field)
        if absolute is None and ratio is None:
            return None
        given = (f"{ratio_field}={getattr(config, ratio_field)}" if ratio is not None
                 else f"{self.name}={getattr(config, self.name)}")
        target = float(absolute if absolute is not None else ratio * original)
        tolerance = getattr(config, self.tolerance_field)
        return UnitBudget(self, original, target, (1.0 - tolerance) * target, target,
                          getattr(config, self.lambda_field), given, {"tolerance": tolerance})

    def budget_fields(self, budget):
        return {f"original_{self.name}": budget.original, f"target_{self.name}": budget.target,
                f"{self.name}_limits": list(budget.limits()), self.tolerance_field: budget.settings["tolerance"],
                self.lambda_field: budget.coefficient, f"{self.flag}_budget": budget.describe()}

    def record(self, space, cost):
        # float_bits: the convention the cost is counted in
        return {**super().record(space, cost), "float_bits": self.float_bits}

    def unreachable(self, budget, narrowest, widest):
        (lo, hi), name, sym = budget.limits(), self.flag, self.symbol
        if narrowest > hi:
            return (f"No architecture in the search space meets the {name} budget. Received: {budget.describe()} "
                    f"({budget.target:,.0f} {sym}). Allowed: at least {narrowest:,.0f} {sym} ({name}_ratio >= "
                    f"{narrowest / budget.original:.4f}: every layer at its narrowest candidate).")
        if widest < lo:
            return (f"No architecture in the search space reaches the {name} budget's band. Received: "
                    f"{budget.describe()}, {name}_tolerance={budget.settings['tolerance']} (band from {lo:,.0f} {sym}). "
                    f"Allowed: a band that reaches {widest:,.0f} {sym} (every layer at its widest candidate), e.g. "
                    f"{name}_tolerance=1 (a ceiling only).")
        return None
