"""A super-net started from a trained network of the same model (``--init_from`` for searches).

TAS's own procedure is pretrain, search, distil; NCE's expansion argument is about what a
*trained* layer loses under quantization.  A super-net searched from random weights prefers
capacity at any precision (its cross-entropy falls with every channel it is given), so the
search can start from a trained network instead: a ``.keras`` file or a finished run of the
same model (float or quantized, any precision).

**What goes where** (:func:`load_trained_weights`).  Layers are matched by the name of the Keras
layer each node of the search graph stands for (``node.layer``); the BatchNormalization folded
into a searched conv is the checkpoint's BN that reads that conv.

1. **Channel order.**  Channel-wise interpolation and prefix sharing assume candidate ``C_j``
   holds the ``C_j`` channels the layer needs most, so each row's channels are *reordered*, most
   important first, by the L1 rule of float initialisation (:mod:`nce_tf.train.float_init`): a
   filter's score is its L1 norm over the layer's mean filter L1 norm, summed over the convs of a
   group, ties to the lower index.  Rows whose outputs meet at a residual add share one order
   (their channels are added index by index).  With every row at the checkpoint's width the
   reordering is a permutation of a layer's filters and of its consumers' input columns, so the
   sub-network at the checkpoint's widths computes exactly what the checkpoint computes.
2. **Every candidate's BN** takes the checkpoint's BN of its channels (gamma, beta and running
   statistics): a narrower candidate starts from the statistics the trained network had on those
   channels (``nce-tf analyze sensitivity`` re-estimates them for a fixed sub-network).
3. **Channels beyond the checkpoint's width** (the 2X room of expansion, or a row wider than the
   checkpoint) keep the super-net's own random filters and start so that a sub-net wider than the
   checkpoint first computes the checkpoint's function *and* the new channels train:

   - quantized activations (PACT): every candidate's BN starts them at gamma = beta = 0, so they
     output exactly 0, and the consumers' random input columns pass a gradient back to the new
     gamma (PACT's fake-quant passes the gradient at 0);
   - float activations (ReLU): a fresh BN (gamma 1, beta 0) and every consumer's input columns
     that read them at **zero** instead.  Gamma = 0 would feed exactly 0 into a ReLU, whose
     gradient at 0 is 0 in TensorFlow: the channels would never train (the probe's widening of
     float networks read a flat zero under that rule).  Exact where the consumers' weights are
     float or their grid holds 0; a zero-free weight grid (2-bit SAWB) reads a zero column at
     its smallest level, so there the start is close, not exact.

   (Random new channels with random consumer columns add a unit-variance noise feature per
   channel to every wider sub-net: measured on a trained ResNet-20, the stem alone at 1.5x lost
   4.7 points of test accuracy before any training.)
4. **PACT clips** are copied where the checkpoint has them (a quantized network); a float
   checkpoint leaves the super-net's initial clip, or ``pact_init="stats"`` sets them
   (:func:`pact_clips_from_stats`).

A checkpoint of another model (a searched layer missing, another kernel size, another input,
more channels than a row can hold) is a one-line :class:`~nce_tf.errors.UsageError`.

Example:

>>> import keras, numpy as np
>>> from nce_tf.models import build_model
>>> from nce_tf.search import SuperNet
>>> from nce_tf.adapter.from_trained import load_trained_weights
>>> from nce_tf.sources import build_space
>>> trained = build_model("resnet8")
>>> net = SuperNet(build_space("resnet8"), seed=0)
>>> report = load_trained_weights(net, trained)
>>> len(report["loaded"]), report["missing"]
(10, [])
>>> x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
>>> one_x = net.forward(x, net.subnet_sample(net.space.default_widths()))[0]
>>> bool(np.allclose(one_x, trained(x, training=False), atol=1e-4))
True
"""

import numpy as np

from nce_tf.adapter.graph import read_graph
from nce_tf.errors import UsageError
from nce_tf.search.ops import Forward, keras_op
from nce_tf.search.ops.keras_read import bn_vector
from nce_tf.calibration import mse_clip

_BN_FIELDS = ("gamma", "beta", "moving_mean", "moving_variance")
_ALLOWED = "a .keras file or finished run of the same model (any precision, any widths up to the search's 2X)"


def _filter_l1(kernel):
    kernel = np.asarray(kernel, np.float64)
    return np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)


class _Checkpoint:
    """The trained network's weighted layers by name, and the BN that reads each conv."""

    def __init__(self, model, received):
        try:
            refs = read_graph(model)
        except UsageError as e:
            raise UsageError(f"The checkpoint must be a functional or Sequential model: {e} Received: {received}.") from None
        self.layers = {r.name: r.layer for r in refs if r.layer is not None}
        self.bn_of = {r.inputs[0]: r.layer for r in refs
                      if r.layer is not None and getattr(keras_op(r.layer, exact=True), "kind", "") == "bn"
                      and len(r.inputs) == 1}
        self.received = received

    def layer(self, node, what):
        layer = self.layers.get(node.layer or node.name)
        if layer is None:
            raise UsageError(f"The checkpoint is of another model: it has no layer {node.layer or node.name!r} "
                             f"({what} of the search graph). Received: {self.received}. Allowed: {_ALLOWED}.")
        return layer


def _tie_groups(net):
    """Row -> group key: rows whose channels are added index by index (one output segment) share one."""
    parent = {}

    def find(r):
        while parent.get(r, r) != r:
            r = parent[r]
        return r

    for segments, _ in net._node_layouts():
        for rows, _ in segments:
            rows = sorted(rows)
            for other in rows[1:]:
                ra, rb = find(rows[0]), find(other)
                if ra != rb:
                    parent[rb] = ra
    return {r: find(r) for r in range(len(net.space.rows))}


def channel_orders(net, checkpoint):
    """Row -> the checkpoint's channels of that row, most important first (the module doc's rule 1)."""
    groups = _tie_groups(net)
    members = {}
    for node in net.space.nodes:
        if node.kind.has_row:
            kernel = checkpoint.layer(node, f"the {node.op} of row {node.row}").kernel.numpy()
            members.setdefault(groups[node.row], []).append((node, kernel))
    orders = {}
    for key, convs in members.items():
        widths = {int(k.shape[-1]) for _, k in convs}
        if len(widths) != 1:
            names = ", ".join(f"{n.layer or n.name}: {int(k.shape[-1])}" for n, k in convs)
            raise UsageError(f"The checkpoint is of another model: layers added together have different widths "
                             f"({names}). Received: {checkpoint.received}. Allowed: {_ALLOWED}.")
        score = np.zeros(widths.pop())
        for _, kernel in convs:
            l1 = _filter_l1(kernel)
            score += l1 / max(float(l1.mean()), 1e-30)
        order = np.argsort(-score, kind="stable")
        for row, group in groups.items():
            if group == key:
                orders[row] = order
    return orders


def _input_map(net, node_index, orders):
    """``(super-net input indices, checkpoint input indices)`` of the node's input channels."""
    placed, total, spatial = net.layout_offsets(node_index)
    mine, theirs, their_total = [], [], 0
    for offset, rows in placed:
        order = orders[min(rows)] if rows else np.arange(net.space.input_channels)
        mine.append(offset + np.arange(order.size))
        theirs.append(their_total + order)
        their_total += order.size
    mine, theirs = np.concatenate(mine), np.concatenate(theirs)
    # After a flatten every channel is spread over `spatial` positions, the channel index fastest.
    mine = np.concatenate([mine + p * total for p in range(spatial)])
    theirs = np.concatenate([theirs + p * their_total for p in range(spatial)])
    return mine, theirs, their_total * spatial


def _put(variable, value, index_mine, index_theirs, received, name):
    """``variable[index_mine] = value[index_theirs]`` (``np.ix_`` index tuples of one rank)."""
    current = np.array(variable.numpy())
    try:
        current[index_mine] = np.asarray(value)[index_theirs]
    except (IndexError, ValueError) as e:
        raise UsageError(f"The checkpoint is of another model: {name}'s {variable.name} does not fit ({e}). "
                         f"Received: {received}. Allowed: {_ALLOWED}.") from None
    variable.assign(current)


def load_trained_weights(net, source, *, received=None):
    """Copies a trained network's weights into the super-net ``net`` (see the module doc).

    Args:
        net: a :class:`~nce_tf.search.supernet.SuperNet`, built.
        source: the trained network: a ``keras.Model`` of the same model (zoo name or adapted
            user model) at any widths the search space can hold.
        received: how the source is named in error messages (default: ``source=<model name>``).

    Returns:
        ``{"loaded": [...], "missing": [...], "clips": {site: clip}, "orders": {row name: [...]}}``:
        the layers copied, the weighted nodes the checkpoint lacked (none for the same model), the
        PACT clips copied, and each row's channel order (checkpoint channel per super-net channel).

    Raises:
        UsageError: the source is not of the searched model (module doc).
    """
    received = received or f"source={getattr(source, 'name', source)!r}"
    ckpt = _Checkpoint(source, received)
    space = net.space
    if ckpt_input := [layer for layer in source.inputs]:
        channels = int(ckpt_input[0].shape[-1])
        if channels != space.input_channels:
            raise UsageError(f"The checkpoint reads {channels} input channels, the searched model "
                             f"{space.input_channels}. Received: {received}. Allowed: {_ALLOWED}.")
    _check_no_extra_layers(net, ckpt)
    orders = channel_orders(net, ckpt)
    report = {"loaded": [], "missing": [], "clips": {}, "orders": {}}
    for row, order in orders.items():
        cap = int(net.table_np[row].max())
        if order.size > cap:
            raise UsageError(f"The checkpoint's {space.rows[row].name!r} has {order.size} channels, more than the "
                             f"search's widest candidate ({cap}). Received: {received}. Allowed: {_ALLOWED}.")
        report["orders"][space.rows[row].name] = [int(c) for c in order]
    for i, node in enumerate(space.nodes):
        layer = net.layer_of_node(i)
        if layer is None:
            continue
        name = node.layer or node.name
        if node.op == "act":
            theirs = ckpt.layers.get(name)
            if getattr(layer, "alpha", None) is not None and getattr(theirs, "alpha", None) is not None:
                layer.alpha.assign(float(np.asarray(theirs.alpha.numpy())))
                report["clips"][node.name] = float(layer.alpha.numpy())
            continue
        if not node.kind.reads_channels:
            continue
        theirs = ckpt.layer(node, f"a {node.op} node")
        _load_node(net, i, node, layer, theirs, ckpt, orders, received)
        report["loaded"].append(name)
    return report


def _check_no_extra_layers(net, ckpt):
    """A one-line error when the checkpoint has a weighted layer the searched model lacks (another,
    deeper model whose first layers are named alike)."""
    mine = {node.layer or node.name for node in net.space.nodes}
    folded = {id(bn) for name, bn in ckpt.bn_of.items() if name in mine}
    for name, layer in ckpt.layers.items():
        if layer.weights and name not in mine and id(layer) not in folded:
            raise UsageError(f"The checkpoint is of another model: its {type(layer).__name__} {name!r} is not in the "
                             f"searched model. Received: {ckpt.received}. Allowed: {_ALLOWED}.")


def _load_node(net, i, node, layer, theirs, ckpt, orders, received):
    name = node.layer or node.name
    silent_new = net.policy.a_bits < 32
    mine_in, theirs_in, their_width = _input_map(net, node.src[0], orders)
    if node.op in ("conv", "fc", "dense"):
        kernel = theirs.kernel.numpy()
        if kernel.shape[-2] != their_width or kernel.shape[:-2] != tuple(layer.kernel.shape[:-2]):
            raise UsageError(f"The checkpoint is of another model: its {name!r} has a {tuple(kernel.shape)} kernel, "
                             f"which does not read {their_width} channels with the search's "
                             f"{tuple(layer.kernel.shape[:-2])} window. Received: {received}. Allowed: {_ALLOWED}.")
        out = orders[node.row] if node.kind.has_row else np.arange(kernel.shape[-1])
        mine_out = np.arange(out.size)
        lead = [np.arange(s) for s in kernel.shape[:-2]]
        _put(layer.kernel, kernel, np.ix_(*lead, mine_in, mine_out), np.ix_(*lead, theirs_in, out), received, name)
        bias = getattr(theirs, "bias", None)
        if bias is not None and getattr(layer, "bias", None) is not None:
            _put(layer.bias, bias.numpy(), np.ix_(mine_out), np.ix_(out), received, name)
        if node.op == "conv" and node.use_bn:
            bn = ckpt.bn_of.get(name)
            if bn is None:
                raise UsageError(f"The checkpoint is of another model: no BatchNormalization reads its {name!r}. "
                                 f"Received: {received}. Allowed: {_ALLOWED}.")
            rows = np.arange(layer.num_candidates)
            for field in _BN_FIELDS:  # every candidate's BN: rule 2 of the module doc
                value = np.broadcast_to(bn_vector(bn, field), (rows.size, out.size))
                _put(getattr(layer, field), value, np.ix_(rows, mine_out), np.ix_(rows, out), received, name)
            if silent_new:  # rule 3: channels beyond the checkpoint output 0 (PACT trains them)
                for field in ("gamma", "beta"):
                    variable = getattr(layer, field)
                    variable.assign(np.concatenate([variable.numpy()[:, :out.size],
                                                    np.zeros((rows.size, variable.shape[1] - out.size), "float32")], 1))
        if not silent_new:  # rule 3 behind a ReLU: live channels that no consumer reads yet
            _zero_new_inputs(layer.kernel, mine_in)
    elif node.op == "dwconv":
        lead = [np.arange(s) for s in theirs.kernel.shape[:2]]
        _put(layer.kernel, theirs.kernel.numpy(), np.ix_(*lead, mine_in, [0]), np.ix_(*lead, theirs_in, [0]),
             received, name)
        if getattr(theirs, "bias", None) is not None and layer.bias is not None:
            _put(layer.bias, theirs.bias.numpy(), np.ix_(mine_in), np.ix_(theirs_in), received, name)
    elif node.op == "bn":
        for field in _BN_FIELDS:
            _put(getattr(layer, field), bn_vector(theirs, field), np.ix_(mine_in), np.ix_(theirs_in), received, name)
    else:
        raise UsageError(f"Starting a search from a trained network does not support op {node.op!r} "
                         f"(layer {name!r}) yet. Received: {received}.")


def _zero_new_inputs(kernel, mine_in):
    """Rule 3: the kernel's input columns that read no checkpoint channel (the room beyond it) set to 0."""
    value = np.array(kernel.numpy())
    new = np.ones(value.shape[-2], bool)
    new[mine_in] = False
    value[..., new, :] = 0.0
    kernel.assign(value)


def pact_clips_from_stats(net, images, widths=None, *, sample=1 << 14, seed=0):
    """Sets the super-net's PACT clips from the activations of one sub-network (``pact_init="stats"``).

    The rule of :func:`nce_tf.train.float_init.calibrate_pact` (the clip of least squared error
    against ReLU, :func:`~nce_tf.train.float_init.mse_clip`), read off the super-net itself: the
    sub-network at ``widths`` (default: the original widths) runs in inference mode, one node at a
    time, and each PACT site's clip is set from its inputs on every batch before the sites after it
    are read, as a network calibrated in graph order would be.

    Args:
        net: a :class:`~nce_tf.search.supernet.SuperNet` with PACT sites.
        images: a few batches of training images (arrays or ``(images, labels)`` pairs).
        widths: the sub-network's widths (live candidates); default: each row's original width.
        sample: at most this many positive values per site and batch enter the statistic.
        seed: the subset's seed.

    Returns:
        ``{site name: clip}`` of the sites set.
    """
    images = [b[0] if isinstance(b, (tuple, list)) else b for b in images]
    run = Forward(net.subnet_sample(widths or net.space.default_widths()), False, net)
    nodes = net.space.nodes
    last_use = {s: i for i, node in enumerate(nodes) for s in node.src}
    rng = np.random.default_rng(seed)
    outs, clips = [dict() for _ in images], {}
    for i, node in enumerate(nodes):
        layer = net.layer_of_node(i)
        inputs = [[o[s] for s in node.src] or [x] for o, x in zip(outs, images)]
        if node.op == "act" and getattr(layer, "alpha", None) is not None:
            values = []
            for ins in inputs:
                v = np.asarray(ins[0]).ravel()
                v = v[v > 0]
                values.append(v[rng.integers(0, v.size, sample)] if v.size > sample else v)
            clip = mse_clip(np.concatenate(values), layer.quantizer.bits)
            if clip is not None:
                layer.alpha.assign(clip)
                clips[node.name] = clip
        for o, ins in zip(outs, inputs):
            o[i] = node.kind.call(node, layer, ins, run)
            for s in node.src:
                if last_use[s] == i:
                    del o[s]
    return clips
