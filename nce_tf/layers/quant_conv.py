"""``QuantConv2D``: a Keras ``Conv2D`` whose kernel is fake-quantized in every forward pass.

The float kernel stays the trainable variable; the convolution sees
``kernel_quantizer(kernel)``, so gradients reach the float kernel through the
quantizer's straight-through estimator.  With ``kernel_quantizer=None`` the layer is an
ordinary ``Conv2D`` (the paper keeps the first conv and the shortcut convs in float).

Example:

>>> import numpy as np, nce_tf
>>> conv = nce_tf.layers.QuantConv2D(8, 3, padding="same", use_bias=False,
...                                  kernel_quantizer="sawb")
>>> tuple(conv(np.ones((1, 8, 8, 3), "float32")).shape)
(1, 8, 8, 8)
>>> len(np.unique(conv.quantized_kernel().numpy()))   # a 2-bit zero-free grid
4
"""

import keras

from nce_tf.layers.kernel_quantized import KernelQuantized


@keras.saving.register_keras_serializable(package="nce_tf")
class QuantConv2D(KernelQuantized, keras.layers.Conv2D):
    """2D convolution with a fake-quantized kernel.

    Args:
        *args, **kwargs: as for ``keras.layers.Conv2D``.
        kernel_quantizer: a weight quantizer, its name (2 bits), its serialized
            config, or ``None`` for a float kernel.
    """

    def convolution_op(self, inputs, kernel):
        # Conv2D.call passes self.kernel here; this is the one public hook to swap it.
        return super().convolution_op(inputs, self.quantize_kernel(kernel))
