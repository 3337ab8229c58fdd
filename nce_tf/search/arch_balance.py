"""``ArchOptimizerPair``: alpha stepped by two optimizers, one per part of its gradient (``--arch_balance=split``).

TAS steps alpha with one Adam on the whole architecture gradient ``g = g_CE + g_cost + wd alpha``
(``--arch_balance=shared``).  Adam divides each step by a running RMS of ``g`` (its second moment
``v``), which the parts share: while the argmax lies outside the budget band the cost part is
20-400x the CE part, ``v`` fills with the cost part's scale, and for about ``1 / (1 - beta_2)`` =
1,000 steps after such a burst the CE part moves alpha ~100x less than it would on its own.
``split`` gives each part its own moments::

    alpha <- alpha - Adam_CE(g_CE) - Adam_cost(g_cost + wd alpha)

so each part's step is normalised by its own RMS: the CE part moves alpha by about ``lr`` a step
whatever the cost does, and the cost part by about ``lr`` whatever the CE does.  The two updates
are applied one after the other; an Adam update (without its own ``weight_decay``) does not read
the variable, so that is their sum.

Expansion (:mod:`nce_tf.search.expansion`) copies the per-entry state of every variable of
:attr:`ArchOptimizerPair.variables` shaped like alpha, so both Adams' moments follow a copied entry.

Example:

>>> import keras
>>> pair = ArchOptimizerPair.twin(keras.optimizers.Adam(1e-3, beta_1=0.5, name="arch"))
>>> pair.cost.beta_1, pair.cost.name
(0.5, 'arch_cost')
"""


class ArchOptimizerPair:
    """Two optimizers of the same variables: ``ce`` steps on the CE part, ``cost`` on the rest.

    Args:
        ce: the optimizer of the cross-entropy's part.
        cost: the optimizer of the cost constraint's part plus alpha's coupled decay.
    """

    def __init__(self, ce, cost):
        self.ce, self.cost = ce, cost

    @classmethod
    def twin(cls, optimizer):
        """A pair of ``optimizer`` (CE part) and a fresh optimizer of its class and settings (cost part)."""
        config = optimizer.get_config()
        return cls(optimizer, type(optimizer).from_config({**config, "name": f"{config['name']}_cost"}))

    @property
    def variables(self):
        """Both optimizers' state (step counters, moments), the CE optimizer's first."""
        return [*self.ce.variables, *self.cost.variables]

    def build(self, variables):
        self.ce.build(variables)
        self.cost.build(variables)

    def apply_parts(self, ce_grads, cost_grads, variables):
        """One step of each optimizer on its part of the gradient (the updates add up)."""
        self.ce.apply(ce_grads, variables)
        self.cost.apply(cost_grads, variables)
