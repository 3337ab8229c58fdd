"""Quantization-aware Keras layers of nce-tf (all registered serializable, package ``nce_tf``)."""

from nce_tf.layers.quant_activation import QuantActivation
from nce_tf.layers.quant_conv import QuantConv2D
from nce_tf.layers.quant_dense import QuantDense
from nce_tf.layers.quant_depthwise import QuantDepthwiseConv2D

__all__ = ["QuantActivation", "QuantConv2D", "QuantDense", "QuantDepthwiseConv2D"]
