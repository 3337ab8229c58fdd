"""MACs (the paper's FLOPs): a target with a band on both sides, relative to the original network.

The paper's searched networks sit at 0.91x-1.056x of the original FLOPs (ResNet-20 W2A2 1.004x,
ResNet-18 1.046x, 2X TAS 1.056x; W4A4 0.908x), so the band reaches ``--tolerance`` below the target
(TAS: 0.05) and ``--tolerance_above`` above it (0.06), both fractions of the ORIGINAL network's MACs;
``--flops_ratio=0`` leaves MACs unconstrained (still logged and recorded, target 0).

Example:

>>> from nce_tf.search.config import SearchConfig
>>> b = Macs().budget(SearchConfig(flops_ratio=1.0, tolerance=0.05, tolerance_above=0.06), 1000)
>>> b.limits(), b.describe()
((950.0, 1060.0), 'flops_ratio=1.0, tolerance=0.05, tolerance_above=0.06')
"""

from nce_tf.search.units.base import Unit, UnitBudget, register_unit


@register_unit
class Macs(Unit):
    """Multiply-accumulates of one forward pass of one image (the space's own ``macs`` terms)."""

    name, ratio_key, label = "macs", "macs_ratio", "MACs"

    def terms(self, space):
        return space.coefficients()["macs"]

    @classmethod
    def check_config(cls, config, need):
        need(0 <= config.flops_ratio <= 2 ** 2, "flops_ratio",
             "0 <= flops_ratio <= 4 (2X widths cost up to 4X; 0 = unconstrained)")
        need(0 <= config.tolerance < 1, "tolerance", "0 <= tolerance < 1")
        need(0 <= config.tolerance_above < 1, "tolerance_above", "0 <= tolerance_above < 1")
        need(config.lambda_flops >= 0, "lambda_flops", ">= 0")

    def budget(self, config, original):
        ratio, below, above = float(config.flops_ratio), float(config.tolerance), float(config.tolerance_above)
        target = ratio * original
        limits = (target - below * original, target + above * original) if ratio > 0 else (0.0, float("inf"))
        return UnitBudget(self, original, target, *limits, float(config.lambda_flops),
                          f"flops_ratio={ratio}, tolerance={below}, tolerance_above={above}",
                          {"flops_ratio": ratio, "tolerance": below, "tolerance_above": above}, active=ratio > 0)

    def budget_fields(self, budget):
        s = budget.settings
        return {"original_macs": budget.original, "flops_ratio": s["flops_ratio"], "target_macs": budget.target,
                "tolerance": s["tolerance"], "tolerance_above": s["tolerance_above"],
                "macs_limits": list(budget.limits()) if budget.active else None, "lambda_flops": budget.coefficient}

    def target_text(self, budget):
        return f"{budget.target / 1e6:.2f}M MACs" if budget.active else "any MACs"

    def unreachable(self, budget, narrowest, widest):
        (lo, hi), orig = budget.limits(), budget.original
        if narrowest > hi or widest < lo:
            return (f"No architecture in the search space meets the FLOPs budget. Received: "
                    f"flops_ratio={budget.settings['flops_ratio']}. Allowed: a band [{lo / orig:.3f}, {hi / orig:.3f}] "
                    f"of the original that meets [{narrowest / orig:.3f}, {widest / orig:.3f}] (every layer at its "
                    f"narrowest / widest candidate).")
        return None
