"""``QuantDense``: a Keras ``Dense`` whose kernel is fake-quantized in every forward pass.

Same contract as :class:`nce_tf.layers.QuantConv2D`.  The paper keeps the classifier in
float; quantizing it is an option (``--quantize_last``).

Example:

>>> import numpy as np, nce_tf
>>> fc = nce_tf.layers.QuantDense(10, kernel_quantizer="sawb")
>>> tuple(fc(np.ones((2, 64), "float32")).shape)
(2, 10)
"""

import keras

from nce_tf.layers.kernel_quantized import KernelQuantized


@keras.saving.register_keras_serializable(package="nce_tf")
class QuantDense(KernelQuantized, keras.layers.Dense):
    """Densely connected layer with a fake-quantized kernel.

    Args:
        *args, **kwargs: as for ``keras.layers.Dense``.
        kernel_quantizer: a weight quantizer, its name (2 bits), its serialized
            config, or ``None`` for a float kernel.
    """

    def call(self, inputs, training=None):
        # Dense.call has no kernel hook, so the (plain, un-LoRA'd) forward is restated here.
        x = keras.ops.matmul(inputs, self.quantized_kernel())
        if self.use_bias:
            x = keras.ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x
