"""Pair merges: how a searchable layer aligns its two candidates' outputs to ``C*`` channels before
mixing them, ``out = sum_j h_j y_j M_j`` with ``y_j`` candidate ``j``'s ``C_j`` channels.

Each merge is a function ``(c, c_star) -> M`` building the ``[C*, C*]`` matrix in-graph (rows
``>= c`` zero; ``c`` a scalar or a vector of widths, which gives ``[J, C*, C*]``):

- ``cwi`` (TAS, the default): channel-wise interpolation (:mod:`nce_tf.search.cwi`). The
  narrower candidate's ``C_j`` channels are stretched over all ``C*`` by adaptive average
  pooling, so its output channel ``o`` is a mean of its channels near ``o C_j / C*``.
- ``pad``: the narrower candidate's channels stay where they are and the channels beyond ``C_j``
  are zero, ``M[i, o] = 1`` if ``i == o < C_j``: what a derived network at ``C_j`` computes,
  read at ``C*`` channels. A control for the interpolation: at a tie of two candidates that
  compute the same function (the wider one's extra channels at zero), ``pad`` gives both the same
  output, so the CE gradient of the mixing weights is zero; ``cwi`` does not (README, "The
  search's 'wants wider' signal is mostly its pair merge").

Example:

>>> import tensorflow as tf
>>> pad_matrix(tf.constant(2), tf.constant(3)).numpy()
array([[1., 0., 0.],
       [0., 1., 0.],
       [0., 0., 0.]], dtype=float32)
"""

import tensorflow as tf

from nce_tf.errors import UsageError
from nce_tf.search.config import PAIR_MERGES
from nce_tf.search.cwi import cwi_matrix


def pad_matrix(c, c_star):
    """The identity on the first ``c`` of ``c_star`` channels, zero rows beyond (int32 tensors;
    ``c`` a scalar or a vector ``[J]``, which gives ``[J, c_star, c_star]``)."""
    c = tf.convert_to_tensor(c)[..., None, None]
    i = tf.range(c_star)[:, None]
    o = tf.range(c_star)[None, :]
    return tf.cast(tf.logical_and(tf.equal(i, o), i < c), tf.float32)


# Keyed by the names SearchConfig accepts (nce_tf.search.config.PAIR_MERGES, kept free of TensorFlow).
MERGE_MATRICES = {"cwi": cwi_matrix, "pad": pad_matrix}


def check_pair_merge(value):
    """``value`` if it names a pair merge (:data:`~nce_tf.search.config.PAIR_MERGES`), else a one-line error."""
    if value not in PAIR_MERGES:
        raise UsageError(f"Invalid pair_merge. Received: pair_merge={value!r}. Allowed: {', '.join(PAIR_MERGES)}.")
    return value


def merge_matrix(kind, c, c_star):
    """``M`` of the pair merge ``kind`` (a key of :data:`MERGE_MATRICES`) for widths ``c`` at ``c_star``."""
    return MERGE_MATRICES[kind](c, c_star)
