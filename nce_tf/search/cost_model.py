"""The super-net's cost: expected MACs / PARAMs from softmax(alpha), and TAS's constraint loss.

For row ``l`` with candidate widths ``C_l,j`` and probabilities ``p_l = softmax(alpha_l)``
(plain softmax over the live candidates, no Gumbel noise), ``E[C_l] = sum_j p_l,j C_l,j``
and, rows being independent:

- a conv from row ``i`` to row ``o`` (kernel ``k``, output ``H x W``):
  ``E[MACs] = k^2 H W E[C_i] E[C_o]``, ``E[params] = k^2 E[C_i] E[C_o] + 2 E[C_o]`` (BN);
- a projection the derived net inserts only when the widths differ (an identity block
  whose input and output widths differ): ``H W E[C_i C_o 1(C_i != C_o)]``, with
  ``E[C_i C_o 1(C_i != C_o)] = E[C_i] E[C_o] - sum_{j,k} p_i,j p_o,k 1(C_i,j = C_o,k) C_i,j^2``;
- the classifier: ``E[C_last] * classes`` MACs, ``+ classes`` params.

TAS leaves the projection term out of E[F] (and counts it in the exact cost); we keep it,
so that for a one-hot alpha the expected cost **is** the exact cost of that architecture
(:meth:`SearchSpace.exact_cost`), and the exact cost of the argmax architecture is this
same function of ``one_hot(argmax alpha)``: the two can never disagree.  Sums are in
float64 (ImageNet MACs exceed float32's exact integers).

Constraint loss (TAS ``get_flop_loss``, log form), switched by the exact cost ``F_argmax`` of the
argmax architecture against hard limits ``[low, high]``::

    L = -log E[F]   if F_argmax < low     (too small: grow)
    L = +log E[F]   if F_argmax > high    (too big: shrink)
    L = 0           otherwise             (the dead band)

:class:`~nce_tf.search.units.Budget` sets the limits, one unit at a time
(:mod:`nce_tf.search.units`): from the paper's results, MACs in a band around the target
(``--tolerance`` below, ``--tolerance_above`` above, fractions of the ORIGINAL network's MACs; TAS's
own band is ``[R - 0.05 F, R]``), PARAMs an upper bound only (``low = 0``: the paper's networks come
out at 0.34x-0.94x of the original PARAMs, so PARAMs are never pushed up); weight memory and BOPs a
band below their target.  The loss is ``sum_u lambda_u L_u`` over the budget's constrained units.
``d log E[F] / d alpha = (d E[F] / d alpha) / E[F]``: the term does not depend on the scale.

Example:

>>> import numpy as np
>>> from nce_tf.sources import build_space
>>> from nce_tf.search.cost_model import CostModel
>>> space = build_space("resnet20")
>>> cm = CostModel(space, space.candidates)
>>> one_hot = np.eye(16)[[7] * len(space.rows)]        # every row at C_8 = n
>>> [int(v) for v in cm.expected(one_hot)]
[40813184, 272474]
"""

import numpy as np
import tensorflow as tf

from nce_tf.search.units import Macs, Params


def constraint_loss(expected, current, low, high):
    """TAS's log-form constraint on one cost between hard limits (tensors or floats; see the module doc)."""
    log_e = tf.math.log(tf.cast(expected, tf.float64))
    current = tf.cast(current, tf.float64)
    zero = tf.zeros_like(log_e)
    return tf.where(current < low, -log_e, tf.where(current > high, log_e, zero))


class CostModel:
    """Expected (and, for one-hot inputs, exact) cost of a search space in each of its units.

    Evaluates the space's cost terms (:class:`~nce_tf.search.space.SearchSpace`) at the
    expected widths; rows are independent, so a bilinear term's expectation is the product
    of the two expected widths (a row never meets itself in one term).  Every unit
    (:mod:`nce_tf.search.units`: MACs, PARAMs, weight memory, BOPs, ...) has the same terms with
    its own coefficients (:meth:`expected_units`).

    Args:
        space: a :class:`nce_tf.search.space.SearchSpace`.
        table: ``[L, 16]`` candidate widths of the search (see ``search_table``).
        units: the :class:`~nce_tf.search.units.Unit` objects to cost (default MACs and PARAMs:
            a budget's ``units``).
    """

    def __init__(self, space, table, units=None):
        table = np.asarray(table, "float64")
        self.num_rows = len(space.rows)
        self.table = tf.constant(table)
        self.input_channels = float(space.input_channels)
        ext = lambda idx: np.where(np.asarray(idx, "int64") < 0, self.num_rows, idx)  # noqa: E731
        f64 = lambda v: tf.constant(np.asarray(v, "float64"))  # noqa: E731
        self.bi_in, self.bi_out = ext(space.bi_in), ext(space.bi_out)
        self.lin_row = ext(space.lin_row)
        self.proj_in, self.proj_out = ext(space.proj_in), ext(space.proj_out)
        coefficients = {unit.name: unit.coefficients(space) for unit in (units or (Macs(), Params()))}
        self.units = {unit: (f64(c.bi), f64(c.lin), f64(c.proj_prod), f64(c.proj_out), float(c.const), c.scale)
                      for unit, c in coefficients.items()}
        # Per projection, [16, 16] matrices of 1(C_i,j = C_o,k) * C^2 and * C_o,k.
        same = [table[i][:, None] == table[o][None, :] for i, o in zip(self.proj_in, self.proj_out)]
        self.same_sq = tf.constant(np.array([s * table[i][:, None] ** 2 for s, i in zip(same, self.proj_in)],
                                            "float64").reshape(-1, 16, 16))
        self.same_out = tf.constant(np.array([s * table[o][None, :] for s, o in zip(same, self.proj_out)],
                                             "float64").reshape(-1, 16, 16))

    def expected_widths(self, probs):
        """``E[C_l]`` per row (``[L]``, float64)."""
        return tf.reduce_sum(tf.cast(probs, tf.float64) * self.table, axis=1)

    def expected(self, probs):
        """``(E[MACs], E[params])`` as float64 scalars, differentiable in ``probs`` ``[L, 16]``."""
        out = self.expected_units(probs, ("macs", "params"))
        return out["macs"], out["params"]

    def expected_units(self, probs, units):
        """``{unit: E[cost]}`` (float64 scalars) for the names ``units`` among the units the model
        costs; differentiable in ``probs`` ``[L, 16]``."""
        probs = tf.cast(probs, tf.float64)
        ec = tf.concat([self.expected_widths(probs), tf.constant([self.input_channels], tf.float64)], 0)
        prod = tf.gather(ec, self.bi_in) * tf.gather(ec, self.bi_out) if len(self.bi_in) else None
        e = tf.gather(ec, self.lin_row) if len(self.lin_row) else None
        if len(self.proj_in):
            p_in, p_out = tf.gather(probs, self.proj_in), tf.gather(probs, self.proj_out)
            e_in, e_out = tf.gather(ec, self.proj_in), tf.gather(ec, self.proj_out)
            same_sq = tf.einsum("pj,pjk,pk->p", p_in, self.same_sq, p_out)
            same_out = tf.einsum("pj,pjk,pk->p", p_in, self.same_out, p_out)
            # E[C_i C_o 1(C_i != C_o)] and E[C_o 1(C_i != C_o)]
            prod_differ, out_differ = e_in * e_out - same_sq, e_out - same_out
        out = {}
        for unit in units:
            c_bi, c_lin, c_prod, c_out, const, scale = self.units[unit]
            total = tf.constant(const, tf.float64)
            if prod is not None:
                total += tf.reduce_sum(c_bi * prod)
            if e is not None:
                total += tf.reduce_sum(c_lin * e)
            if len(self.proj_in):
                total += tf.reduce_sum(c_prod * prod_differ + c_out * out_differ)
            out[unit] = total * scale if scale != 1 else total
        return out
