"""The quantizer protocol shared by every nce-tf quantizer.

A quantizer is a small serializable object in the style of tfmot's ``Quantizer``:

- ``build(shape, layer)`` creates whatever state the quantizer needs (PACT's clip value)
  as weights of the layer that owns it, and returns them in a dict;
- ``__call__(x, weights, training)`` returns the fake-quantized tensor (float values that
  lie on the quantization grid) with a straight-through or exact gradient;
- ``get_config()`` / ``from_config()`` make it round-trip through ``.keras`` files.

Under a mixed-precision policy (``keras.mixed_precision``) a quantizer computes in float32 and
returns the dtype it was given (:func:`computes_in_float32`): a 2-bit grid needs its rounding,
its clip statistics and TF's fake-quant ops in float32, and the grid's levels are then only
rounded to the compute dtype (4 levels stay 4 distinct values in float16 and bfloat16).

Quantizers are resolved from strings (``"sawb"``, ``"pact"``) by :func:`nce_tf.quant.get`,
so a flag value selects one.  A bit width of 32 means "no quantization": the registry
returns ``None`` for it and layers then use their float weights or a plain ReLU.
"""

import abc
import functools

import keras
import tensorflow as tf

from nce_tf.choices import ALLOWED_BITS, FULL_PRECISION, QUANT_BITS, check_bits  # noqa: F401


def computes_in_float32(call):
    """Decorates a quantizer's ``__call__``: it computes in float32 (or the wider dtype it is given).

    ``x`` is cast up to at least float32 before ``call`` and its result back to ``x``'s dtype, so
    a layer under ``mixed_float16`` / ``mixed_bfloat16`` gets its compute dtype back while the
    grid is computed as in float32: the rounding ``round(u (2^b - 1))`` and the statistics of a
    clip (SAWB's ``sqrt(mean(w^2))``) lose bins in a 16-bit float (bfloat16 has 8 bits of
    mantissa), and ``tf.quantization.fake_quant_with_min_max_vars`` takes float32 only.  A
    float64 input stays float64.  The gradient passes both casts.

    Example:

    >>> import numpy as np, tensorflow as tf, nce_tf
    >>> w = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 8, 8)), tf.bfloat16)
    >>> q = nce_tf.quant.SAWB(bits=2)(w)
    >>> q.dtype.name, len(np.unique(q.numpy().astype("float32")))
    ('bfloat16', 4)
    """

    @functools.wraps(call)
    def in_float32(self, x, weights=None, training=None):
        x = tf.convert_to_tensor(x)
        wide = x.dtype if x.dtype.size >= 4 else tf.float32
        return tf.cast(call(self, tf.cast(x, wide), weights, training=training), x.dtype)

    return in_float32


def channels_last(kernel, channel_axes=1):
    """``kernel`` with its output channels on one last axis, where a per-channel quantizer puts its
    scales: a conv's ``[kh, kw, I, O]`` and a dense ``[I, O]`` as they are (``channel_axes=1``); a
    depthwise ``[kh, kw, C, M]`` (``channel_axes=2``) as ``[kh, kw, C * M]``, one filter per
    output channel, the axis TFLite's per-channel depthwise quantization scales (a per-channel
    scale over its last axis alone would be one scale for the tensor at ``M = 1``).

    >>> import numpy as np, nce_tf
    >>> tuple(nce_tf.quant.base.channels_last(np.zeros((3, 3, 8, 1), "float32"), channel_axes=2).shape)
    (3, 3, 8)
    """
    kernel = tf.convert_to_tensor(kernel)
    if channel_axes == 1:
        return kernel
    lead = kernel.shape.rank - channel_axes
    return tf.reshape(kernel, tf.concat([tf.shape(kernel)[:lead], [-1]], 0))


def quantize_channels_last(quantizer, kernel, weights=None, channel_axes=1):
    """``quantizer`` applied to ``kernel`` viewed :func:`channels_last`, in ``kernel``'s shape."""
    kernel = tf.convert_to_tensor(kernel)
    return tf.reshape(quantizer(channels_last(kernel, channel_axes), weights), tf.shape(kernel))


class Quantizer(abc.ABC):
    """Base class: a fake quantizer with optional state owned by a layer.

    Args:
        bits: number of bits of the integer grid, 2..8.
    """

    def __init__(self, bits=2):
        self.bits = check_bits(bits, allow_full_precision=False)

    @property
    def num_levels(self):
        """How many distinct values the quantized tensor can take at most."""
        return 2**self.bits

    def grid_step(self, w):
        """``(step, kind)`` of the integer grid the quantized ``w`` lies on, ``w_q = ints * step``
        (:mod:`nce_tf.export.grid`): ``kind`` ``"zero_free"`` (``ints`` odd in ``[-(2^b - 1), 2^b - 1]``)
        or ``"narrow"`` (``ints`` in ``[-(2^(b-1) - 1), 2^(b-1) - 1]``), ``step`` a numpy float32
        scalar or per-channel array; ``None`` for a quantizer without one.  The export asks the
        quantizer, so a new quantizer brings its own grid."""
        del w
        return None

    def build(self, shape, layer):
        """Creates the quantizer's variables on ``layer``; returns them by name."""
        del shape, layer
        return {}

    @abc.abstractmethod
    def __call__(self, x, weights=None, training=None):
        """Returns ``x`` fake-quantized (float values on the grid), in ``x``'s dtype.

        Implementations decorated with :func:`computes_in_float32` (every nce-tf quantizer) work
        under mixed-precision policies as well."""

    def get_config(self):
        return {"bits": self.bits}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def serialize(quantizer):
    """Serializes a quantizer (or ``None``) for a layer's ``get_config``."""
    return None if quantizer is None else keras.saving.serialize_keras_object(quantizer)
