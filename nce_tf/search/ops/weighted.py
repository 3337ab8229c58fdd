"""Ops with weights: convolutions, dense layers and a stand-alone BatchNormalization.

``conv`` and ``fc`` own a row (their output width is searched); ``dwconv`` and ``bn`` follow
their input's width; ``dense`` is the classifier (``num_classes`` outputs).  Every one of them
holds weights per input channel, so an expansion of a row feeding it re-initialises the new
input channels (``reset_inputs``).
"""

import math

import keras
import numpy as np
import tensorflow as tf

from nce_tf.errors import UsageError
from nce_tf.layers import QuantConv2D, QuantDense, QuantDepthwiseConv2D
from nce_tf.search.layers import SearchBatchNorm, SearchConv2D, SearchDense, SearchDepthwiseConv2D
from nce_tf.search.ops import keras_args, keras_read
from nce_tf.search.ops.base import OPS, Op, keras_op, register


def _row_layout(node, net):
    return [(frozenset([node.row]), int(net.table_np[node.row].max()))], 1


def _read_conv(op, ref, b, bn_ref=None):
    """The node of a user's conv (``op``'s kind), ``bn_ref`` the BatchNormalization folded into it."""
    k, s = keras_read.check_conv(ref)
    layer, src = ref.layer, b.src(ref)
    bn = {"epsilon": float(bn_ref.layer.epsilon)} if bn_ref is not None else {}
    return b.add(name=ref.name, op=op.kind, src=src, kernel=k, stride=s, area=keras_read.area(ref.shape),
                 padding=layer.padding.upper(), use_bn=bn_ref is not None, use_bias=bool(layer.use_bias),
                 role="first" if b.reads_image(src[0]) else "body", layer=ref.name, **bn)


def _kernel_cost(layer, count, kind, macs_per_position):
    """A conv's row of the Keras count: ``macs_per_position`` MACs at each output position."""
    out = layer.output.shape
    kh, kw = layer.kernel_size
    bias = math.prod(layer.bias.shape) if layer.use_bias else 0
    count.weighted(layer, kind, layer.input.shape[-1], out[-1], f"{kh}x{kw}/{layer.strides[0]}",
                   macs_per_position * math.prod(out[1:-1]), math.prod(layer.kernel.shape), bias)


def _bn_reading(layer, plan):
    """The BatchNormalization right after ``layer`` (folded into it in the export): ``layer``'s only
    reader, after no activation of its own; else ``None``."""
    bn = plan.only(layer.output)
    if keras_args.activation_name(layer.activation):
        return None
    return bn if isinstance(keras_op(bn), BatchNorm) else None


# A conv's or dense layer's own activation the int8 graph computes: a ReLU is the clamp of the
# output's calibrated range [0, max] (Keras's outputs are >= 0, so the range's floor is 0).
_EXPORT_ACTIVATIONS = ("", "relu", "relu6")


def _export_checks(layer, plan):
    """Refuses, in one line, a setting of a conv or dense layer the int8 graph would not compute."""
    act = keras_args.activation_name(layer.activation)
    if act not in _EXPORT_ACTIVATIONS:
        plan.refuse(layer, f"activation={act!r}", "None, 'relu' or 'relu6' (export a model that ends in "
                    "its logits: a softmax or other activation after the last layer is not part of the file)")
    for setting, allowed in keras_read.unread_conv_settings(layer):
        plan.refuse(layer, setting, allowed)


def _dense_rows(lo, hi, total, spatial):
    """Rows ``s * total + c`` of a dense kernel reading a (flattened) input, ``c`` in ``[lo, hi)``."""
    return np.concatenate([np.arange(lo, hi) + s * total for s in range(spatial)])


@register
class Conv(Op):
    """A searchable ``Conv2D`` (its BN folded in): ``SearchConv2D`` in the super-net."""

    kind, has_row, reads_channels, layer_group = "conv", True, True, "conv"
    keras_types = (keras.layers.Conv2D, QuantConv2D)

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
            padding=node.padding or "SAME", use_bn=node.use_bn, epsilon=node.epsilon, use_bias=node.use_bias,
            seed=net.init_seed(node), sawb_scope=net.sawb_scope, pair_merge=net.pair_merge,
            name=node.name)

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
                           **keras_args.own_activity(config, ref.layer),
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

    def from_keras(self, ref, b):
        """A searchable conv (a row); a BatchNormalization that is its only consumer, after no
        activation of its own, is folded into it.  A 1x1 conv classifier (MobileNet's head) is the
        ``conv_classifier`` op's (:mod:`nce_tf.search.ops.conv_head`)."""
        head = OPS["conv_classifier"]
        if head.tail(ref, b) is not None:
            head.from_keras(ref, b)
            return
        bn_ref = b.only_consumer(ref.name)
        if (bn_ref is None or not isinstance(keras_op(bn_ref.layer, exact=True), BatchNorm)
                or keras_args.activation_name(ref.layer.activation)):
            bn_ref = None
        node = _read_conv(self, ref, b, bn_ref)
        b.searchable.add(node)
        b.node_of[ref.name] = b.activation_after(ref, node, ref.layer.activation)
        if bn_ref is not None:
            b.node_of[bn_ref.name] = node

    def derive_folded(self, node, ref, x, ctx):
        """The BatchNormalization folded into the conv, holding gamma and beta (the super-net's)."""
        if isinstance(keras_op(ref.layer, exact=True), BatchNorm):
            return keras_read.full_bn(ref.layer)(x)
        return super().derive_folded(node, ref, x, ctx)

    def keras_cost(self, layer, count):
        kh, kw = layer.kernel_size
        _kernel_cost(layer, count, "conv", kh * kw * (layer.input.shape[-1] // layer.groups) * layer.output.shape[-1])

    def float_kind(self, layer):
        return "producer" if getattr(layer, "groups", 1) == 1 else None

    def export_step(self, layer, plan):
        """The conv with the BN after it folded in.  An average pool before a 1x1 conv is fused into
        it: AvgPool(p) + 1x1 conv == a p x p conv of stride p with every tap W / p^2, so the conv
        reads the PACT tensor at its own scale (apart, the converter requantizes it for the pool
        and feeds the pool's other consumer a float copy: a float conv in the model)."""
        if type(layer) not in self.keras_types:  # a user's Conv2D subclass may compute something else
            plan.refuse(layer)
        _export_checks(layer, plan)
        bn = _bn_reading(layer, plan)
        kernel, bias, bound = plan.folded(layer, bn)
        out, source, padding = bn or layer, layer.input, layer.padding.upper()
        stride, dilation = list(layer.strides), list(layer.dilation_rate)
        pool = plan.producer(layer.input)
        if getattr(keras_op(pool), "kind", None) == "avgpool" and keras_op(pool).fused(pool, plan):
            p = pool.pool_size[0]
            kernel, bound = np.tile(kernel / p**2, (p, p, 1, 1)), bound / p**2
            source, stride, padding = pool.input, [p, p], "VALID"
        bound = plan.bias_fit(bound, bias, source)

        def step(values):
            w = plan.weights(kernel, bound, layer)
            y = tf.nn.conv2d(values[source], w, stride, padding, dilations=dilation) + bias
            values[out.output] = plan.settle(y, out)
        return step

    def keras_layout(self, ref, ins, lay):
        return lay.own(ref)


def _bn_after(space, conv_name):
    """The user's BatchNormalization folded into conv ``conv_name``."""
    for ref in space.source["refs"]:
        if ref.inputs == [conv_name] and isinstance(keras_op(ref.layer, exact=True), BatchNorm):
            return ref.name
    raise KeyError(conv_name)


@register
class DepthwiseConv(Op):
    """A ``DepthwiseConv2D`` (multiplier 1): filters every channel its input carries."""

    kind, reads_channels, layer_group = "dwconv", True, "other"
    keras_types = (keras.layers.DepthwiseConv2D, QuantDepthwiseConv2D)

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
                                 **keras_args.own_activity(config, ref.layer),
                                 kernel_quantizer=ctx.policy.kernel_quantizer(node.role), name=ref.name)(x)
        return keras_args.folded_activation(y, ref, ctx.policy)

    def inherit(self, node, sn, ctx):
        target = ctx.model.get_layer(node.layer)
        target.kernel.assign(sn.kernel.numpy()[:, :, ctx.cols, :])
        if target.use_bias:
            target.bias.assign(sn.bias.numpy()[ctx.cols])

    def from_keras(self, ref, b):
        b.node_of[ref.name] = b.activation_after(ref, _read_conv(self, ref, b), ref.layer.activation)

    def keras_cost(self, layer, count):
        kh, kw = layer.kernel_size
        _kernel_cost(layer, count, "depthwise", kh * kw * layer.output.shape[-1])

    def float_kind(self, layer):
        return "depthwise"

    def export_step(self, layer, plan):
        _export_checks(layer, plan)
        bn = _bn_reading(layer, plan)
        kernel, bias, bound = plan.folded(layer, bn, depthwise=True)
        bound = plan.bias_fit(bound, bias, layer.input)
        out, (sh, sw), padding = bn or layer, layer.strides, layer.padding.upper()

        def step(values):
            w = tf.transpose(plan.weights(kernel, bound, layer), (0, 1, 3, 2))  # back to [k, k, C, 1]
            y = tf.nn.depthwise_conv2d(values[layer.input], w, [1, sh, sw, 1], padding,
                                       dilations=list(layer.dilation_rate)) + bias
            values[out.output] = plan.settle(y, out)
        return step


@register
class BatchNorm(Op):
    """A BatchNormalization not folded into a conv (after a depthwise conv): one shared BN."""

    kind, reads_channels, transparent, layer_group = "bn", True, True, "other"
    keras_types = (keras.layers.BatchNormalization,)

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

    def derive(self, node, ref, x, ctx):
        return keras_read.full_bn(ref.layer)(x)  # the super-net's gamma and beta, whatever the user's BN held

    def from_keras(self, ref, b):
        if ref.name in b.node_of:
            return  # folded into its conv
        if isinstance(keras_op(b.refs[ref.inputs[0]].layer, exact=True), Conv):
            keras_read.fail(ref, "a BatchNormalization after a conv must be that conv's only consumer, and the "
                            "conv must have no activation of its own")
        b.node_of[ref.name] = b.add(name=ref.name, op=self.kind, src=b.src(ref), epsilon=float(ref.layer.epsilon),
                                    layer=ref.name)

    def keras_cost(self, layer, count):
        # gamma and beta where the layer has them, trainable or frozen (a frozen identity BN of an
        # inserted projection is still a BN the space counts; scale=False / center=False drop them)
        count.bn(sum(math.prod(w.shape) for w in (layer.gamma, layer.beta) if w is not None))

    def float_kind(self, layer):
        return "bn"

    def export_step(self, layer, plan):
        """Nothing of its own: the conv before it folds it in."""
        conv = plan.producer(layer.input)
        if not isinstance(keras_op(conv), (Conv, DepthwiseConv)) or _bn_reading(conv, plan) is not layer:
            raise UsageError(f"Export folds a BatchNormalization into the conv before it, which must have no "
                             f"activation of its own and no other reader. Received: {layer.name!r}.")
        return None


@register
class FullyConnected(Op):
    """A searchable hidden ``Dense`` layer (its own row): ``SearchDense`` with the row's pair."""

    kind, has_row, reads_channels, flat_output, layer_group = "fc", True, True, True, "other"
    keras_types = (keras.layers.Dense, QuantDense)  # the output Dense is read as the classifier

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
                           seed=net.init_seed(node), sawb_scope=net.sawb_scope, pair_merge=net.pair_merge,
            name=node.name)

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
                                    **keras_args.own_activity(config, ref.layer),
                                    "kernel_regularizer": keras_args.regularizer(ctx.weight_decay, config)},
                          kernel_quantizer=ctx.policy.kernel_quantizer(role), name=ref.name)(x)

    def _units(self, node, ctx):
        return ctx.widths[node.row]

    def from_keras(self, ref, b):
        """A hidden ``Dense`` is searchable (a row); the model's output is the classifier (a softmax
        there is dropped: the search trains on logits)."""
        shape = b.refs[ref.inputs[0]].shape
        if len(shape) != 1:
            keras_read.fail(ref, f"a Dense layer must read a flat vector (after Flatten or global pooling), "
                            f"received input shape {shape}")
        use_bias = bool(ref.layer.use_bias)
        if ref.name == b.output_name:
            b.node_of[ref.name] = b.add(name=ref.name, op="dense", src=b.src(ref), use_bias=use_bias, layer=ref.name)
            return
        node = b.add(name=ref.name, op=self.kind, src=b.src(ref), use_bias=use_bias, use_bn=False, layer=ref.name)
        b.searchable.add(node)
        b.node_of[ref.name] = b.activation_after(ref, node, ref.layer.activation)

    def keras_cost(self, layer, count):
        out = layer.output.shape
        cin, cout = layer.kernel.shape
        positions = math.prod(out[1:-1]) if len(out) > 2 else 1
        count.weighted(layer, "dense", cin, cout, "-", cin * cout * positions, cin * cout,
                       cout if layer.use_bias else 0)

    def float_kind(self, layer):
        return "producer"

    def keras_layout(self, ref, ins, lay):
        return lay.own(ref)

    def export_step(self, layer, plan):
        _export_checks(layer, plan)
        kernel, step_ = plan.kernel(layer)
        # max-abs; a grid's own step where its integers fit int8 (exact): per output channel when the
        # grid is (a per-tensor int8 range would round a small-step channel onto the largest step)
        per_channel = bool(np.ndim(step_))
        bound = np.abs(kernel).max(axis=0) if per_channel else float(np.abs(kernel).max())
        if step_ is not None:
            bound = np.maximum(bound, np.asarray(step_, "float32") * 127.0) if per_channel \
                else max(bound, float(step_) * 127.0)
        bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[-1], "float32")
        bound = plan.bias_fit(bound, bias, layer.input)

        def step(values):
            x = values[layer.input]
            if not per_channel:
                w = plan.weights(kernel, np.maximum(bound, 1e-12), layer, per_channel=False)
                values[layer.output] = plan.settle(tf.matmul(x, w) + bias, layer)
                return
            # TF 2.21's converter refuses a per-channel FULLY_CONNECTED ("'tfl.transpose' op has
            # mismatched quantized axes"): the same product as a 1x1 CONV_2D, quantized per output
            # channel (its bias, as a conv's, not a splat: Plan.conv_bias)
            w = plan.weights(kernel[None, None], np.maximum(bound, 1e-12), layer)
            y = tf.nn.conv2d(tf.reshape(x, [-1, 1, 1, kernel.shape[0]]), w, 1, "VALID") + plan.conv_bias(bias)
            y = tf.reshape(y, tf.concat([tf.shape(x)[:-1], [kernel.shape[1]]], 0))
            values[layer.output] = plan.settle(y, layer)
        return step

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
    keras_types = ()  # read by ``FullyConnected.from_keras``

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
