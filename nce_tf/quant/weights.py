"""Weight quantizers: SAWB (the 2-bit default), DoReFa and a symmetric uniform grid.

All three fake-quantize a float kernel in the forward pass and use a straight-through
estimator (STE) for the rounding, so training updates the float "shadow" weights.

**SAWB** (statistics-aware weight binning; Choi et al., "Bridging the accuracy gap for
2-bit quantized neural networks", 2018).  A zero-free symmetric grid of ``2^b`` levels
``a * (2k + 1 - 2^b) / (2^b - 1)``, ``k = 0..2^b-1`` (for 2 bits: ``{-a, -a/3, a/3, a}``),
with the clip ``a`` set from the weight statistics at every forward pass, without gradient::

    a   = max(c1 * sqrt(mean(w^2)) + c2 * mean(|w|), sqrt(mean(w^2)))
    w_c = clip(w, -a, a);  u = (w_c + a) / (2a)
    w_q = a * (2 * round(u * (2^b - 1)) / (2^b - 1) - 1)      dw_q/dw = 1 on [-a, a], else 0

For 2 bits ``(c1, c2) = (3.212, -2.178)`` as published.  For 3..8 bits the coefficients
are ours, fitted the SAWB way: the MSE-optimal clip of the grid for unit-variance Gaussian,
Laplace, uniform and logistic weights, regressed on ``(sqrt(E w^2), E|w|)`` by least
squares (the same fit gives ``(3.17, -2.13)`` at 2 bits, close to the published pair).

**DoReFa** (Zhou et al., 2016)::

    w_q = 2 * quant_b(tanh(w) / (2 max|tanh(w)|) + 0.5) - 1,  quant_b(u) = round((2^b-1) u) / (2^b-1)

levels in ``[-1, 1]``, zero-free, gradient through everything but the rounding.

**Uniform**: symmetric narrow-range grid with zero, ``s = max|w| / (2^(b-1) - 1)`` per output
channel (or per tensor), ``w_q = s * clip(round(w / s), -(2^(b-1)-1), 2^(b-1)-1)``: ``2^b - 1``
levels (ternary at 2 bits); the scale carries no gradient.

Example:

>>> import numpy as np, nce_tf
>>> q = nce_tf.quant.SAWB(bits=2)
>>> w = np.random.default_rng(0).normal(size=(3, 3, 16, 16)).astype("float32")
>>> len(np.unique(q(w).numpy()))
4
"""

import keras
import numpy as np
import tensorflow as tf

from nce_tf.quant.base import Quantizer, computes_in_float32
from nce_tf.quant.ste import round_ste

# (c1, c2) of a = c1 * sqrt(E w^2) + c2 * E|w|; 2 bits as published, the rest fitted (see above).
SAWB_COEFFICIENTS = {
    2: (3.212, -2.178),
    3: (7.339, -6.669),
    4: (11.878, -11.766),
    5: (16.601, -17.144),
    6: (21.453, -22.71),
    7: (26.405, -28.415),
    8: (31.436, -34.225),
}


def _zero_free_grid(x, a, bits):
    """Quantizes ``x`` (already in [-a, a]) onto the zero-free grid with STE."""
    steps = float(2**bits - 1)
    u = (x + a) / (2.0 * a)
    return a * (2.0 * round_ste(u * steps) / steps - 1.0)


@keras.saving.register_keras_serializable(package="nce_tf")
class SAWB(Quantizer):
    """Statistics-aware weight binning: a zero-free ``2^b``-level grid, clip from statistics.

    Args:
        bits: 2..8.
    """

    def scale(self, w):
        """The clip ``a`` of ``w``, without gradient."""
        w = tf.stop_gradient(tf.convert_to_tensor(w))
        c1, c2 = SAWB_COEFFICIENTS[self.bits]
        rms = tf.sqrt(tf.reduce_mean(tf.square(w)))
        a = c1 * rms + c2 * tf.reduce_mean(tf.abs(w))
        # Never below the RMS: the fitted pair extrapolates to a clip near or under 0 for weights of
        # nearly one magnitude (rms / mean|w| < 1.0887 at 8 bits: a small kernel, e.g. a 6-weight
        # MobileNetV2 expand conv, whose 8-bit grid collapsed to +-1e-8).  The MSE-optimal clip of
        # such weights is near their largest magnitude; for the distributions the pairs were fitted
        # on the formula stays above the RMS at every b (Gaussian: 1.47 sigma at 2 bits, 4.1 at 8).
        # An all-zero kernel would give a = 0 and a division by zero: the 1e-8 floor.
        return tf.maximum(tf.maximum(a, rms), 1e-8)

    def grid_step(self, w):
        """Half the level spacing, ``a / (2^b - 1)``: the levels are its odd multiples."""
        return np.float32(float(self.scale(w)) / (2**self.bits - 1)), "zero_free"

    @computes_in_float32
    def __call__(self, x, weights=None, training=None):
        x = tf.convert_to_tensor(x)
        a = self.scale(x)
        return _zero_free_grid(tf.clip_by_value(x, -a, a), a, self.bits)


@keras.saving.register_keras_serializable(package="nce_tf")
class DoReFa(Quantizer):
    """DoReFa-Net weight quantizer: tanh, normalise to [0, 1], round, map to [-1, 1].

    Args:
        bits: 2..8.
    """

    def grid_step(self, w):
        """Half the level spacing of ``[-1, 1]``'s ``2^b`` levels, ``1 / (2^b - 1)``."""
        del w
        return np.float32(1.0 / (2**self.bits - 1)), "zero_free"

    @computes_in_float32
    def __call__(self, x, weights=None, training=None):
        t = tf.tanh(tf.convert_to_tensor(x))
        u = t / (2.0 * tf.maximum(tf.reduce_max(tf.abs(t)), 1e-8)) + 0.5
        steps = float(2**self.bits - 1)
        return 2.0 * round_ste(u * steps) / steps - 1.0


@keras.saving.register_keras_serializable(package="nce_tf")
class Uniform(Quantizer):
    """Symmetric narrow-range uniform grid with a max-abs scale.

    Args:
        bits: 2..8.
        per_channel: one scale per output channel (the last axis of a Keras kernel; the layers
            give it a depthwise kernel's ``C x M`` filters on that axis:
            :func:`nce_tf.quant.base.channels_last`) instead of one per tensor.
    """

    def __init__(self, bits=2, per_channel=True):
        super().__init__(bits)
        self.per_channel = bool(per_channel)

    @property
    def num_levels(self):
        return 2**self.bits - 1

    def scale(self, w):
        """The step ``s`` (per output channel or scalar), without gradient."""
        w = tf.stop_gradient(tf.convert_to_tensor(w))
        axes = list(range(len(w.shape) - 1)) if self.per_channel else None
        m = tf.reduce_max(tf.abs(w), axis=axes)
        return tf.maximum(m, 1e-8) / float(2 ** (self.bits - 1) - 1)

    def grid_step(self, w):
        """The step ``s`` itself (per output channel or scalar): the levels are its multiples."""
        return np.asarray(self.scale(w).numpy(), "float32"), "narrow"

    @computes_in_float32
    def __call__(self, x, weights=None, training=None):
        x = tf.convert_to_tensor(x)
        s = self.scale(x)
        top = float(2 ** (self.bits - 1) - 1)
        return s * tf.clip_by_value(round_ste(x / s), -top, top)

    def get_config(self):
        return {**super().get_config(), "per_channel": self.per_channel}
