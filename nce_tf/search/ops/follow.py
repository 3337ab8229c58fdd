"""Weightless ops whose output carries their input's channels: activations, pooling, identity.

``act`` is a ReLU site, the policy's (PACT-quantized) activation; ``fn`` any other Keras
activation, kept as it is.  Pooling keeps the width and changes the spatial size; the global
poolings leave one value per channel.
"""

import keras
import tensorflow as tf

from nce_tf.search.ops.base import Op, register


class _Selects(Op):
    """An op whose output values are some of its input's: quantized levels stay quantized levels."""

    def on_grid(self, node, srcs):
        return srcs[0]


@register
class Act(Op):
    """A ReLU site: the policy's activation (PACT at ``a_bits``) in the super-net and derived net."""

    kind, transparent, layer_group = "act", True, "act"

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


@register
class Fn(Op):
    """Any other activation (``node.fn``, a Keras activation name), unquantized."""

    kind, transparent = "fn", True

    def call(self, node, layer, inputs, run):
        return keras.activations.get(node.fn)(inputs[0])


@register
class Identity(_Selects):
    """Dropout and the like: the identity in the search."""

    kind, transparent = "identity", True

    def call(self, node, layer, inputs, run):
        return inputs[0]


@register
class AvgPool(Op):
    kind = "avgpool"

    def call(self, node, layer, inputs, run):
        return tf.nn.avg_pool2d(inputs[0], node.pool or 2, node.stride, node.padding or "VALID")


@register
class MaxPool(_Selects):
    kind = "maxpool"

    def call(self, node, layer, inputs, run):
        return tf.nn.max_pool2d(inputs[0], node.pool or node.kernel, node.stride, node.padding or "SAME")


@register
class GlobalAvgPool(Op):
    kind, flat_output = "gap", True

    def call(self, node, layer, inputs, run):
        return tf.reduce_mean(inputs[0], axis=[1, 2])


@register
class GlobalMaxPool(_Selects):
    kind, flat_output = "gmaxpool", True

    def call(self, node, layer, inputs, run):
        return tf.reduce_max(inputs[0], axis=[1, 2])
