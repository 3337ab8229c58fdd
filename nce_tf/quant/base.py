"""The quantizer protocol shared by every nce-tf quantizer.

A quantizer is a small serializable object in the style of tfmot's ``Quantizer``:

- ``build(shape, layer)`` creates whatever state the quantizer needs (PACT's clip value)
  as weights of the layer that owns it, and returns them in a dict;
- ``__call__(x, weights, training)`` returns the fake-quantized tensor (float values that
  lie on the quantization grid) with a straight-through or exact gradient;
- ``get_config()`` / ``from_config()`` make it round-trip through ``.keras`` files.

Quantizers are resolved from strings (``"sawb"``, ``"pact"``) by :func:`nce_tf.quant.get`,
so a flag value selects one.  A bit width of 32 means "no quantization": the registry
returns ``None`` for it and layers then use their float weights or a plain ReLU.
"""

import abc

import keras

from nce_tf.choices import ALLOWED_BITS, FULL_PRECISION, QUANT_BITS, check_bits  # noqa: F401


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

    def build(self, shape, layer):
        """Creates the quantizer's variables on ``layer``; returns them by name."""
        del shape, layer
        return {}

    @abc.abstractmethod
    def __call__(self, x, weights=None, training=None):
        """Returns ``x`` fake-quantized (float values on the grid)."""

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
