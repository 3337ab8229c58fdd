"""Quantization-aware Keras layers of nce-tf (all registered serializable, package ``nce_tf``)."""

# A training's model.keras is compiled with nce-tf's SGD: importing the layers registers it too, so
# the file loads (compile included) wherever the layers do.
import nce_tf.optimizers  # noqa: F401
from nce_tf.layers.quant_activation import QuantActivation
from nce_tf.layers.quant_conv import QuantConv2D
from nce_tf.layers.quant_dense import QuantDense
from nce_tf.layers.quant_depthwise import QuantDepthwiseConv2D

__all__ = ["QuantActivation", "QuantConv2D", "QuantDense", "QuantDepthwiseConv2D"]
