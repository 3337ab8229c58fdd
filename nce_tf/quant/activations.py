"""PACT: parameterized clipping activation (Choi et al., 2018), the activation quantizer.

PACT replaces ReLU with a clip to a learnable range ``[0, alpha]`` (one ``alpha`` per
activation site) followed by a uniform ``b``-bit quantization of that range::

    y   = clip(x, 0, alpha)
    y_q = round(y * (2^b - 1) / alpha) * alpha / (2^b - 1)     levels {0, alpha/3, 2alpha/3, alpha} at 2 bits

Gradients (exact PACT, with a straight-through rounding):

    dy_q/dx     = 1 if 0 <= x <= alpha else 0
    dy_q/dalpha = 1 if x > alpha else 0

``tf.quantization.fake_quant_with_min_max_vars(x, min=0, max=alpha)`` implements exactly
this forward and these gradients (with min = 0 its range "nudging" is a no-op), so it is
used directly.  ``alpha`` carries an L2 penalty (``alpha_l2 * alpha^2``, 1e-3 in the paper)
that Keras adds to the model's losses, and is kept above a small floor in the forward pass
so a run-away update can never produce an empty range.

Example:

>>> import keras, numpy as np, nce_tf
>>> act = nce_tf.layers.QuantActivation(nce_tf.quant.PACT(bits=2, alpha_init=3.0))
>>> act(np.array([[-1.0, 0.4, 1.2, 2.6, 9.0]], "float32")).numpy().tolist()
[[0.0, 0.0, 1.0, 3.0, 3.0]]
"""

import keras
import tensorflow as tf

from nce_tf.errors import UsageError
from nce_tf.quant.base import Quantizer, computes_in_float32

_ALPHA_FLOOR = 1e-3


@keras.saving.register_keras_serializable(package="nce_tf")
class PACT(Quantizer):
    """PACT activation quantizer with a learnable clip ``alpha``.

    Args:
        bits: 2..8.
        alpha_init: initial clip value (> 0).
        alpha_l2: ``lambda`` of PACT's penalty ``lambda * alpha^2`` (Choi et al., 2018), >= 0; its
            gradient is ``2 lambda alpha``, twice that of a PyTorch ``weight_decay=lambda`` on alpha
            (the kernels' decay here follows PyTorch's convention: ``L2(weight_decay / 2)``).  The
            NCE paper's "regularization coefficient of PACT is 0.001" does not say which is meant.
    """

    def __init__(self, bits=2, alpha_init=4.0, alpha_l2=1e-3):
        super().__init__(bits)
        if not alpha_init > 0:
            raise UsageError(f"PACT alpha_init must be > 0. Received: alpha_init={alpha_init!r}")
        if not alpha_l2 >= 0:
            raise UsageError(f"PACT alpha_l2 must be >= 0. Received: alpha_l2={alpha_l2!r}")
        self.alpha_init = float(alpha_init)
        self.alpha_l2 = float(alpha_l2)

    def build(self, shape, layer):
        alpha = layer.add_weight(
            name="pact_alpha",
            shape=(),
            initializer=keras.initializers.Constant(self.alpha_init),
            regularizer=keras.regularizers.L2(self.alpha_l2) if self.alpha_l2 else None,
            trainable=True,
            # Read in float32 under a mixed policy too: the grid's step is alpha / (2^b - 1), and a
            # bfloat16 alpha would move every level by up to 2^-9 of alpha (Keras's BN keeps its
            # parameters in float32 the same way).
            autocast=False,
        )
        return {"alpha": alpha}

    @computes_in_float32
    def __call__(self, x, weights=None, training=None):
        # TF's fake-quant op takes float32 only (a float64 input is computed in float32 too).
        x32 = tf.cast(x, tf.float32)
        alpha = tf.maximum(tf.cast(weights["alpha"], tf.float32), _ALPHA_FLOOR)
        return tf.quantization.fake_quant_with_min_max_vars(
            x32, min=tf.zeros_like(alpha), max=alpha, num_bits=self.bits, narrow_range=False
        )

    def get_config(self):
        return {**super().get_config(), "alpha_init": self.alpha_init, "alpha_l2": self.alpha_l2}
