"""Ops that shape the graph: the image input, residual adds, concatenation and flatten.

- ``input``: the image (row ``INPUT``, its channel count fixed);
- ``add``: a residual add; its width is its main (first) input's row; an identity input of
  another width gets a 1x1 conv + BN projection in the derived network (``proj`` cost terms),
  while in the super-net a narrower input adds into the leading channels;
- ``concat``: channel concatenation, widths add up; in the super-net every input is padded to
  its cap so a consumer's kernel columns keep their meaning whatever widths are live;
- ``flatten``: one value per channel and position, so a dense layer after it counts each
  channel ``H * W`` times.
"""

import keras
import tensorflow as tf

from nce_tf.errors import UsageError
from nce_tf.models.blocks import Builder
from nce_tf.search.layers import add_leading
from nce_tf.search.ops import keras_read
from nce_tf.search.ops.base import Op, register

INPUT = -1  # the "row" of the 3-channel image


@register
class Input(Op):
    kind = "input"
    keras_types = (keras.layers.InputLayer,)

    def from_keras(self, ref, b):
        if len(ref.shape) != 3 or any(d is None for d in ref.shape):
            raise UsageError(f"adapt() needs image inputs of a known size (H, W, C): the cost depends on "
                             f"it. Received: input shape {ref.shape}.")
        b.node_of[ref.name] = b.add(name=ref.name, op=self.kind, area=keras_read.area(ref.shape), layer=ref.name)

    def export_step(self, layer, plan):
        return None  # the image, quantized by the graph itself

    def width_rows(self, node, srcs):
        return [INPUT]

    def layout(self, node, srcs, net):
        return [(frozenset(), net.space.input_channels)], 1

    def call(self, node, layer, inputs, run):
        return inputs[0]


@register
class Add(Op):
    kind = "add"
    keras_types = (keras.layers.Add,)

    def from_keras(self, ref, b):
        b.node_of[ref.name] = b.add(name=ref.name, op=self.kind, src=b.src(ref), area=keras_read.area(ref.shape),
                                    layer=ref.name)

    def float_kind(self, layer):
        return "add"

    def keras_layout(self, ref, ins, lay):
        return lay.tie(ins)

    def export_step(self, layer, plan):
        def step(values):
            first, *rest = [values[t] for t in layer.input]
            for t in rest:  # binary ADD has an int8 kernel; ADD_N does not
                first = tf.add(first, t)
            values[layer.output] = plan.settle(first, layer)
        return step

    def width_rows(self, node, srcs):
        return [node.row]

    def add_cost(self, node, terms):
        if not node.proj_area:
            return
        main = terms.widths[node.src[0]][0]
        # Each other input of another row gets a projection when the widths differ (a shortcut
        # conv tied to the main row never does).
        terms.proj += [(terms.widths[o][0], main, node.proj_area, o) for o in node.src[1:]
                       if terms.widths[o][0] != main]

    def layout(self, node, srcs, net):
        if any(len(segs) != 1 or spatial != 1 for segs, spatial in srcs):
            raise ValueError(f"add {node.name!r} of a concatenation is not supported")
        rows = frozenset().union(*(segs[0][0] for segs, _ in srcs))
        return [(rows, max(segs[0][1] for segs, _ in srcs))], 1

    def call(self, node, layer, inputs, run):
        y = inputs[0]
        for other in inputs[1:]:
            y = add_leading(y, other)
        return y

    def derive(self, node, ref, x, ctx):
        """The add, each identity input of another width projected to the main width by the zoo's
        shortcut (1x1 conv + BN, float by the paper's rule)."""
        node_of = ctx.space.source["node_of"]
        target = ctx.width(ctx.width_rows[node.src[0]][0])
        builder = Builder(ctx.policy, ctx.weight_decay or 0.0)
        args = []
        for k, name in enumerate(ref.inputs):
            t = ctx.tensors[name]
            if ctx.width(ctx.width_rows[node_of[name]][0]) != target:
                t = builder.conv(t, target, 1, 1, f"{ref.name}_proj{k}", role="shortcut")
                t = builder.bn(t, f"{ref.name}_proj{k}_bn")
            args.append(t)
        return keras.layers.Add(name=ref.name)(args)


@register
class Concat(Op):
    kind = "concat"
    keras_types = (keras.layers.Concatenate,)

    def from_keras(self, ref, b):
        if ref.layer.axis not in (-1, 3):
            keras_read.fail(ref, f"only channel concatenation is supported, received axis={ref.layer.axis}")
        super().from_keras(ref, b)

    def keras_bits(self, layer, count):
        return count.input_bits(layer)

    def float_kind(self, layer):
        return "concat"

    def keras_layout(self, ref, ins, lay):
        return lay.concat(ins)

    def export_step(self, layer, plan):
        if layer.axis not in (-1, len(layer.output.shape) - 1):
            plan.refuse(layer, f"axis={layer.axis}", "the channel axis (-1)")

        def step(values):
            values[layer.output] = plan.requant(tf.concat([values[t] for t in layer.input], axis=-1), layer)
        return step

    def width_rows(self, node, srcs):
        return [r for s in srcs for r in s]

    def layout(self, node, srcs, net):
        return [seg for segs, _ in srcs for seg in segs], 1

    def on_grid(self, node, srcs):
        return all(srcs)

    def call(self, node, layer, inputs, run):
        return tf.concat([run.net.padded(t, s) for t, s in zip(inputs, node.src)], axis=-1)


@register
class Flatten(Op):
    kind, flat_output = "flatten", True
    keras_types = (keras.layers.Flatten,)

    def keras_bits(self, layer, count):
        return count.input_bits(layer)

    def float_kind(self, layer):
        return "flatten"

    def keras_layout(self, ref, ins, lay):
        return lay.spread(ref, ins[0])

    def export_step(self, layer, plan):
        def step(values):
            x = values[layer.input]
            values[layer.output] = tf.reshape(x, [tf.shape(x)[0], -1])
        return step

    def on_grid(self, node, srcs):
        return srcs[0]

    def spatial(self, node, srcs, nodes):
        return nodes[node.src[0]].out_area

    def layout(self, node, srcs, net):
        return srcs[0][0], net.space.nodes[node.src[0]].out_area

    def call(self, node, layer, inputs, run):
        x = inputs[0]
        return tf.reshape(run.net.padded(x, node.src[0]), [tf.shape(x)[0], -1])
