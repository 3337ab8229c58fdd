"""``QuantActivation``: the layer that applies an activation quantizer (PACT) in place of ReLU.

It owns the quantizer's state (PACT's ``alpha``), so every activation site of a network
learns its own clip.  See :mod:`nce_tf.quant.activations` for the formulas.

Example:

>>> import numpy as np, nce_tf
>>> act = nce_tf.layers.QuantActivation("pact")      # 2-bit PACT, default alpha_init
>>> y = act(np.linspace(-2, 6, 50, dtype="float32")[None])
>>> len(np.unique(y.numpy()))
4
"""

import keras

from nce_tf import quant
from nce_tf.errors import UsageError


@keras.saving.register_keras_serializable(package="nce_tf")
class QuantActivation(keras.layers.Layer):
    """Applies an activation quantizer; holds its trainable state.

    Args:
        quantizer: an activation quantizer (``nce_tf.quant.PACT(...)``), its name,
            or its serialized config.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``).
    """

    def __init__(self, quantizer="pact", **kwargs):
        super().__init__(**kwargs)
        # Elementwise, as keras.layers.ReLU / Activation: a mask passes through unchanged.
        self.supports_masking = True
        self.quantizer = quant.get(quantizer)
        if self.quantizer is None:
            raise UsageError(
                "QuantActivation needs a quantizer; use keras.layers.ReLU for float activations. "
                f"Received: quantizer={quantizer!r}"
            )

    def build(self, input_shape):
        self._quantizer_weights = self.quantizer.build(input_shape, self)

    def call(self, inputs, training=None):
        return self.quantizer(inputs, self._quantizer_weights, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    @property
    def alpha(self):
        """PACT's clip variable (``None`` for a stateless quantizer)."""
        return self._quantizer_weights.get("alpha")

    def get_config(self):
        return {**super().get_config(), "quantizer": quant.serialize(self.quantizer)}
