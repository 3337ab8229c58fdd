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

Anything else raises a one-line ``UsageError`` naming the layer.
"""

from nce_tf.errors import UsageError
from nce_tf.search.candidates import MAX_CANDIDATES, candidate_widths
from nce_tf.search.ops import INPUT, Add, Classifier, Concat, Conv, Input
from nce_tf.search.ops.keras_args import RELU_ACTIVATIONS, activation_name
from nce_tf.search.space import Node, Row, SearchSpace

PASS_THROUGH = ("Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "ActivityRegularization")
SUPPORTED = ("InputLayer", "Conv2D", "QuantConv2D", "DepthwiseConv2D", "QuantDepthwiseConv2D", "Dense",
             "QuantDense", "BatchNormalization", "ReLU", "Activation", "QuantActivation", "Add", "Concatenate",
             "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten",
             *PASS_THROUGH)


def _fail(ref, why):
    raise UsageError(f"adapt() cannot adapt layer {ref.name!r} ({ref.kind}): {why}.")


def _square(ref, value, what):
    value = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(set(value)) != 1:
        _fail(ref, f"the search needs square {what}, received {what}={value}")
    return int(value[0])


def _check_conv(ref):
    layer = ref.layer
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        _fail(ref, "only channels_last is supported")
    if tuple(getattr(layer, "dilation_rate", (1, 1))) not in ((1, 1), (1,)):
        _fail(ref, f"dilated convolutions are not supported, received dilation_rate={layer.dilation_rate}")
    if getattr(layer, "groups", 1) != 1:
        _fail(ref, f"grouped convolutions are not supported, received groups={layer.groups}")
    if getattr(layer, "depth_multiplier", 1) != 1:
        _fail(ref, f"depth_multiplier must be 1, received depth_multiplier={layer.depth_multiplier}")
    return _square(ref, layer.kernel_size, "kernel_size"), _square(ref, layer.strides, "strides")


def _area(shape):
    return int(shape[0]) * int(shape[1]) if len(shape) == 3 else 1


class _Builder:
    def __init__(self, refs, frozen):
        self.refs = {r.name: r for r in refs}
        self.order = refs
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

    def only_consumer(self, name):
        mine = self.consumers.get(name, [])
        return mine[0] if len(mine) == 1 else None

    def activation_after(self, ref, x, fn):
        """A node for an activation folded into a conv / dense layer's config."""
        name = activation_name(fn)
        if not name:
            return x
        if name in RELU_ACTIVATIONS:
            return self.add(name=f"{ref.name}_act", op="act", src=(x,), layer=ref.name)
        return self.add(name=f"{ref.name}_{name}", op="fn", src=(x,), fn=name, layer=ref.name)


def _build_nodes(b, output_name):
    for ref in b.order:
        kind, layer = ref.kind, ref.layer
        if ref.layer is None:  # the input
            if len(ref.shape) != 3 or any(d is None for d in ref.shape):
                raise UsageError(f"adapt() needs image inputs of a known size (H, W, C): the cost depends on "
                                 f"it. Received: input shape {ref.shape}.")
            b.node_of[ref.name] = b.add(name=ref.name, op="input", area=_area(ref.shape), layer=ref.name)
            continue
        if kind == "Reshape":
            _fail(ref, "its target shape depends on the channel count, which the search changes "
                  "(use Flatten or global pooling)")
        if kind not in SUPPORTED:
            _fail(ref, "unknown layer type; supported: " + ", ".join(SUPPORTED))
        src = b.src(ref)
        if kind in ("Conv2D", "QuantConv2D", "DepthwiseConv2D", "QuantDepthwiseConv2D"):
            k, s = _check_conv(ref)
            depthwise = "Depthwise" in kind
            bn_ref = b.only_consumer(ref.name)
            fused_bn = (not depthwise and bn_ref is not None and bn_ref.kind == "BatchNormalization"
                        and activation_name(layer.activation) == "")
            reads_image = isinstance(b.nodes[src[0]].kind, Input)
            node = b.add(name=ref.name, op="dwconv" if depthwise else "conv", src=src, kernel=k, stride=s,
                         area=_area(ref.shape), padding=layer.padding.upper(), use_bn=fused_bn,
                         use_bias=bool(layer.use_bias), role="first" if reads_image else "body", layer=ref.name)
            if not depthwise:
                b.searchable.add(node)
            x = node
            if fused_bn:
                b.nodes[node].epsilon = float(bn_ref.layer.epsilon)
            x = b.activation_after(ref, x, layer.activation)
            b.node_of[ref.name] = x
            if fused_bn:
                b.node_of[bn_ref.name] = x
        elif kind == "BatchNormalization":
            if ref.name in b.node_of:
                continue  # folded into its conv
            if b.refs[ref.inputs[0]].kind in ("Conv2D", "QuantConv2D"):
                _fail(ref, "a BatchNormalization after a conv must be that conv's only consumer, and the conv "
                      "must have no activation of its own")
            b.node_of[ref.name] = b.add(name=ref.name, op="bn", src=src, epsilon=float(layer.epsilon), layer=ref.name)
        elif kind in ("Dense", "QuantDense"):
            if len(b.refs[ref.inputs[0]].shape) != 1:
                _fail(ref, "a Dense layer must read a flat vector (after Flatten or global pooling), "
                      f"received input shape {b.refs[ref.inputs[0]].shape}")
            if ref.name == output_name:
                node = b.add(name=ref.name, op="dense", src=src, use_bias=bool(layer.use_bias), layer=ref.name)
                b.node_of[ref.name] = node  # a softmax here is dropped: the search trains on logits
            else:
                node = b.add(name=ref.name, op="fc", src=src, use_bias=bool(layer.use_bias), use_bn=False,
                             layer=ref.name)
                b.searchable.add(node)
                b.node_of[ref.name] = b.activation_after(ref, node, layer.activation)
        elif kind in ("ReLU", "QuantActivation") or (kind == "Activation"
                                                      and activation_name(layer.activation) in RELU_ACTIVATIONS):
            if kind == "ReLU" and (layer.negative_slope or layer.threshold):
                _fail(ref, "a leaky or thresholded ReLU cannot become PACT")
            b.node_of[ref.name] = b.add(name=ref.name, op="act", src=src, layer=ref.name)
        elif kind == "Activation":
            b.node_of[ref.name] = b.add(name=ref.name, op="fn", src=src, fn=activation_name(layer.activation),
                                        layer=ref.name)
        elif kind == "Add":
            b.node_of[ref.name] = b.add(name=ref.name, op="add", src=src, area=_area(ref.shape), layer=ref.name)
        elif kind == "Concatenate":
            if layer.axis not in (-1, 3):
                _fail(ref, f"only channel concatenation is supported, received axis={layer.axis}")
            b.node_of[ref.name] = b.add(name=ref.name, op="concat", src=src, layer=ref.name)
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            p = _square(ref, layer.pool_size, "pool_size")
            s = _square(ref, layer.strides, "strides")
            b.node_of[ref.name] = b.add(name=ref.name, op="maxpool" if kind[0] == "M" else "avgpool", src=src,
                                        pool=p, kernel=p, stride=s, padding=layer.padding.upper(),
                                        area=_area(ref.shape), layer=ref.name)
        elif kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            if getattr(layer, "keepdims", False):
                _fail(ref, "keepdims=True is not supported")
            b.node_of[ref.name] = b.add(name=ref.name, op="gap" if "Average" in kind else "gmaxpool", src=src,
                                        layer=ref.name)
        elif kind == "Flatten":
            b.node_of[ref.name] = b.add(name=ref.name, op="flatten", src=src, layer=ref.name)
        else:  # PASS_THROUGH
            b.node_of[ref.name] = b.add(name=ref.name, op="identity", src=src, layer=ref.name)


def _fresh_conv(b, node_index, consumers):
    """The conv feeding ``node_index`` through single-consumer BN / activation nodes, else None."""
    i = node_index
    while b.nodes[i].kind.transparent and consumers[i] == 1:
        i = b.nodes[i].src[0]
    return i if isinstance(b.nodes[i].kind, Conv) and consumers[i] == 1 else None


def _follows_input(node):
    """Whether the node's width is its first input's (a concatenation's is a sum; the
    classifier's is the number of classes)."""
    return not isinstance(node.kind, (Concat, Classifier))


def build_adapted_space(refs, *, num_classes, input_shape, name, frozen=(), search_first=False, lane=1,
                        keras_name=None):
    """The :class:`SearchSpace` of a user graph (see the module doc) and the layer -> row map."""
    output_name = refs[-1].name
    if refs[-1].kind not in ("Dense", "QuantDense"):
        raise UsageError(f"adapt() needs a Dense classifier as the model's output. Received: layer "
                         f"{output_name!r} ({refs[-1].kind}).")
    names = {r.name for r in refs}
    unknown = sorted(set(frozen) - names)
    if unknown:
        raise UsageError(f"Unknown layer in frozen. Received: frozen={unknown}. Allowed: the model's layer names.")
    b = _Builder(refs, frozen)
    _build_nodes(b, output_name)
    for node in b.nodes:  # spatial sizes of the nodes added for folded activations
        if not node.area and node.src and not node.kind.flat_output:
            node.area = b.nodes[node.src[0]].area
    consumers = [0] * len(b.nodes)
    for node in b.nodes:
        for s in node.src:
            consumers[s] += 1
    # Ties: the fresh convs of one add share the first one's row; later ones are its shortcuts.
    tie = {}
    for node in b.nodes:
        if not isinstance(node.kind, Add):
            continue
        fresh = [_fresh_conv(b, s, consumers) for s in node.src]
        convs = sorted(f for f in fresh if f is not None)
        for f in convs[1:]:
            tie[f] = tie.get(convs[0], convs[0])
        # Order the add's inputs as (main, ...): the main branch's row is the add's width.
        main = min(range(len(fresh)), key=lambda k: (fresh[k] is None, fresh[k] or 0))
        node.src = (node.src[main],) + tuple(s for k, s in enumerate(node.src) if k != main)
        node.proj_area = node.area if any(f is None for f in fresh) else 0
    rows, row_index = [], {}
    for i, node in enumerate(b.nodes):
        if i not in b.searchable or i in tie:
            continue
        layer = b.refs[node.layer].layer
        n = int(layer.filters if isinstance(node.kind, Conv) else layer.units)
        pinned = node.layer in b.frozen or (node.role == "first" and not search_first)
        row_index[i] = len(rows)
        rows.append(Row(node.layer, n, [n] * MAX_CANDIDATES if pinned else candidate_widths(n, lane), pinned))
    for i, root in tie.items():
        row_index[i] = row_index[root]
        b.nodes[i].role = "shortcut" if b.nodes[i].role != "first" else "first"
        if b.nodes[i].layer in b.frozen:
            rows[row_index[root]].frozen = True
            rows[row_index[root]].candidates = [rows[row_index[root]].n] * MAX_CANDIDATES
    for i, node in enumerate(b.nodes):
        if i in row_index:
            node.row = row_index[i]
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
