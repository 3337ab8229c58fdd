"""What every op of a search graph owns, and the registry that finds an op by its name.

A :class:`~nce_tf.search.space.Node` names its op (``node.op``, a string, so a space stays a plain
record); :func:`op_of` returns the op object that knows what the node means.  An op owns, for its
nodes:

- its **width rule** (``width_rows``): which rows' widths make up its output channels;
- its **spatial rule** (``spatial``): how many values one channel contributes to a dense layer
  reading it (a flatten spreads each channel over its input's positions);
- its **cost terms** (``add_cost``): bilinear, linear and projection terms in the row widths
  (:class:`~nce_tf.search.space.SearchSpace`), each naming the role of its weights and the node it
  reads, so memory and BOPs can count it at its own bits (:mod:`nce_tf.search.units`);
- whether its output holds only an activation quantizer's levels (``on_grid``): the input bits
  of the layers reading it in BOPs;
- its **super-net layer** (``make_layer``), **forward** (``call``) and the coupled L2 of the
  weights a forward used (``l2``), and where each row's channels sit in its output (``layout``);
- for an op with weights per input channel, how an expansion re-initialises the new input
  channels (``reset_inputs``);
- for adapted models, its **derived Keras layer** (``derive``) and how the super-net's weights
  are copied into it (``inherit``);
- its **Keras side**: the Keras layer types it reads (``keras_types``; :func:`keras_op` finds the
  op of a layer), and what a trained layer of those types means to each reader of Keras models:
  the adapter's nodes (``from_keras``), the Keras cost count (``keras_cost``, ``keras_bits``),
  float initialisation's channel layout and weight copy (``float_kind``, ``keras_layout``) and
  its piece of the int8 TFLite graph (``export_step``).  No module outside this package tests
  Keras layer classes (``tests/test_layering.py`` checks it).

Adding an op, or a Keras layer type, is one subclass registered with :func:`register` (and a test).

Example:

>>> from nce_tf.search.ops import op_of
>>> from nce_tf.search.space import Node
>>> op = op_of(Node(name="c", op="conv", row=0))
>>> type(op).__name__, op.has_row
('Conv', True)
"""

import abc
import dataclasses

import keras

OPS = {}
KERAS_OPS = {}  # Keras layer class -> the op that reads it (its ``keras_types``)


def register(cls):
    """Class decorator: registers one instance of an :class:`Op` subclass under ``cls.kind``, and as
    the reader of each of its ``keras_types`` (a type read by two ops is a ``ValueError``)."""
    op = cls()
    taken = [t.__name__ for t in cls.keras_types if t in KERAS_OPS and type(KERAS_OPS[t]) is not cls]
    if taken:
        raise ValueError(f"Keras layer types read by another op. Received: {taken} in {cls.__name__}.")
    OPS[cls.kind] = op
    for t in cls.keras_types:
        KERAS_OPS[t] = op
    return cls


def keras_op(layer, exact=False):
    """The op that reads the Keras ``layer`` (``None`` if none does).

    ``exact=False`` reads a subclass as its nearest registered base class (``isinstance``, what the
    cost count and the export want); ``exact=True`` reads only the registered classes themselves
    (the adapter: a user's ``Conv2D`` subclass may compute something else in its ``call``).
    """
    if exact:
        return KERAS_OPS.get(type(layer))
    for cls in type(layer).__mro__:
        if cls in KERAS_OPS:
            return KERAS_OPS[cls]
    return None


def op_of(node):
    """The op object of ``node`` (a ``ValueError`` naming the op if none is registered)."""
    try:
        return OPS[node.op]
    except KeyError:
        raise ValueError(f"Unknown op of node {node.name!r}. Received: op={node.op!r}. "
                         f"Allowed: {sorted(OPS)}.") from None


@dataclasses.dataclass
class CostTerms:
    """The cost terms of a space, collected op by op (see ``SearchSpace``'s doc).

    ``widths[i]`` / ``spatial[i]``: node ``i``'s width rows and values per channel.  Besides its
    MACs and parameters, every term records what memory and BOPs need (:mod:`nce_tf.search.units`):
    how many of its parameters are kernel weights (counted at the role's weight bits; the rest,
    BN and biases, at 32), the role, and the node whose output it reads (its input bits).
    """

    widths: list
    spatial: list
    num_classes: int
    bi: list = dataclasses.field(default_factory=list)  # (row in, row out, macs, params, role, src) per product
    lin: list = dataclasses.field(default_factory=list)  # (row, macs, params, kernel params, role, src) per width
    proj: list = dataclasses.field(default_factory=list)  # (row in, row out, H * W, src) per projection
    const_params: int = 0

    def bilinear(self, node, row_in, macs, kernel, role=None):
        """A kernel of ``kernel * C_in * C_out`` weights and ``macs * C_in * C_out`` MACs."""
        self.bi.append((row_in, node.row, macs, kernel, role or node.role, node.src[0]))

    def linear(self, node, row, macs=0, kernel=0, other=0, role=None):
        """``macs * C`` MACs, ``kernel * C`` kernel weights and ``other * C`` BN / bias parameters."""
        self.lin.append((row, macs, kernel + other, kernel, role or node.role, node.src[0]))


@dataclasses.dataclass
class Forward:
    """What one super-net forward hands every op: the pair sample, the mode and the super-net."""

    sample: tuple  # (widths [L, 2], index [L, 2], mix [L, 2])
    training: bool
    net: object


class Op(abc.ABC):
    """An op whose output carries exactly the channels of its first input (the default rules).

    Attributes:
        kind: the ``node.op`` string it is registered under.
        has_row: its output width is a row of its own (a searchable conv or dense layer).
        reads_channels: it holds weights per input channel (an expansion re-initialises the
            new ones).
        flat_output: its output has no spatial dimensions.
        transparent: keeps a conv branch "fresh" for the adapter's residual ties (BN and
            activations between a conv and an add).
        layer_group: which of the super-net's layer lists tracks its layer (``conv``, ``act``,
            ``other`` or ``dense``); the lists' names are checkpoint paths, kept stable.
        image_side: may stand between the image and the first conv without making it a body
            conv (zero padding, rescaling): a conv reading the image through such ops is ``first``.
    """

    kind = ""
    has_row = False
    reads_channels = False
    flat_output = False
    transparent = False
    layer_group = None
    image_side = False

    # ------------------------------------------------------------------ graph rules
    def width_rows(self, node, srcs):
        """Rows whose widths sum to the node's channels, from its inputs' (``srcs``)."""
        return srcs[0]

    def spatial(self, node, srcs, nodes):
        return 1 if self.flat_output or not node.src else srcs[0]

    def add_cost(self, node, terms):
        """Appends the node's cost terms to ``terms`` (a :class:`CostTerms`); none by default."""

    def on_grid(self, node, srcs):
        """True when every value of the node's output is a level of an activation quantizer (from
        its inputs': ``srcs``); an op that computes new values (a sum, a mean) leaves the grid."""
        return False

    # ------------------------------------------------------------------ super-net
    def layout(self, node, srcs, net):
        """``(segments, spatial)`` of the node's output in the super-net (``SuperNet._node_layouts``)."""
        return srcs[0]

    def make_layer(self, node, net, src_max, src_spatial):
        """The super-net layer of ``node`` (``None``: weightless)."""
        return None

    @abc.abstractmethod
    def call(self, node, layer, inputs, run):
        """The node's output in the super-net from its inputs' (``run``: a :class:`Forward`); every
        op defines it, so an op class without it fails when it is registered."""

    def l2(self, node, layer, inputs, run):
        """The coupled L2 of the weights the node's last forward used (0 for weightless ops)."""
        return 0.0

    def reset_inputs(self, layer, lo, hi, total, spatial, fresh):
        """Fresh weights for input channels ``[lo, hi)`` of ``layer`` (``fresh``: expansion's helper)."""

    # ------------------------------------------------------------------ derived network
    def derive(self, node, ref, x, ctx):
        """The derived network's output for the user's layer ``ref`` (default: the layer as it is)."""
        return type(ref.layer).from_config(ref.layer.get_config())(x)

    def derive_folded(self, node, ref, x, ctx):
        """The derived network's output for a user layer ``ref`` that ``node`` folded in when it was
        read (``b.node_of[ref.name]`` set to ``node`` by this op's ``from_keras``): by default the
        layer rebuilt from its config after the node's own (a BatchNormalization after its conv)."""
        return type(ref.layer).from_config(ref.layer.get_config())(x)

    def inherit(self, node, sn_layer, ctx):
        """Copies the super-net layer's weights into the derived layer of ``node``; none by default."""

    # ------------------------------------------------------------------ Keras side
    keras_types = ()  # the Keras layer classes this op reads (subclasses too, unless ``exact``)

    def from_keras(self, ref, b):
        """Adds the node(s) standing for the user's layer ``ref`` (a ``LayerRef``) to the adapter's
        builder ``b`` and sets ``b.node_of[ref.name]`` to the node of its output (default: one node
        of this op's kind reading the layer's inputs)."""
        b.node_of[ref.name] = b.add(name=ref.name, op=self.kind, src=b.src(ref), layer=ref.name)

    def keras_cost(self, layer, count):
        """Reports a built layer's MACs and parameters to the Keras count (``count.weighted``,
        ``count.bn``: :func:`nce_tf.cost.count_model`); a weightless layer reports nothing."""

    def keras_bits(self, layer, count):
        """The bits of the layer's output values in the Keras count (the input bits of the layers
        reading it): ``count.float_bits`` unless it holds an activation quantizer's levels (the
        Keras twin of :meth:`on_grid`; ``count.input_bits(layer)`` are its inputs')."""
        return count.float_bits

    def float_kind(self, layer):
        """What float initialisation copies into a layer of this op: ``"producer"`` (a kernel whose
        last axis is its own output channels), ``"depthwise"`` / ``"bn"`` (vectors or a kernel per
        input channel), ``"act"`` (a PACT clip), ``"add"`` / ``"concat"`` / ``"flatten"`` (weightless,
        shaping the channel layout) or ``"pass"`` (weightless, its input's channels); ``None``: it
        cannot be matched (a grouped conv)."""
        return "pass"

    def keras_layout(self, ref, ins, lay):
        """The channel layout of the layer's output from its inputs' (``ins``) in float
        initialisation (``lay``: its graph, with ``own``, ``tie``, ``concat``, ``spread``)."""
        return ins[0]

    def export_step(self, layer, plan):
        """The layer's piece of the int8 TFLite graph: a function of ``plan``'s tensor values run in
        graph order, or ``None`` (nothing to run: fused into a neighbour); ``plan.refuse(layer)`` by
        default (:func:`nce_tf.export.tflite_graph.build_graph`)."""
        plan.refuse(layer)


@dataclasses.dataclass
class DeriveContext:
    """What the derived-network builder hands the ops of an adapted space."""

    space: object
    widths: list
    policy: object
    weight_decay: object
    width_rows: list
    tensors: dict = dataclasses.field(default_factory=dict)

    def width(self, row):
        return self.widths[row] if row >= 0 else self.space.input_channels


@dataclasses.dataclass
class InheritContext:
    """What ``inherit_weights`` hands the ops: the derived model, the widths, the chosen candidates."""

    model: keras.Model
    space: object
    widths: list
    index: object  # per row, the chosen candidate (argmax of alpha)
    cols: object  # the super-net input channels of the node's input, in the derived layer's order
