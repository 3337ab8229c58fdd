"""``QuantDense``: a Keras ``Dense`` whose kernel is fake-quantized in every forward pass.

Same contract as :class:`nce_tf.layers.QuantConv2D`.  The paper keeps the classifier in
float; quantizing it is an option (``--quantize_last``).

Example:

>>> import numpy as np, nce_tf
>>> fc = nce_tf.layers.QuantDense(10, kernel_quantizer="sawb")
>>> fc(np.ones((2, 64), "float32")).shape
(2, 10)
"""

import keras

from nce_tf import quant


@keras.saving.register_keras_serializable(package="nce_tf")
class QuantDense(keras.layers.Dense):
    """Densely connected layer with a fake-quantized kernel.

    Args:
        *args, **kwargs: as for ``keras.layers.Dense``.
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
        """The kernel as the matmul sees it (float values on the grid)."""
        if self.kernel_quantizer is None:
            return self.kernel
        return self.kernel_quantizer(self.kernel, self._quantizer_weights)

    def call(self, inputs, training=None):
        x = keras.ops.matmul(inputs, self.quantized_kernel())
        if self.use_bias:
            x = keras.ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def get_config(self):
        return {**super().get_config(), "kernel_quantizer": quant.serialize(self.kernel_quantizer)}
