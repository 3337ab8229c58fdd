"""``QuantDepthwiseConv2D``: a Keras ``DepthwiseConv2D`` whose kernel is fake-quantized.

As :class:`~nce_tf.layers.QuantConv2D`: the float kernel is the trainable variable, the
convolution sees ``kernel_quantizer(kernel)`` and gradients pass the quantizer's
straight-through estimator.  Adapted models (:func:`nce_tf.adapt`) use it for the depthwise
convs of MobileNet-style blocks.

Example:

>>> import numpy as np, nce_tf
>>> dw = nce_tf.layers.QuantDepthwiseConv2D(3, padding="same", use_bias=False, kernel_quantizer="sawb")
>>> tuple(dw(np.ones((1, 8, 8, 4), "float32")).shape)
(1, 8, 8, 4)
>>> len(np.unique(dw.quantized_kernel().numpy())) <= 4
True
"""

import keras

from nce_tf.layers.kernel_quantized import KernelQuantized


@keras.saving.register_keras_serializable(package="nce_tf")
class QuantDepthwiseConv2D(KernelQuantized, keras.layers.DepthwiseConv2D):
    """Depthwise 2D convolution with a fake-quantized kernel (channels last).

    Args:
        *args, **kwargs: as for ``keras.layers.DepthwiseConv2D``.
        kernel_quantizer: a weight quantizer, its name (2 bits), its serialized config, or
            ``None`` for a float kernel.  A per-channel quantizer scales each of the ``C x M``
            filters on its own (the kernel ``[kh, kw, C, M]`` seen as ``[kh, kw, C * M]``).
    """

    channel_axes = 2

    def call(self, inputs):
        # DepthwiseConv2D has no convolution_op hook: the same computation on the quantized kernel.
        outputs = keras.ops.depthwise_conv(inputs, self.quantized_kernel(), strides=self.strides,
                                           padding=self.padding, dilation_rate=self.dilation_rate,
                                           data_format=self.data_format)
        if self.use_bias:
            outputs = keras.ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs
