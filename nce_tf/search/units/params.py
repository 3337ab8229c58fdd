"""PARAMs: an upper bound only, relative to the original network.

The paper's searched networks come out at 0.34x-0.94x of the original PARAMs, so a PARAMs floor
could not derive them: the band is ``[0, params_ratio x original]`` and PARAMs are pushed down
above it, never up.  ``--params_ratio=0`` leaves them unconstrained (still logged and recorded).

Example:

>>> from nce_tf.search.config import SearchConfig
>>> Params().budget(SearchConfig(params_ratio=0.5), 100).limits()
(0.0, 50.0)
"""

from nce_tf.search.units.base import Unit, UnitBudget, register_unit


@register_unit
class Params(Unit):
    """Parameters of the derived network (kernels, BN's gamma and beta, biases: the space's ``params`` terms)."""

    name, ratio_key, label = "params", "params_ratio", "params"

    def terms(self, space):
        return space.coefficients()["params"]

    @classmethod
    def check_config(cls, config, need):
        need(0 <= config.params_ratio <= 2 ** 2, "params_ratio", "0 <= params_ratio <= 4 (0 = unconstrained)")
        need(config.lambda_params >= 0, "lambda_params", ">= 0")

    def budget(self, config, original):
        ratio = float(config.params_ratio)
        target = ratio * original
        return UnitBudget(self, original, target, 0.0, target if ratio > 0 else float("inf"),
                          float(config.lambda_params), f"params_ratio={ratio}", {"params_ratio": ratio},
                          active=ratio > 0)

    def budget_fields(self, budget):
        return {"original_params": budget.original, "params_ratio": budget.settings["params_ratio"],
                "target_params": budget.target, "params_limit": budget.high if budget.active else None,
                "lambda_params": budget.coefficient}

    def target_text(self, budget):
        return f"{budget.target / 1e6:.3f}M params" if budget.active else None

    def unreachable(self, budget, narrowest, widest):
        if narrowest > budget.high:
            return (f"No architecture in the search space meets the PARAMs bound. Received: "
                    f"params_ratio={budget.settings['params_ratio']}. Allowed: params_ratio >= "
                    f"{narrowest / budget.original:.3f} (every layer at its narrowest candidate), or 0.")
        return None
