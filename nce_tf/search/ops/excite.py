"""Squeeze-and-excitation: a per-channel gate computed from the block's own features.

MobileNetV3 and EfficientNet scale each channel of a block by a gate: global average pooling to
a ``(1, 1, C)`` map (``GlobalAveragePooling2D(keepdims=True)``, or a flat pooling and a
``Reshape`` to ``(1, 1, C)``), a 1x1 conv that reduces, a 1x1 conv that expands back to ``C``
and a sigmoid, then ``Multiply`` of the block's tensor by the gate.  Three ops:

- ``gap_keep``: the keepdims pooling (read by ``GlobalAvgPool``'s Keras side), a 1 x 1 map;
- ``reshape``: a ``Reshape`` between a flat vector and a ``(1, 1, C)`` map (either way), the one
  reshape whose target does not depend on the channel count; the derived network writes it
  with ``-1`` for the channels, so it holds at any searched width;
- ``gate``: the ``Multiply`` (inputs ordered gated tensor, gate).  Its gate's expand conv takes
  the gated tensor's row (``nce_tf.adapter.space``'s gate ties): the two widths are one by
  construction, as an add's branches are.  The reduce conv keeps a row of its own and is
  searched like any conv: its cost (``C x C_r`` MACs on a 1 x 1 map) is counted exactly, and
  a bottleneck the search may widen is what NCE is for.

No op here has a cost of its own (MACs are convs' and dense layers').

Example:

>>> from nce_tf.search.ops import op_of
>>> from nce_tf.search.space import Node
>>> type(op_of(Node(name="m", op="gate"))).__name__
'Gate'
"""

import keras
import tensorflow as tf

from nce_tf.search.ops import keras_read
from nce_tf.search.ops.base import Op, register
from nce_tf.search.ops.follow import _Selects


@register
class GlobalAvgPoolKeep(Op):
    """``GlobalAveragePooling2D(keepdims=True)``: one value per channel, kept as a 1 x 1 map."""

    kind = "gap_keep"
    keras_types = ()  # read by ``GlobalAvgPool.from_keras``

    def call(self, node, layer, inputs, run):
        return tf.reduce_mean(inputs[0], axis=[1, 2], keepdims=True)


def _one_position(shape):
    return len(shape) in (1, 3) and all(int(d) == 1 for d in shape[:-1])


@register
class ChannelReshape(_Selects):
    """A ``Reshape`` of a flat vector to a ``(1, 1, C)`` map or back: the same values
    (``node.args["flat"]``: the output is flat)."""

    kind = "reshape"
    keras_types = (keras.layers.Reshape,)

    def from_keras(self, ref, b):
        shape_in = tuple(b.refs[ref.inputs[0]].shape)
        if not (_one_position(shape_in) and _one_position(ref.shape) and shape_in[-1] == ref.shape[-1]):
            keras_read.fail(ref, f"its target shape depends on the channel count, which the search changes (a "
                            f"reshape between a flat vector and a (1, 1, C) map is read; use Flatten or global "
                            f"pooling otherwise), received {shape_in} -> {tuple(ref.shape)}")
        b.node_of[ref.name] = b.add(name=ref.name, op=self.kind, src=b.src(ref), area=1, layer=ref.name,
                                    args={"flat": len(ref.shape) == 1})

    @staticmethod
    def _reshape(x, flat):
        return tf.reshape(x, [tf.shape(x)[0], -1] if flat else [tf.shape(x)[0], 1, 1, -1])

    def call(self, node, layer, inputs, run):
        return self._reshape(inputs[0], node.args["flat"])

    def derive(self, node, ref, x, ctx):
        return keras.layers.Reshape((-1,) if node.args["flat"] else (1, 1, -1), name=ref.name)(x)

    def select(self, layer, x):
        return self._reshape(x, len(layer.output.shape) == 2)


@register
class Gate(Op):
    """``Multiply`` of a tensor by its squeeze-and-excitation gate (``src``: gated, gate)."""

    kind = "gate"
    keras_types = (keras.layers.Multiply,)

    def from_keras(self, ref, b):
        """Two inputs; the gate is the ``(1, 1, C)`` one (the second if both are)."""
        if len(ref.inputs) != 2:
            keras_read.fail(ref, f"a Multiply is read as a squeeze-and-excitation gate of two inputs, "
                            f"received {len(ref.inputs)}")
        shapes = [tuple(b.refs[n].shape) for n in ref.inputs]
        if any(len(s) != 3 or s[-1] != shapes[0][-1] for s in shapes):
            keras_read.fail(ref, f"a gate multiplies a map by one value per channel, received shapes {shapes}")
        src = b.src(ref)
        if _one_position(shapes[0]) and not _one_position(shapes[1]):
            src = src[::-1]
        b.node_of[ref.name] = b.add(name=ref.name, op=self.kind, src=src, area=keras_read.area(ref.shape),
                                    layer=ref.name)

    def call(self, node, layer, inputs, run):
        x, gate = inputs
        # The gate's conv has the gated row's cap; a gated residual sum may be wider (another row's
        # cap): its channels past the gate's pass through.
        extra = tf.shape(x)[-1] - tf.shape(gate)[-1]
        return x * tf.pad(gate, [[0, 0], [0, 0], [0, 0], [0, extra]], constant_values=1.0)

    def float_kind(self, layer):
        return "add"  # the gate's conv shares the gated tensor's channel index

    def keras_layout(self, ref, ins, lay):
        return lay.tie(ins)

    def export_step(self, layer, plan):
        def step(values):
            a, b = (values[t] for t in layer.input)
            values[layer.output] = plan.requant(a * b, layer)
        return step
