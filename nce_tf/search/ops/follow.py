"""Weightless ops whose output carries their input's channels: activations, pooling, identity,
zero padding.

``act`` is a ReLU site, the policy's (PACT-quantized) activation; ``fn`` any other Keras
activation, kept as it is.  Pooling keeps the width and changes the spatial size; the global
poolings leave one value per channel.
"""

import keras
import tensorflow as tf

from nce_tf import quant
from nce_tf.layers import QuantActivation
from nce_tf.search.ops import keras_args, keras_read
from nce_tf.search.ops.base import Op, keras_op, register
from nce_tf.search.ops.keras_args import RELU_ACTIVATIONS, activation_name


class _Selects(Op):
    """An op whose output values are some of its input's: quantized levels stay quantized levels."""

    def on_grid(self, node, srcs):
        return srcs[0]

    def keras_bits(self, layer, count):
        return count.input_bits(layer)

    def export_step(self, layer, plan):
        """The same values on the same int8 scale: no requantization."""
        def step(values):
            values[layer.output] = self.select(layer, values[layer.input])
        return step

    def select(self, layer, x):
        return x


@register
class Act(Op):
    """A ReLU site: the policy's activation (PACT at ``a_bits``) in the super-net and derived net."""

    kind, transparent, layer_group = "act", True, "act"
    keras_types = (keras.layers.ReLU, QuantActivation)

    def on_grid(self, node, srcs):
        return True  # PACT's levels (at a_bits < 32; a float ReLU is counted as float: nce_tf.search.units)

    def make_layer(self, node, net, src_max, src_spatial):
        return net.policy.activation(node.name, **node.args)

    def call(self, node, layer, inputs, run):
        return layer(inputs[0], training=run.training)

    def derive(self, node, ref, x, ctx):
        return ctx.policy.activation(ref.name, **node.args)(x)

    def inherit(self, node, sn, ctx):
        target = ctx.model.get_layer(node.name)
        if getattr(sn, "alpha", None) is not None and getattr(target, "alpha", None) is not None:
            target.alpha.assign(sn.alpha)

    def from_keras(self, ref, b):
        if getattr(ref.layer, "negative_slope", 0) or getattr(ref.layer, "threshold", 0):
            keras_read.fail(ref, "a leaky or thresholded ReLU cannot become PACT")
        b.node_of[ref.name] = b.add(name=ref.name, op=self.kind, src=b.src(ref), layer=ref.name,
                                    args=keras_args.relu_args(layer=ref.layer))

    def keras_bits(self, layer, count):
        q = getattr(layer, "quantizer", None)  # PACT's levels; a float ReLU is counted as float
        return q.bits if q is not None and q.bits < quant.FULL_PRECISION else count.float_bits

    def float_kind(self, layer):
        return "act" if getattr(layer, "alpha", None) is not None else "pass"  # a PACT clip to copy

    def export_step(self, layer, plan):
        """PACT on its levels (:meth:`~nce_tf.export.tflite_graph.Plan.pact`: in the int8 graph an
        8-bit fake-quant at one level per step, the clip at ``alpha``, the levels restated on a finer
        step for the layers reading them).  A float ReLU is requantized the ordinary way.  Either
        way the conv before it is requantized straight to this step: ``plan.check_reach`` refuses an
        input calibrated too far beyond it (the int8 file would wrap)."""
        if getattr(layer, "negative_slope", 0) or getattr(layer, "threshold", 0):
            plan.refuse(layer, f"negative_slope={layer.negative_slope}, threshold={layer.threshold}",
                        "a plain ReLU (negative_slope=0, threshold=0; max_value any)")
        if getattr(layer, "alpha", None) is None:
            if plan.int8:  # the float graph has no ranges
                plan.check_reach(layer, plan.step(layer))
            def relu(values):
                values[layer.output] = plan.requant(tf.nn.relu(values[layer.input]), layer)
            return relu
        alpha, bits = max(float(layer.alpha.numpy()), 1e-3), layer.quantizer.bits  # the PACT forward's floor
        plan.check_reach(layer, alpha / (2**bits - 1))

        def pact(values):
            values[layer.output] = plan.pact(values[layer.input], alpha, bits)
        return pact


# The float activations the int8 export writes (Keras names: ``swish`` is ``silu``, ``hard_swish``
# ``hard_silu``); the converter lowers each to int8 TFLite ops (LOGISTIC, HARD_SWISH, MUL, ...).
FLOAT_ACTIVATIONS = ("sigmoid", "hard_sigmoid", "silu", "hard_silu", "tanh")


@register
class Fn(Op):
    """Any other activation (``node.fn``, a Keras activation name), kept float: sigmoid, swish and
    their hard versions in MobileNetV3 and EfficientNet.  A quantized grid would be a choice of
    its own (PACT is a clipped ReLU), so these are left as the network defines them."""

    kind, transparent = "fn", True
    keras_types = (keras.layers.Activation,)

    def call(self, node, layer, inputs, run):
        return keras.activations.get(node.fn)(inputs[0])

    def export_step(self, layer, plan):
        """The activation in float, its output requantized to its calibrated int8 range."""
        name = activation_name(layer.activation)
        if name not in FLOAT_ACTIVATIONS:
            plan.refuse(layer)
        fn = keras.activations.get(name)

        def step(values):
            values[layer.output] = plan.requant(fn(values[layer.input]), layer)
        return step

    def from_keras(self, ref, b):
        """An ``Activation`` layer: a ReLU site (``act``) for ReLU and ReLU6, else kept as it is."""
        name = activation_name(ref.layer.activation)
        fn = {"args": keras_args.relu_args(name)} if name in RELU_ACTIVATIONS else {"fn": name}
        b.node_of[ref.name] = b.add(name=ref.name, op="act" if name in RELU_ACTIVATIONS else "fn", src=b.src(ref),
                                    layer=ref.name, **fn)


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
    """A flat global pooling; an average one with ``keepdims=True`` is a 1 x 1 map (``gap_keep``:
    squeeze-and-excitation's and MobileNetV3's head)."""
    if getattr(ref.layer, "keepdims", False):
        if op.kind != "gap":
            keras_read.fail(ref, "keepdims=True is supported for global average pooling only")
        b.node_of[ref.name] = b.add(name=ref.name, op="gap_keep", src=b.src(ref), area=1, layer=ref.name)
        return
    Op.from_keras(op, ref, b)


@register
class AvgPool(Op):
    kind = "avgpool"
    keras_types = (keras.layers.AveragePooling2D,)
    from_keras = _read_pool

    def call(self, node, layer, inputs, run):
        return tf.nn.avg_pool2d(inputs[0], node.pool or 2, node.stride, node.padding or "VALID")

    @staticmethod
    def fused(layer, plan):
        """Whether the pool is fused into the 1x1 convs reading it (``Conv.export_step``): a square
        pool of stride its size, unpadded, read only by such convs (at least one)."""
        p = tuple(layer.pool_size)
        readers = plan.consumers(layer.output)
        return (bool(readers) and len(set(p)) == 1 and tuple(layer.strides) == p and layer.padding == "valid"
                and all(getattr(keras_op(c), "kind", None) == "conv" and tuple(c.kernel_size) == (1, 1)
                        and tuple(c.strides) == (1, 1) and tuple(c.dilation_rate) == (1, 1) for c in readers))

    def export_step(self, layer, plan):
        """Fused into the 1x1 convs reading it, when only such convs do (:meth:`fused`)."""
        if self.fused(layer, plan):
            return None

        def step(values):
            y = tf.nn.avg_pool2d(values[layer.input], layer.pool_size, layer.strides, layer.padding.upper())
            values[layer.output] = plan.requant(y, layer)
        return step


@register
class MaxPool(_Selects):
    kind = "maxpool"
    keras_types = (keras.layers.MaxPooling2D,)
    from_keras = _read_pool

    def call(self, node, layer, inputs, run):
        return tf.nn.max_pool2d(inputs[0], node.pool or node.kernel, node.stride, node.padding or "SAME")

    def select(self, layer, x):
        return tf.nn.max_pool2d(x, layer.pool_size, layer.strides, layer.padding.upper())


@register
class GlobalAvgPool(Op):
    kind, flat_output = "gap", True
    keras_types = (keras.layers.GlobalAveragePooling2D,)
    from_keras = _read_global_pool

    def call(self, node, layer, inputs, run):
        return tf.reduce_mean(inputs[0], axis=[1, 2])

    def export_step(self, layer, plan):
        def step(values):
            y = tf.reduce_mean(values[layer.input], axis=[1, 2], keepdims=layer.keepdims)
            values[layer.output] = plan.requant(y, layer)
        return step


@register
class GlobalMaxPool(_Selects):
    kind, flat_output = "gmaxpool", True
    keras_types = (keras.layers.GlobalMaxPooling2D,)
    from_keras = _read_global_pool

    def call(self, node, layer, inputs, run):
        return tf.reduce_max(inputs[0], axis=[1, 2])

    def select(self, layer, x):
        return tf.reduce_max(x, axis=[1, 2])


@register
class ZeroPad(_Selects):
    """``ZeroPadding2D``: zeros around each map (``node.args["pads"]``: ``((top, bottom), (left,
    right))``).  No cost; a zero is a level of every PACT grid, so quantized inputs stay on it, and
    int8 TFLite pads with the zero point, which stands for 0 exactly."""

    kind, image_side = "zeropad", True
    keras_types = (keras.layers.ZeroPadding2D,)

    def from_keras(self, ref, b):
        if getattr(ref.layer, "data_format", "channels_last") != "channels_last":
            keras_read.fail(ref, "only channels_last is supported")
        pads = tuple(tuple(int(p) for p in side) for side in ref.layer.padding)
        b.node_of[ref.name] = b.add(name=ref.name, op=self.kind, src=b.src(ref), area=keras_read.area(ref.shape),
                                    layer=ref.name, args={"pads": pads})

    @staticmethod
    def _pad(x, pads):
        return tf.pad(x, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]])

    def call(self, node, layer, inputs, run):
        return self._pad(inputs[0], node.args["pads"])

    def select(self, layer, x):
        return self._pad(x, layer.padding)
