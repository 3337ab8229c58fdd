"""A model's search space as a small graph: rows (searchable widths) and nodes.

A **row** is one searchable conv: its original width ``n``, its 16 candidate widths and
the layer name it sets (for a zoo model ``nce_tf.models.width_names``): one alpha row per
entry of the model's width list.  A **node** is one operation in topological order:

- ``input`` (3 channels), ``conv`` (output width from its row; a shortcut conv reuses its
  block's last row), ``act``, ``avgpool`` / ``maxpool``, ``add``, ``gap``, ``dense``,
  ``dwconv``, ``bn``, ``fc``, ``concat``, ``flatten``, ...: each op's rules are its class in
  :mod:`nce_tf.search.ops`.

Every node's width in the *derived* network is the width of one row (or the 3 input
channels): a conv's own row, an add's main branch (a block whose identity input has
another width gets a 1x1 projection in the derived net, costed here as ``proj`` terms).
The same graph drives the supernet's forward pass, its expected cost (from softmax(alpha))
and the exact cost of any width list, so the three cannot disagree.

Spaces are built by the adapter (:mod:`nce_tf.adapter.space`) from a Keras graph, a zoo
model's included (:func:`nce_tf.sources.build_space`).

Example:

>>> from nce_tf.sources import build_space
>>> space = build_space("resnet20")
>>> len(space.rows), space.exact_cost(space.default_widths())
(19, (40813184, 272474))
"""

import dataclasses

import numpy as np

from nce_tf.search.ops import INPUT, CostTerms, op_of
from nce_tf.search.units.base import Coefficients


@dataclasses.dataclass
class Row:
    name: str
    n: int
    candidates: list
    frozen: bool = False  # a pinned layer: every candidate is ``n`` and it never expands


@dataclasses.dataclass
class Node:
    """One op of the graph; which fields matter depends on the op (:mod:`nce_tf.search.ops`)."""

    name: str
    op: str
    src: tuple = ()
    row: int = INPUT  # conv / fc: its width row; other ops: the row their output width follows
    kernel: int = 1
    stride: int = 1
    role: str = "body"  # conv: first | body | shortcut
    area: int = 0  # output H * W
    proj_area: int = 0  # add: H * W of the derived net's projection if widths differ (0: never)
    padding: str = ""  # conv / pooling padding ("" = SAME for convs and max pools, VALID for average)
    pool: int = 0  # pooling window (0 = ``kernel`` for max pools, 2 for average pools)
    use_bn: bool = True  # conv: followed by a BatchNormalization (folded into the search layer)
    use_bias: bool = False  # conv / dwconv / dense: has a bias
    fn: str = ""  # op "fn": the Keras activation it applies (a non-ReLU activation)
    layer: str = ""  # the name of the Keras layer this node stands for
    epsilon: float = 1e-5  # BN epsilon (conv with BN, bn): the model's own
    args: dict = dataclasses.field(default_factory=dict)  # an op's own arguments read off its Keras layer

    @property
    def out_area(self):
        return self.area

    @property
    def kind(self):
        """The op object of this node (:func:`nce_tf.search.ops.op_of`)."""
        return op_of(self)


class SearchSpace:
    """Rows and nodes of one model's channel search space.

    The cost of a derived network is read off the graph as three kinds of terms in the row
    widths ``C`` (index ``-1`` is the image's channels), each op adding its own
    (``Op.add_cost``):

    - bilinear ``m * C_i * C_o`` (a conv or dense from row ``i`` to row ``o``),
    - linear ``m * C_r`` (BN, biases, depthwise convs, the classifier),
    - projections ``hw * C_i * C_o`` counted only when ``C_i != C_o`` (a residual add whose
      identity input has another width: the derived net inserts a 1x1 conv + BN there),

    plus constants (the classifier's bias).  ``exact_cost`` and the super-net's expected cost
    (:class:`~nce_tf.search.cost_model.CostModel`) evaluate the same terms.
    """

    def __init__(self, model, rows, nodes, num_classes, input_shape, source=None, lane=1, keras_name=None):
        self.model, self.rows, self.nodes = model, rows, nodes
        self.keras_name = keras_name or model  # what Keras networks built from it are named after
        self.lane = int(lane)  # candidate widths are multiples of it (``search_table`` reads it)
        self.num_classes, self.input_shape = num_classes, tuple(input_shape)
        self.source = source  # adapted models: the user's graph, to rebuild a derived network
        self.candidates = np.array([r.candidates for r in rows], "int32")  # [L, 16], the NCE grid
        self._tables()

    @property
    def input_channels(self):
        return int(self.input_shape[-1])

    def default_widths(self):
        return [r.n for r in self.rows]

    def width_rows(self):
        """Per node, the rows whose widths sum to its channel count in the derived network."""
        out = []
        for node in self.nodes:
            out.append(node.kind.width_rows(node, [out[s] for s in node.src]))
        return out

    def on_grid(self):
        """Per node, whether its output holds only an activation quantizer's levels (``Op.on_grid``)."""
        out = []
        for node in self.nodes:
            out.append(bool(node.kind.on_grid(node, [out[s] for s in node.src])))
        return out

    def _spatial(self):
        """Per node, how many values one channel contributes to a dense layer reading it."""
        out = []
        for node in self.nodes:
            out.append(node.kind.spatial(node, [out[s] for s in node.src], self.nodes))
        return out

    def _tables(self):
        """Flat arrays of the cost terms (see the class doc)."""
        terms = CostTerms(self.width_rows(), self._spatial(), self.num_classes)
        for node in self.nodes:
            node.kind.add_cost(node, terms)
        self.terms = terms  # with each term's role and input: what memory and BOPs read (``units``)
        cols = lambda terms, n, dt: [np.array([t[i] for t in terms], dt) for i in range(n)]  # noqa: E731
        self.bi_in, self.bi_out, self.bi_macs, self.bi_params = cols(terms.bi, 4, "int64")
        self.lin_row, self.lin_macs, self.lin_params = cols(terms.lin, 3, "int64")
        self.proj_in, self.proj_out, self.proj_area = cols(terms.proj, 3, "int64")
        self.const_macs, self.const_params = 0, int(terms.const_params)
        ones = np.ones(len(self.proj_in), "int64")
        self._coefficients = {  # a projection: a 1x1 kernel C_i C_o and the BN after it, 2 C_o
            "macs": Coefficients(self.bi_macs, self.lin_macs, self.proj_area, 0 * ones, self.const_macs),
            "params": Coefficients(self.bi_params, self.lin_params, ones, 2 * ones, self.const_params)}

    def coefficients(self):
        """MACs and PARAMs as :class:`~nce_tf.search.units.Coefficients` of the cost terms (the units
        :mod:`nce_tf.search.units` read them; memory and BOPs are counted there)."""
        return dict(self._coefficients)

    def exact(self, widths, coef):
        """Exact cost of the derived network with ``widths`` in one unit (``coef``: its
        :class:`~nce_tf.search.units.Coefficients`),
        in Python ints (before ``coef.scale``)."""
        w = [int(v) for v in widths] + [self.input_channels]  # index -1 (INPUT) reads the image
        total = int(coef.const)
        for i, o, c in zip(self.bi_in, self.bi_out, coef.bi):
            total += int(c) * w[i] * w[o]
        for r, c in zip(self.lin_row, coef.lin):
            total += int(c) * w[r]
        for i, o, c_prod, c_out in zip(self.proj_in, self.proj_out, coef.proj_prod, coef.proj_out):
            if w[i] != w[o]:
                total += int(c_prod) * w[i] * w[o] + int(c_out) * w[o]
        return total

    def exact_cost(self, widths):
        """Exact ``(macs, params)`` of the derived network with ``widths`` (Python ints)."""
        coef = self.coefficients()
        return self.exact(widths, coef["macs"]), self.exact(widths, coef["params"])
