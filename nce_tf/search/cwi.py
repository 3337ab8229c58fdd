"""Channel-wise interpolation (CWI, TAS): align a C-channel tensor to C* >= C channels.

Output channel ``o`` of ``C*`` is the mean of input channels ``[s_o, e_o)`` with
``s_o = floor(o C / C*)`` and ``e_o = ceil((o + 1) C / C*)``: adaptive average pooling
along the channel axis.  As a matrix ``M[i, o] = 1 / (e_o - s_o)`` for ``s_o <= i < e_o``;
the identity when ``C == C*``.  Example 4 -> 6: bins (0,1), (0,2), (1,2), (2,3), (2,4), (3,4).

``cwi_matrix`` builds ``M`` in-graph from dynamic sizes, padded to ``[C*, C*]`` with zero
rows for ``i >= C``, so a searchable layer can fold both candidates' CWI into one matmul.
"""

import numpy as np
import tensorflow as tf


def cwi_bins(c, c_star):
    """The ``(s_o, e_o)`` bins, in plain Python (the reference)."""
    return [((o * c) // c_star, -(-((o + 1) * c) // c_star)) for o in range(c_star)]


def cwi_matrix_np(c, c_star):
    """``M`` as a ``[c, c_star]`` numpy array."""
    m = np.zeros((c, c_star), "float32")
    for o, (s, e) in enumerate(cwi_bins(c, c_star)):
        m[s:e, o] = 1.0 / (e - s)
    return m


def cwi_matrix(c, c_star):
    """``M`` padded to ``[c_star, c_star]`` (rows ``>= c`` zero), from int32 tensors.

    ``c`` may be a scalar or a vector of widths: a vector ``[J]`` gives ``[J, c_star, c_star]``.
    """
    c = tf.convert_to_tensor(c)[..., None, None]  # broadcast over (input i, output o)
    o = tf.range(c_star)[None, :]
    s = (o * c) // c_star
    e = ((o + 1) * c + c_star - 1) // c_star
    i = tf.range(c_star)[:, None]
    inside = tf.logical_and(i >= s, i < e)
    return tf.where(inside, 1.0 / tf.cast(e - s, tf.float32), 0.0)
