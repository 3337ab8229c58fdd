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

Constraint loss (TAS ``get_flop_loss``, log form), with target ``R = ratio * F_orig`` and an
absolute tolerance ``t = tolerance * F_orig`` of the ORIGINAL 1X network::

    L = -log E[F]   if F_argmax < R - t      (too small: grow)
    L = +log E[F]   if F_argmax > R          (too big: shrink)
    L = 0           otherwise                (the asymmetric dead band [R - t, R])

Example:

>>> import numpy as np
>>> from nce_tf.search.space import build_space
>>> from nce_tf.search.cost_model import CostModel
>>> space = build_space("resnet20")
>>> cm = CostModel(space, space.candidates)
>>> one_hot = np.eye(16)[[7] * len(space.rows)]        # every row at C_8 = n
>>> [int(v) for v in cm.expected(one_hot)]
[40813184, 272474]
"""

import numpy as np
import tensorflow as tf


def constraint_loss(expected, current, target, tolerance_abs):
    """TAS's log-form constraint on one cost (tensors or floats; see the module doc)."""
    log_e = tf.math.log(tf.cast(expected, tf.float64))
    current = tf.cast(current, tf.float64)
    zero = tf.zeros_like(log_e)
    return tf.where(current < target - tolerance_abs, -log_e, tf.where(current > target, log_e, zero))


class CostModel:
    """Expected (and, for one-hot inputs, exact) MACs and PARAMs of a search space.

    Args:
        space: a :class:`nce_tf.search.space.SearchSpace`.
        table: ``[L, 16]`` candidate widths of the search (see ``search_table``).
    """

    def __init__(self, space, table):
        table = np.asarray(table, "float64")
        self.num_rows = len(space.rows)
        self.table = tf.constant(table)
        ext = lambda idx: np.where(np.asarray(idx, "int64") < 0, self.num_rows, idx)  # noqa: E731
        self.conv_in, self.conv_out = ext(space.conv_in), ext(space.conv_out)
        self.conv_k2hw2 = tf.constant(space.conv_k2hw2)
        self.conv_k2 = tf.constant(space.conv_k2)
        self.proj_in, self.proj_out = ext(space.proj_in), ext(space.proj_out)
        self.proj_hw2 = tf.constant(space.proj_hw2)
        # Per projection, [16, 16] matrices of 1(C_i,j = C_o,k) * C^2 and * C_o,k.
        same = [table[i][:, None] == table[o][None, :] for i, o in zip(self.proj_in, self.proj_out)]
        self.same_sq = tf.constant(np.array([s * table[i][:, None] ** 2 for s, i in zip(same, self.proj_in)],
                                            "float64").reshape(-1, 16, 16))
        self.same_out = tf.constant(np.array([s * table[o][None, :] for s, o in zip(same, self.proj_out)],
                                             "float64").reshape(-1, 16, 16))
        self.last = self.num_rows if space.last_row < 0 else space.last_row
        self.num_classes = float(space.num_classes)

    def expected_widths(self, probs):
        """``E[C_l]`` per row (``[L]``, float64)."""
        return tf.reduce_sum(tf.cast(probs, tf.float64) * self.table, axis=1)

    def expected(self, probs):
        """``(E[MACs], E[params])`` as float64 scalars, differentiable in ``probs`` ``[L, 16]``."""
        probs = tf.cast(probs, tf.float64)
        ec = tf.concat([self.expected_widths(probs), tf.constant([3.0], tf.float64)], 0)
        cin, cout = tf.gather(ec, self.conv_in), tf.gather(ec, self.conv_out)
        macs = tf.reduce_sum(self.conv_k2hw2 * cin * cout)
        params = tf.reduce_sum(self.conv_k2 * cin * cout + 2.0 * cout)
        if len(self.proj_in):
            p_in, p_out = tf.gather(probs, self.proj_in), tf.gather(probs, self.proj_out)
            e_in, e_out = tf.gather(ec, self.proj_in), tf.gather(ec, self.proj_out)
            same_sq = tf.einsum("pj,pjk,pk->p", p_in, self.same_sq, p_out)
            same_out = tf.einsum("pj,pjk,pk->p", p_in, self.same_out, p_out)
            prod_differ = e_in * e_out - same_sq
            macs += tf.reduce_sum(self.proj_hw2 * prod_differ)
            params += tf.reduce_sum(prod_differ + 2.0 * (e_out - same_out))
        last = ec[self.last]
        macs += last * self.num_classes
        params += last * self.num_classes + self.num_classes
        return macs, params
