"""A user's Keras CNN as an NCE search space: the same rows-and-nodes graph the zoo models use.

Rules (the zoo's residual rules, applied to any graph):

- every ``Conv2D`` and hidden ``Dense`` gets a **row** (candidates ``j n / 8``, expandable to
  2X); a ``BatchNormalization`` that is its conv's only consumer is folded into the search
  conv (one BN per candidate, as in TAS);
- a ``DepthwiseConv2D`` has no row: its width follows its input (and a BN after it is one
  shared per-channel BN);
- ``Add``: the convs that feed it only (through BN / activations: "fresh" convs) share one
  row (the first is the block's row, the others are its shortcuts, float by the paper's
  rule); an input that is used elsewhere too (an identity shortcut) gets a 1x1 conv + BN
  projection in the derived network wherever its width differs, counted in the cost only
  then; in the super-net a narrower input adds into the leading channels;
- ``Concatenate`` (channel axis): widths add up;
- pooling, global pooling, ``Flatten``, ``Dropout`` and activations keep their input's width;
  ReLU and ReLU6 sites become PACT activations (``QuantPolicy``), other activations stay;
- the conv(s) reading the image are ``first`` (float by default) and pinned unless
  ``search_first``; the output ``Dense`` is the classifier (float by default, its width the
  number of classes); ``frozen`` pins more layers (one candidate: their own width).

Each layer is read by the op registered for its exact Keras type (``Op.from_keras``,
:func:`nce_tf.search.ops.keras_op`): a new layer type is one op class.  Anything else raises a
one-line ``UsageError`` naming the layer.
"""

from nce_tf.errors import UsageError
from nce_tf.search.candidates import MAX_CANDIDATES, candidate_widths
from nce_tf.search.ops import INPUT, OPS, Add, Classifier, Concat, Conv, Gate, Input
from nce_tf.search.ops.keras_args import RELU_ACTIVATIONS, activation_name, relu_args
from nce_tf.search.ops.keras_read import reader_of
from nce_tf.search.space import Node, Row, SearchSpace


class _Builder:
    """What the ops' ``from_keras`` read a user's graph into: the nodes, and which node stands for
    each layer's output (``node_of``)."""

    def __init__(self, refs, frozen):
        self.refs = {r.name: r for r in refs}
        self.order = refs
        self.output_name = refs[-1].name
        self.frozen = set(frozen)
        self.nodes, self.node_of = [], {}  # node_of: layer name -> node index of its output
        self.searchable = set()  # conv / fc nodes, each a row before the ties at adds
        self.consumers = {}  # layer name -> the refs reading its output, once per input slot
        for r in refs:
            for name in r.inputs:
                self.consumers.setdefault(name, []).append(r)

    def add(self, **kw):
        self.nodes.append(Node(**kw))
        return len(self.nodes) - 1

    def src(self, ref):
        return tuple(self.node_of[n] for n in ref.inputs)

    def consumer_counts(self):
        """Per node, how many input slots of other nodes read it."""
        counts = [0] * len(self.nodes)
        for node in self.nodes:
            for s in node.src:
                counts[s] += 1
        return counts

    def reads_image(self, node_index):
        """Whether the node is the image, or reads it through ``image_side`` ops only (padding,
        rescaling): a conv reading it is the network's ``first``."""
        node = self.nodes[node_index]
        while node.kind.image_side:
            node = self.nodes[node.src[0]]
        return isinstance(node.kind, Input)

    def only_consumer(self, name):
        mine = self.consumers.get(name, [])
        return mine[0] if len(mine) == 1 else None

    def activation_after(self, ref, x, fn):
        """A node for an activation folded into a conv / dense layer's config."""
        name = activation_name(fn)
        if not name:
            return x
        if name in RELU_ACTIVATIONS:
            return self.add(name=f"{ref.name}_act", op="act", src=(x,), layer=ref.name, args=relu_args(name))
        return self.add(name=f"{ref.name}_{name}", op="fn", src=(x,), fn=name, layer=ref.name)


def _build_nodes(b):
    """Every layer read by its op (``Op.from_keras``; the input's ``ref.layer`` is ``None``), but
    the layers an earlier layer's op folded into its node (a BN into its conv)."""
    for ref in b.order:
        if ref.name in b.node_of:
            continue
        op = OPS["input"] if ref.layer is None else reader_of(ref)
        op.from_keras(ref, b)


def _fresh_conv(b, node_index, consumers):
    """The conv feeding ``node_index`` through single-consumer BN / activation nodes, else None."""
    i = node_index
    while b.nodes[i].kind.transparent and consumers[i] == 1:
        i = b.nodes[i].src[0]
    return i if isinstance(b.nodes[i].kind, Conv) and consumers[i] == 1 else None


def _tie_adds(b):
    """Ties: the fresh convs of one add share the first one's row (later ones are its shortcuts);
    each add's inputs are ordered (main, ...), the main branch's row being the add's width.
    Returns ``{tied conv node: the node whose row it takes}``."""
    consumers = b.consumer_counts()
    tie = {}
    for node in b.nodes:
        if not isinstance(node.kind, Add):
            continue
        fresh = [_fresh_conv(b, s, consumers) for s in node.src]
        convs = sorted(f for f in fresh if f is not None)
        for f in convs[1:]:
            tie[f] = tie.get(convs[0], convs[0])
        main = min(range(len(fresh)), key=lambda k: (fresh[k] is None, fresh[k] or 0))
        node.src = (node.src[main],) + tuple(s for k, s in enumerate(node.src) if k != main)
        node.proj_area = node.area if any(f is None for f in fresh) else 0
    return tie


def _row_root(b, i, tie):
    """The row node (a conv or hidden dense layer) whose width node ``i``'s output follows, through
    the ops that keep their main input's width; ``None`` for the image or a concatenation."""
    while not b.nodes[i].kind.has_row:
        node = b.nodes[i]
        if not node.src or not _follows_input(node):
            return None
        i = node.src[0]
    return tie.get(i, i)


def _tie_gates(b, tie):
    """Squeeze-and-excitation: a gate's conv (``Gate``'s second input, through activations) takes
    the row of the tensor it gates, so its width follows its block's.  Returns ``{gate conv:
    the node whose row it takes}``; a gate that is not a conv used only by its multiply is refused."""
    consumers = b.consumer_counts()
    gates = {}
    for node in b.nodes:
        if not isinstance(node.kind, Gate):
            continue
        conv, root = _fresh_conv(b, node.src[1], consumers), _row_root(b, node.src[0], tie)
        if conv is None or root is None or conv in tie:
            raise UsageError(f"adapt() cannot adapt layer {node.layer!r} (Multiply): its gate must be a Conv2D "
                             "(through activations) used only by it, gating a tensor of one conv's width.")
        gates[conv] = gates.get(root, root)
    return gates


def _follows_input(node):
    """Whether the node's width is its first input's (a concatenation's is a sum; the
    classifier's is the number of classes)."""
    return not isinstance(node.kind, (Concat, Classifier))


def build_adapted_space(refs, *, num_classes, input_shape, name, frozen=(), search_first=False, lane=1,
                        keras_name=None):
    """The :class:`SearchSpace` of a user graph (see the module doc) and the layer -> row map."""
    output_name = refs[-1].name
    names = {r.name for r in refs}
    unknown = sorted(set(frozen) - names)
    if unknown:
        raise UsageError(f"Unknown layer in frozen. Received: frozen={unknown}. Allowed: the model's layer names.")
    b = _Builder(refs, frozen)
    _build_nodes(b)
    if not isinstance(b.nodes[b.node_of[output_name]].kind, Classifier):
        raise UsageError(f"adapt() needs a Dense classifier (or a 1x1 Conv2D classifier on a 1 x 1 map, then "
                         f"Flatten / Reshape and softmax) as the model's output. Received: layer "
                         f"{output_name!r} ({refs[-1].kind}).")
    for node in b.nodes:  # spatial sizes of the nodes added for folded activations
        if not node.area and node.src and not node.kind.flat_output:
            node.area = b.nodes[node.src[0]].area
    tie = _tie_adds(b)
    gates = _tie_gates(b, tie)
    rows, row_index = [], {}
    for i, node in enumerate(b.nodes):
        if i not in b.searchable or i in tie or i in gates:
            continue
        layer = b.refs[node.layer].layer
        n = int(layer.filters if isinstance(node.kind, Conv) else layer.units)
        pinned = node.layer in b.frozen or (node.role == "first" and not search_first)
        row_index[i] = len(rows)
        rows.append(Row(node.layer, n, [n] * MAX_CANDIDATES if pinned else candidate_widths(n, lane), pinned))
    for i, root in [*tie.items(), *gates.items()]:
        row_index[i] = row_index[root]
        if i in tie:  # a shortcut conv (float by the paper's rule); a gate's conv keeps its role
            b.nodes[i].role = "shortcut" if b.nodes[i].role != "first" else "first"
        if b.nodes[i].layer in b.frozen:
            rows[row_index[root]].frozen = True
            rows[row_index[root]].candidates = [rows[row_index[root]].n] * MAX_CANDIDATES
    for i, node in enumerate(b.nodes):
        if i in row_index:
            node.row = row_index[i]
    widths_of = {b.nodes[i].layer for i in row_index}
    not_rows = sorted(set(b.frozen) - widths_of)
    if not_rows:  # a BN, an activation, the classifier: nothing of theirs to pin (it was ignored)
        raise UsageError(f"frozen names a layer without a searchable width of its own. Received: frozen={not_rows}. "
                         f"Allowed: the searchable conv and dense layers: {', '.join(sorted(widths_of))}.")
    # Width rows of the nodes without a row of their own: their main input's (an add's is its
    # main branch, ordered first above).
    for node in b.nodes:
        if node.src and not node.kind.has_row and _follows_input(node):
            node.row = b.nodes[node.src[0]].row
    widths = SearchSpace(name, rows, b.nodes, num_classes, input_shape).width_rows()
    for node in b.nodes:
        if isinstance(node.kind, Add) and any(len(widths[s]) != 1 for s in node.src):
            raise UsageError(f"adapt() cannot adapt layer {node.layer!r} (Add): an input is a "
                             "concatenation; add the branches before concatenating.")
        if isinstance(node.kind, Input):
            node.row = INPUT
    if not any(not r.frozen for r in rows):
        raise UsageError(f"adapt() found nothing to search in {name!r}: every conv and dense layer is pinned. "
                         "Received: frozen=" + str(sorted(b.frozen)))
    return SearchSpace(name, rows, b.nodes, num_classes, input_shape, lane=lane, keras_name=keras_name,
                       source={"layer_row": {b.nodes[i].layer: r for i, r in row_index.items()},
                               "node_of": dict(b.node_of), "refs": refs})
