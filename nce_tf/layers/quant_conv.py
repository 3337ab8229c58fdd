"""``QuantConv2D``: a Keras ``Conv2D`` whose kernel is fake-quantized in every forward pass.

The float kernel stays the trainable variable; the convolution sees
``kernel_quantizer(kernel)``, so gradients reach the float kernel through the
quantizer's straight-through estimator.  With ``kernel_quantizer=None`` the layer is an
ordinary ``Conv2D`` (the paper keeps the first conv and the shortcut convs in float).

Example:

>>> import numpy as np, nce_tf
>>> conv = nce_tf.layers.QuantConv2D(8, 3, padding="same", use_bias=False,
...                                  kernel_quantizer="sawb")
>>> conv(np.ones((1, 8, 8, 3), "float32")).shape
(1, 8, 8, 8)
>>> len(np.unique(conv.quantized_kernel().numpy()))   # a 2-bit zero-free grid
4
"""

import keras

from nce_tf import quant


@keras.saving.register_keras_serializable(package="nce_tf")
class QuantConv2D(keras.layers.Conv2D):
    """2D convolution with a fake-quantized kernel.

    Args:
        *args, **kwargs: as for ``keras.layers.Conv2D``.
        kernel_quantizer: a weight quantizer, its name (2 bits), its serialized
            config, or ``None`` for a float kernel.
    """

    def __init__(self, *args, kernel_quantizer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.kernel_quantizer = quant.get(kernel_quantizer)

    def build(self, input_shape):
        super().build(input_shape)
        self._quantizer_weights = (
            self.kernel_quantizer.build(self.kernel.shape, self) if self.kernel_quantizer else {}
        )

    def quantized_kernel(self):
        """The kernel as the convolution sees it (float values on the grid)."""
        if self.kernel_quantizer is None:
            return self.kernel
        return self.kernel_quantizer(self.kernel, self._quantizer_weights)

    def convolution_op(self, inputs, kernel):
        # Conv2D.call passes self.kernel here; this is the one public hook to swap it.
        if self.kernel_quantizer is not None:
            kernel = self.kernel_quantizer(kernel, self._quantizer_weights)
        return super().convolution_op(inputs, kernel)

    def get_config(self):
        return {**super().get_config(), "kernel_quantizer": quant.serialize(self.kernel_quantizer)}
