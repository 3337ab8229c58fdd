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

from nce_tf.search.ops import DeriveContext, InheritContext


def build_derived(space, widths, policy, weight_decay=None, name=None):
    """A Keras functional model of the adapted ``space`` at ``widths`` (fresh weights).

    Every user layer that a node of the space stands for is rebuilt by that node's op
    (:meth:`nce_tf.search.ops.Op.derive`); a layer folded into another's node (a BatchNormalization
    into its conv, a classifier's flatten and softmax) by that node's op (``Op.derive_folded``).

    Args:
        space: an adapted :class:`~nce_tf.search.space.SearchSpace` (``space.source`` set).
        widths: one width per row.
        policy: the :class:`~nce_tf.models.QuantPolicy` of the derived network.
        weight_decay: coupled L2 of the conv and dense kernels (``None``: the user's regularizers).
        name: the model's name (default: ``{model}_derived``).
    """
    refs = space.source["refs"]
    ctx = DeriveContext(space, list(widths), policy, weight_decay, space.width_rows())
    first = {}  # user layer -> the node that stands for it (before any folded activation node)
    for node in space.nodes:
        first.setdefault(node.layer, node)
    inputs = None
    for ref in refs:
        if ref.layer is None:
            inputs = ctx.tensors[ref.name] = keras.Input(ref.shape, name=ref.name)
            continue
        args = [ctx.tensors[n] for n in ref.inputs]
        x = args[0] if len(args) == 1 else args
        node = first.get(ref.name)
        if node is None:  # folded into another layer's node when read: that node's op rebuilds it
            owner = space.nodes[space.source["node_of"][ref.name]]
            ctx.tensors[ref.name] = owner.kind.derive_folded(owner, ref, x, ctx)
        else:
            ctx.tensors[ref.name] = node.kind.derive(node, ref, x, ctx)
    return keras.Model(inputs, ctx.tensors[refs[-1].name], name=name or f"{space.keras_name}_derived")


def _candidate_index(net, widths):
    """Per row, the candidate whose width ``widths[r]`` is (its BN is the layer's): the first live one,
    else the first in the row's table, else (a width the table lacks) the argmax."""
    table, k = net.table_np, net.num_candidates.numpy()
    argmax = np.argmax(net.masked_alpha().numpy(), axis=-1)
    index = []
    for r, w in enumerate(widths[:len(table)]):
        live, anywhere = np.flatnonzero(table[r, :k[r]] == w), np.flatnonzero(table[r] == w)
        index.append(int(live[0]) if live.size else int(anywhere[0]) if anywhere.size else int(argmax[r]))
    return np.asarray(index)


def inherit_weights(model, net, widths):
    """Copies the super-net's weights into a derived ``model`` (see the module doc)."""
    space = net.space
    index = _candidate_index(net, widths)
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
        sn = net.layer_of_node(i)
        if node.layer and sn is not None:
            cols = columns(node.src[0]) if node.kind.reads_channels else None
            node.kind.inherit(node, sn, InheritContext(model, space, list(widths), index, cols))
