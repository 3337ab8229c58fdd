"""Quantization-aware Keras layers of nce-tf (all registered serializable, package ``nce_tf``)."""

from nce_tf.layers.quant_activation import QuantActivation
from nce_tf.layers.quant_conv import QuantConv2D
from nce_tf.layers.quant_dense import QuantDense

__all__ = ["QuantActivation", "QuantConv2D", "QuantDense"]
