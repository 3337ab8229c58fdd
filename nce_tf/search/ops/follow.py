"""Weightless ops whose output carries their input's channels: activations, pooling, identity.

``act`` is a ReLU site, the policy's (PACT-quantized) activation; ``fn`` any other Keras
activation, kept as it is.  Pooling keeps the width and changes the spatial size; the global
poolings leave one value per channel.
"""

import keras
import tensorflow as tf

from nce_tf import quant
from nce_tf.layers import QuantActivation
from nce_tf.search.ops import keras_read
from nce_tf.search.ops.base import Op, register
from nce_tf.search.ops.keras_args import RELU_ACTIVATIONS, activation_name


class _Selects(Op):
    """An op whose output values are some of its input's: quantized levels stay quantized levels."""

    def on_grid(self, node, srcs):
        return srcs[0]

    def keras_bits(self, layer, count):
        return count.input_bits(layer)


@register
class Act(Op):
    """A ReLU site: the policy's activation (PACT at ``a_bits``) in the super-net and derived net."""

    kind, transparent, layer_group = "act", True, "act"
    keras_types = (keras.layers.ReLU, QuantActivation)

    def on_grid(self, node, srcs):
        return True  # PACT's levels (at a_bits < 32; a float ReLU is counted as float: nce_tf.search.units)

    def make_layer(self, node, net, src_max, src_spatial):
        return net.policy.activation(node.name)

    def call(self, node, layer, inputs, run):
        return layer(inputs[0], training=run.training)

    def derive(self, node, ref, x, ctx):
        return ctx.policy.activation(ref.name)(x)

    def inherit(self, node, sn, ctx):
        target = ctx.model.get_layer(node.name)
        if getattr(sn, "alpha", None) is not None and getattr(target, "alpha", None) is not None:
            target.alpha.assign(sn.alpha)

    def from_keras(self, ref, b):
        if getattr(ref.layer, "negative_slope", 0) or getattr(ref.layer, "threshold", 0):
            keras_read.fail(ref, "a leaky or thresholded ReLU cannot become PACT")
        super().from_keras(ref, b)

    def keras_bits(self, layer, count):
        q = getattr(layer, "quantizer", None)  # PACT's levels; a float ReLU is counted as float
        return q.bits if q is not None and q.bits < quant.FULL_PRECISION else count.float_bits

    def float_kind(self, layer):
        return "act" if getattr(layer, "alpha", None) is not None else "pass"  # a PACT clip to copy


@register
class Fn(Op):
    """Any other activation (``node.fn``, a Keras activation name), unquantized."""

    kind, transparent = "fn", True
    keras_types = (keras.layers.Activation,)

    def call(self, node, layer, inputs, run):
        return keras.activations.get(node.fn)(inputs[0])

    def from_keras(self, ref, b):
        """An ``Activation`` layer: a ReLU site (``act``) for ReLU and ReLU6, else kept as it is."""
        name = activation_name(ref.layer.activation)
        fn = {} if name in RELU_ACTIVATIONS else {"fn": name}
        b.node_of[ref.name] = b.add(name=ref.name, op="fn" if fn else "act", src=b.src(ref), layer=ref.name, **fn)


@register
class Identity(_Selects):
    """Dropout and the like: the identity in the search."""

    kind, transparent = "identity", True
    keras_types = (keras.layers.Dropout, keras.layers.SpatialDropout2D, keras.layers.GaussianNoise,
                   keras.layers.GaussianDropout, keras.layers.ActivityRegularization)

    def call(self, node, layer, inputs, run):
        return inputs[0]


def _read_pool(op, ref, b):
    layer = ref.layer
    p = keras_read.square(ref, layer.pool_size, "pool_size")
    s = keras_read.square(ref, layer.strides, "strides")
    b.node_of[ref.name] = b.add(name=ref.name, op=op.kind, src=b.src(ref), pool=p, kernel=p, stride=s,
                                padding=layer.padding.upper(), area=keras_read.area(ref.shape), layer=ref.name)


def _read_global_pool(op, ref, b):
    if getattr(ref.layer, "keepdims", False):
        keras_read.fail(ref, "keepdims=True is not supported")
    Op.from_keras(op, ref, b)


@register
class AvgPool(Op):
    kind = "avgpool"
    keras_types = (keras.layers.AveragePooling2D,)
    from_keras = _read_pool

    def call(self, node, layer, inputs, run):
        return tf.nn.avg_pool2d(inputs[0], node.pool or 2, node.stride, node.padding or "VALID")


@register
class MaxPool(_Selects):
    kind = "maxpool"
    keras_types = (keras.layers.MaxPooling2D,)
    from_keras = _read_pool

    def call(self, node, layer, inputs, run):
        return tf.nn.max_pool2d(inputs[0], node.pool or node.kernel, node.stride, node.padding or "SAME")


@register
class GlobalAvgPool(Op):
    kind, flat_output = "gap", True
    keras_types = (keras.layers.GlobalAveragePooling2D,)
    from_keras = _read_global_pool

    def call(self, node, layer, inputs, run):
        return tf.reduce_mean(inputs[0], axis=[1, 2])


@register
class GlobalMaxPool(_Selects):
    kind, flat_output = "gmaxpool", True
    keras_types = (keras.layers.GlobalMaxPooling2D,)
    from_keras = _read_global_pool

    def call(self, node, layer, inputs, run):
        return tf.reduce_max(inputs[0], axis=[1, 2])
