"""Ops with weights: convolutions, dense layers and a stand-alone BatchNormalization.

``conv`` and ``fc`` own a row (their output width is searched); ``dwconv`` and ``bn`` follow
their input's width; ``dense`` is the classifier (``num_classes`` outputs).  Every one of them
holds weights per input channel, so an expansion of a row feeding it re-initialises the new
input channels (``reset_inputs``).
"""

import numpy as np
import tensorflow as tf

from nce_tf.layers import QuantConv2D, QuantDense, QuantDepthwiseConv2D
from nce_tf.search.layers import SearchBatchNorm, SearchConv2D, SearchDense, SearchDepthwiseConv2D
from nce_tf.search.ops import keras_args
from nce_tf.search.ops.base import Op, register


def _row_layout(node, net):
    return [(frozenset([node.row]), int(net.table_np[node.row].max()))], 1


def _dense_rows(lo, hi, total, spatial):
    """Rows ``s * total + c`` of a dense kernel reading a (flattened) input, ``c`` in ``[lo, hi)``."""
    return np.concatenate([np.arange(lo, hi) + s * total for s in range(spatial)])


@register
class Conv(Op):
    """A searchable ``Conv2D`` (its BN folded in): ``SearchConv2D`` in the super-net."""

    kind, has_row, reads_channels, layer_group = "conv", True, True, "conv"

    def width_rows(self, node, srcs):
        return [node.row]

    def add_cost(self, node, terms):
        k2 = node.kernel**2
        for r in terms.widths[node.src[0]]:
            terms.bilinear(node, r, k2 * node.out_area, k2)
        terms.linear(node, node.row, other=(2 if node.use_bn else 0) + (1 if node.use_bias else 0))

    def layout(self, node, srcs, net):
        return _row_layout(node, net)

    def make_layer(self, node, net, src_max, src_spatial):
        return SearchConv2D(
            src_max, int(net.table_np[node.row].max()), net.space.rows[node.row].n, node.kernel, node.stride,
            kernel_quantizer=net.policy.kernel_quantizer(node.role), weight_decay=net.weight_decay,
            padding=node.padding or "SAME", use_bn=node.use_bn, epsilon=node.epsilon,
            seed=net.init_seed(node), sawb_scope=net.sawb_scope, name=node.name)

    def call(self, node, layer, inputs, run):
        widths, index, mix = run.sample
        r = node.row
        return layer(inputs[0], widths[r], index[r], mix[r], training=run.training)

    def l2(self, node, layer, inputs, run):
        return layer.l2(tf.shape(inputs[0])[-1], tf.reduce_max(run.sample[0][node.row]))

    def reset_inputs(self, layer, lo, hi, total, spatial, fresh):
        fresh.reinit(layer.kernel, np.s_[:, :, lo:hi, :], layer.init_stddev)

    def derive(self, node, ref, x, ctx):
        config = ref.layer.get_config()
        y = QuantConv2D(ctx.widths[node.row],
                        **{**keras_args.pick(config, keras_args.CONV_KEYS),
                           "kernel_regularizer": keras_args.regularizer(ctx.weight_decay, config)},
                        kernel_quantizer=ctx.policy.kernel_quantizer(node.role), name=ref.name)(x)
        return keras_args.folded_activation(y, ref, ctx.policy)

    def inherit(self, node, sn, ctx):
        c_out, j = ctx.widths[node.row], int(ctx.index[node.row])
        target = ctx.model.get_layer(node.layer)
        target.kernel.assign(sn.kernel.numpy()[:, :, ctx.cols, :c_out])
        if node.use_bn:
            bn = ctx.model.get_layer(_bn_after(ctx.space, node.layer))
            for name in ("gamma", "beta", "moving_mean", "moving_variance"):
                getattr(bn, name).assign(getattr(sn, name).numpy()[j, :c_out])
        elif target.use_bias:
            target.bias.assign(sn.bias.numpy()[:c_out])


def _bn_after(space, conv_name):
    """The user's BatchNormalization folded into conv ``conv_name``."""
    for ref in space.source["refs"]:
        if ref.inputs == [conv_name] and ref.kind == "BatchNormalization":
            return ref.name
    raise KeyError(conv_name)


@register
class DepthwiseConv(Op):
    """A ``DepthwiseConv2D`` (multiplier 1): filters every channel its input carries."""

    kind, reads_channels, layer_group = "dwconv", True, "other"

    def add_cost(self, node, terms):
        k2 = node.kernel**2
        for r in terms.widths[node.src[0]]:
            terms.linear(node, r, k2 * node.out_area, k2, 1 if node.use_bias else 0)

    def make_layer(self, node, net, src_max, src_spatial):
        return SearchDepthwiseConv2D(
            src_max * src_spatial, node.kernel, node.stride, node.padding or "SAME",
            kernel_quantizer=net.policy.kernel_quantizer(node.role), weight_decay=net.weight_decay,
            use_bias=node.use_bias, seed=net.init_seed(node), name=node.name)

    def call(self, node, layer, inputs, run):
        return layer(inputs[0])

    def l2(self, node, layer, inputs, run):
        return layer.l2(tf.shape(inputs[0])[-1])

    def reset_inputs(self, layer, lo, hi, total, spatial, fresh):
        fresh.reinit(layer.kernel, np.s_[:, :, lo:hi, :], layer.init_stddev)
        if layer.bias is not None:
            fresh.reset(layer.bias, np.s_[lo:hi], 0.0)

    def derive(self, node, ref, x, ctx):
        config = ref.layer.get_config()
        reg = keras_args.regularizer(ctx.weight_decay, {"kernel_regularizer": config.get("depthwise_regularizer")})
        y = QuantDepthwiseConv2D(**keras_args.pick(config, keras_args.DEPTHWISE_KEYS), depthwise_regularizer=reg,
                                 kernel_quantizer=ctx.policy.kernel_quantizer(node.role), name=ref.name)(x)
        return keras_args.folded_activation(y, ref, ctx.policy)

    def inherit(self, node, sn, ctx):
        target = ctx.model.get_layer(node.layer)
        target.kernel.assign(sn.kernel.numpy()[:, :, ctx.cols, :])
        if target.use_bias:
            target.bias.assign(sn.bias.numpy()[ctx.cols])


@register
class BatchNorm(Op):
    """A BatchNormalization not folded into a conv (after a depthwise conv): one shared BN."""

    kind, reads_channels, transparent, layer_group = "bn", True, True, "other"

    def add_cost(self, node, terms):
        for r in terms.widths[node.src[0]]:
            terms.linear(node, r, other=2)

    def make_layer(self, node, net, src_max, src_spatial):
        return SearchBatchNorm(src_max, epsilon=node.epsilon, name=node.name)

    def call(self, node, layer, inputs, run):
        return layer(inputs[0], training=run.training)

    def reset_inputs(self, layer, lo, hi, total, spatial, fresh):
        fresh.bn(layer, np.s_[lo:hi])

    def inherit(self, node, sn, ctx):
        target = ctx.model.get_layer(node.layer)
        for name in ("gamma", "beta", "moving_mean", "moving_variance"):
            getattr(target, name).assign(getattr(sn, name).numpy()[ctx.cols])


@register
class FullyConnected(Op):
    """A searchable hidden ``Dense`` layer (its own row): ``SearchDense`` with the row's pair."""

    kind, has_row, reads_channels, flat_output, layer_group = "fc", True, True, True, "other"

    def width_rows(self, node, srcs):
        return [node.row]

    def add_cost(self, node, terms):
        m = terms.spatial[node.src[0]]
        for r in terms.widths[node.src[0]]:
            terms.bilinear(node, r, m, m)
        terms.linear(node, node.row, other=1 if node.use_bias else 0)

    def layout(self, node, srcs, net):
        return _row_layout(node, net)

    def make_layer(self, node, net, src_max, src_spatial):
        return SearchDense(src_max * src_spatial, int(net.table_np[node.row].max()),
                           kernel_quantizer=net.policy.kernel_quantizer(node.role), weight_decay=net.weight_decay,
                           base_width=net.space.rows[node.row].n, use_bias=node.use_bias,
                           seed=net.init_seed(node), sawb_scope=net.sawb_scope, name=node.name)

    def call(self, node, layer, inputs, run):
        widths, index, mix = run.sample
        r = node.row
        return layer(inputs[0], widths[r], index[r], mix[r])

    def l2(self, node, layer, inputs, run):
        return layer.l2(tf.shape(inputs[0])[-1], tf.reduce_max(run.sample[0][node.row]))

    def reset_inputs(self, layer, lo, hi, total, spatial, fresh):
        fresh.reinit(layer.kernel, np.s_[_dense_rows(lo, hi, total, spatial), :], layer.init_stddev)

    def derive(self, node, ref, x, ctx):
        return keras_args.folded_activation(self._dense(ref, x, ctx, ctx.widths[node.row], "body"), ref, ctx.policy)

    @staticmethod
    def _dense(ref, x, ctx, units, role):
        config = ref.layer.get_config()
        return QuantDense(units, **{**keras_args.pick(config, keras_args.DENSE_KEYS),
                                    "kernel_regularizer": keras_args.regularizer(ctx.weight_decay, config)},
                          kernel_quantizer=ctx.policy.kernel_quantizer(role), name=ref.name)(x)

    def _units(self, node, ctx):
        return ctx.widths[node.row]

    def inherit(self, node, sn, ctx):
        c_out = self._units(node, ctx)
        target = ctx.model.get_layer(node.layer)
        target.kernel.assign(sn.kernel.numpy()[ctx.cols, :c_out])
        if target.use_bias:
            target.bias.assign(sn.bias.numpy()[:c_out])


@register
class Classifier(FullyConnected):
    """The output ``Dense`` layer: ``num_classes`` logits, float by the paper's rule."""

    kind, has_row, layer_group = "dense", False, "dense"

    def width_rows(self, node, srcs):
        return srcs[0]

    def add_cost(self, node, terms):
        m, units = terms.spatial[node.src[0]], terms.num_classes
        for r in terms.widths[node.src[0]]:
            terms.linear(node, r, m * units, m * units, role="last")
        terms.const_params += units if node.use_bias else 0

    def layout(self, node, srcs, net):
        return [], 1

    def make_layer(self, node, net, src_max, src_spatial):
        return SearchDense(src_max * src_spatial, net.space.num_classes,
                           kernel_quantizer=net.policy.kernel_quantizer("last"), weight_decay=net.weight_decay,
                           use_bias=node.use_bias, seed=net.init_seed(node),
                           name=node.name if node.layer else "classifier")

    def call(self, node, layer, inputs, run):
        return layer(inputs[0])

    def l2(self, node, layer, inputs, run):
        return layer.l2(tf.shape(inputs[0])[-1])

    def derive(self, node, ref, x, ctx):
        return self._dense(ref, x, ctx, ctx.space.num_classes, "last")  # logits: a softmax is dropped

    def _units(self, node, ctx):
        return ctx.space.num_classes
