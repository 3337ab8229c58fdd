"""The derived network of an adapted model: the user's topology, the searched widths, QAT layers.

Every layer of the user's graph is rebuilt in order: convs and hidden dense layers at their row's
width (``QuantConv2D`` / ``QuantDepthwiseConv2D`` / ``QuantDense`` with the policy's quantizer
for their role), ReLU sites as the policy's activation (PACT at ``a_bits``), an activation folded
into a conv's config as its own layer after it, the output ``Dense`` as a logits classifier, and
every other layer from its own config.  Where an ``Add`` input that is not its own conv branch
(an identity shortcut) has another width than the add's main branch, a 1x1 conv + BN projection
is inserted (``{add}_proj{k}``), as the zoo's residual blocks do; the search's cost counted it.

With ``inherit=True`` the derived layers start from the super-network's weights: each conv's
live kernel slice, the BN of the chosen candidate, the shared BN / bias slices, the PACT clips.
With every row at a single candidate the super-net's forward then equals the derived network's
(tested in float).
"""

import keras
import numpy as np

from nce_tf.adapter.space import RELU_ACTIVATIONS, _activation_name
from nce_tf.layers import QuantConv2D, QuantDense, QuantDepthwiseConv2D
from nce_tf.models.blocks import Builder

_CONV_KEYS = ("kernel_size", "strides", "padding", "use_bias", "kernel_initializer", "bias_initializer",
              "kernel_regularizer", "bias_regularizer", "kernel_constraint", "bias_constraint")
_DEPTHWISE_KEYS = ("kernel_size", "strides", "padding", "use_bias", "depthwise_initializer", "bias_initializer",
                   "depthwise_constraint", "bias_constraint", "bias_regularizer")
_DENSE_KEYS = ("use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
               "kernel_constraint", "bias_constraint")


def _pick(config, keys):
    return {k: config[k] for k in keys if k in config}


def _regularizer(weight_decay, config):
    if weight_decay is None:
        return config.get("kernel_regularizer")
    return keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None


def build_derived(space, widths, policy, weight_decay=None, name=None):
    """A Keras functional model of the adapted ``space`` at ``widths`` (fresh weights).

    Args:
        space: an adapted :class:`~nce_tf.search.space.SearchSpace` (``space.source`` set).
        widths: one width per row.
        policy: the :class:`~nce_tf.models.QuantPolicy` of the derived network.
        weight_decay: coupled L2 of the conv and dense kernels (``None``: the user's regularizers).
        name: the model's name (default: ``{model}_derived``).
    """
    src = space.source
    rows, node_of, nodes = src["layer_row"], src["node_of"], space.nodes
    w = list(widths)
    width_rows = space.width_rows()
    tensors = {}
    inputs = None
    for ref in src["refs"]:
        layer, kind = ref.layer, ref.kind
        if layer is None:
            inputs = keras.Input(ref.shape, name=ref.name)
            tensors[ref.name] = inputs
            continue
        args = [tensors[n] for n in ref.inputs]
        x = args[0] if len(args) == 1 else args
        config = layer.get_config()
        node = nodes[node_of[ref.name]] if ref.name in node_of else None
        if kind in ("Conv2D", "QuantConv2D"):
            conv_node = next(n for n in nodes if n.layer == ref.name and n.op == "conv")
            y = QuantConv2D(w[rows[ref.name]], **{**_pick(config, _CONV_KEYS),
                                                  "kernel_regularizer": _regularizer(weight_decay, config)},
                            kernel_quantizer=policy.kernel_quantizer(conv_node.role), name=ref.name)(x)
            y = _folded_activation(y, ref, layer, policy)
        elif kind in ("DepthwiseConv2D", "QuantDepthwiseConv2D"):
            dw_node = next(n for n in nodes if n.layer == ref.name and n.op == "dwconv")
            reg = _regularizer(weight_decay, {"kernel_regularizer": config.get("depthwise_regularizer")})
            y = QuantDepthwiseConv2D(**_pick(config, _DEPTHWISE_KEYS), depthwise_regularizer=reg,
                                     kernel_quantizer=policy.kernel_quantizer(dw_node.role), name=ref.name)(x)
            y = _folded_activation(y, ref, layer, policy)
        elif kind in ("Dense", "QuantDense"):
            last = node is not None and node.op == "dense"
            units = space.num_classes if last else w[rows[ref.name]]
            y = QuantDense(units, **{**_pick(config, _DENSE_KEYS), "kernel_regularizer": _regularizer(weight_decay, config)},
                           kernel_quantizer=policy.kernel_quantizer("last" if last else "body"), name=ref.name)(x)
            if not last:
                y = _folded_activation(y, ref, layer, policy)
        elif node is not None and node.op == "act" and node.layer == ref.name:
            y = policy.activation(ref.name)(x)
        elif kind == "Add":
            y = keras.layers.Add(name=ref.name)(_projected(args, ref, space, width_rows, w,
                                                           Builder(policy, weight_decay or 0.0)))
        else:
            y = type(layer).from_config(config)(x)
        tensors[ref.name] = y
    return keras.Model(inputs, tensors[src["refs"][-1].name], name=name or f"{space.keras_name}_derived")


def _folded_activation(y, ref, layer, policy):
    name = _activation_name(layer.activation)
    if not name:
        return y
    if name in RELU_ACTIVATIONS:
        return policy.activation(f"{ref.name}_act")(y)
    return keras.layers.Activation(name, name=f"{ref.name}_{name}")(y)


def _projected(args, ref, space, width_rows, widths, builder):
    """The add's inputs, each identity input of another width projected to the main width by the
    zoo's shortcut (1x1 conv + BN, float by the paper's rule)."""
    node_of = space.source["node_of"]
    width = lambda r: widths[r] if r >= 0 else space.input_channels  # noqa: E731
    target = width(width_rows[space.nodes[node_of[ref.name]].src[0]][0])
    out = []
    for k, (t, name) in enumerate(zip(args, ref.inputs)):
        if width(width_rows[node_of[name]][0]) != target:
            t = builder.conv(t, target, 1, 1, f"{ref.name}_proj{k}", role="shortcut")
            t = builder.bn(t, f"{ref.name}_proj{k}_bn")
        out.append(t)
    return out


def inherit_weights(model, net, widths):
    """Copies the super-net's weights into a derived ``model`` (see the module doc)."""
    space = net.space
    index = np.argmax(net.masked_alpha().numpy(), axis=-1)
    width_rows = space.width_rows()

    def columns(node_index):
        """Super-net input channels that the derived layer's inputs correspond to, in order."""
        placed, total, spatial = net.layout_offsets(node_index)
        cols = []
        for (offset, _), r in zip(placed, width_rows[node_index]):
            cols += list(range(offset, offset + (widths[r] if r >= 0 else space.input_channels)))
        cols = np.array(cols)
        return np.concatenate([cols + s * total for s in range(spatial)])

    for i, node in enumerate(space.nodes):
        layer_name = node.layer
        if not layer_name or node.op not in ("conv", "dwconv", "bn", "fc", "dense", "act"):
            continue
        if node.op == "act":
            act = net.layer_of_node(i)
            target = model.get_layer(node.name)
            if getattr(act, "alpha", None) is not None and getattr(target, "alpha", None) is not None:
                target.alpha.assign(act.alpha)
            continue
        sn = net.layer_of_node(i)
        cols = columns(node.src[0])
        target = model.get_layer(layer_name)
        if node.op == "conv":
            c_out, j = widths[node.row], int(index[node.row])
            target.kernel.assign(sn.kernel.numpy()[:, :, cols, :c_out])
            if node.use_bn:
                bn = model.get_layer(_bn_after(space, layer_name))
                bn.gamma.assign(sn.gamma.numpy()[j, :c_out])
                bn.beta.assign(sn.beta.numpy()[j, :c_out])
                bn.moving_mean.assign(sn.moving_mean.numpy()[j, :c_out])
                bn.moving_variance.assign(sn.moving_variance.numpy()[j, :c_out])
            elif target.use_bias:
                target.bias.assign(sn.bias.numpy()[:c_out])
        elif node.op == "dwconv":
            target.kernel.assign(sn.kernel.numpy()[:, :, cols, :])
            if target.use_bias:
                target.bias.assign(sn.bias.numpy()[cols])
        elif node.op == "bn":
            for name in ("gamma", "beta", "moving_mean", "moving_variance"):
                getattr(target, name).assign(getattr(sn, name).numpy()[cols])
        elif node.op in ("fc", "dense"):
            c_out = widths[node.row] if node.op == "fc" else space.num_classes
            target.kernel.assign(sn.kernel.numpy()[cols, :c_out])
            if target.use_bias:
                target.bias.assign(sn.bias.numpy()[:c_out])


def _bn_after(space, conv_name):
    for ref in space.source["refs"]:
        if ref.inputs == [conv_name] and ref.kind == "BatchNormalization":
            return ref.name
    raise KeyError(conv_name)
