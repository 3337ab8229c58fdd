"""A model's search space as a small graph: rows (searchable widths) and nodes.

A **row** is one searchable conv: its original width ``n``, its 16 candidate widths and
the layer name it sets (for a zoo model ``nce_tf.models.width_names``): one alpha row per
entry of the model's width list.  A **node** is one operation in topological order:

- ``input`` (3 channels), ``conv`` (output width from its row; a shortcut conv reuses its
  block's last row), ``act``, ``avgpool`` / ``maxpool``, ``add``, ``gap``, ``dense``, and
  the ops of users' models (``dwconv``, ``bn``, ``fc``, ``concat``, ``flatten``, ...).

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

INPUT = -1  # the "row" of the 3-channel image


@dataclasses.dataclass
class Row:
    name: str
    n: int
    candidates: list
    frozen: bool = False  # a pinned layer: every candidate is ``n`` and it never expands


@dataclasses.dataclass
class Node:
    name: str
    op: str
    src: tuple = ()
    row: int = INPUT  # conv / fc: its width row; other ops: the row their output width follows
    kernel: int = 1
    stride: int = 1
    hw: int = 0  # output spatial size (square); ``area`` overrides ``hw**2`` when set
    role: str = "body"  # conv: first | body | shortcut
    act: bool = False  # conv: followed by an activation node (informational)
    proj_hw: int = 0  # add: spatial size of the derived net's projection if widths differ
    area: int = 0  # output H * W (adapted models; 0 = ``hw**2``)
    proj_area: int = 0  # add: H * W of the projection (adapted models; 0 = ``proj_hw**2``)
    padding: str = ""  # conv / pooling padding ("" = the zoo's: SAME for convs and max pools)
    pool: int = 0  # pooling window (0 = the zoo's: ``kernel`` for max pools, 2 for average pools)
    use_bn: bool = True  # conv: followed by a BatchNormalization (folded into the search layer)
    use_bias: bool = False  # conv / dwconv / dense: has a bias
    fn: str = ""  # op "fn": the Keras activation it applies (a non-ReLU activation)
    layer: str = ""  # adapted models: the name of the user's layer this node stands for
    epsilon: float = 1e-5  # BN epsilon (conv with BN, bn): the user's, in adapted models

    @property
    def out_area(self):
        return self.area or self.hw**2


# Ops whose output carries exactly the channels of their (first) input.
FOLLOW_OPS = ("act", "fn", "avgpool", "maxpool", "gmaxpool", "identity", "dwconv", "bn")


class SearchSpace:
    """Rows and nodes of one model's channel search space.

    The cost of a derived network is read off the graph as three kinds of terms in the row
    widths ``C`` (index ``-1`` is the image's channels):

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
            if node.op == "input":
                out.append([INPUT])
            elif node.op in ("conv", "fc", "add"):
                out.append([node.row])
            elif node.op == "concat":
                out.append([r for s in node.src for r in out[s]])
            else:  # follow ops, gap, flatten
                out.append(out[node.src[0]])
        return out

    def _spatial(self):
        """Per node, how many values one channel contributes to a dense layer reading it."""
        out = []
        for node in self.nodes:
            if node.op == "flatten":
                out.append(self.nodes[node.src[0]].out_area)
            else:
                reset = node.op in ("gap", "gmaxpool", "fc", "dense")  # one value per channel again
                out.append(out[node.src[0]] if node.src and not reset else 1)
        return out

    def _tables(self):
        """Flat arrays of the cost terms (see the class doc)."""
        widths, spatial = self.width_rows(), self._spatial()
        bi, lin, proj = [], [], []  # (in, out, macs, params), (row, macs, params), (in, out, hw)
        const_macs = const_params = 0
        self.last_row = INPUT
        for node in self.nodes:
            src = node.src[0] if node.src else None
            extra = (2 if node.use_bn else 0) + (1 if node.use_bias else 0)
            if node.op == "conv":
                k2 = node.kernel**2
                bi += [(r, node.row, k2 * node.out_area, k2) for r in widths[src]]
                lin.append((node.row, 0, extra))
            elif node.op == "dwconv":
                k2 = node.kernel**2
                lin += [(r, k2 * node.out_area, k2 + (1 if node.use_bias else 0)) for r in widths[src]]
            elif node.op == "bn":
                lin += [(r, 0, 2) for r in widths[src]]
            elif node.op == "add" and (node.proj_hw or node.proj_area):
                area, main = node.proj_area or node.proj_hw**2, widths[node.src[0]][0]
                # Each other input of another row gets a projection when the widths differ
                # (a shortcut conv tied to the main row never does).
                proj += [(widths[o][0], main, area) for o in node.src[1:] if widths[o][0] != main]
            elif node.op == "fc":  # a searchable hidden dense layer
                m = spatial[src]
                bi += [(r, node.row, m, m) for r in widths[src]]
                lin.append((node.row, 0, 1 if node.use_bias else 0))
            elif node.op == "dense":  # the classifier
                m, units = spatial[src], self.num_classes
                lin += [(r, m * units, m * units) for r in widths[src]]
                const_params += units if node.use_bias else 0
                self.last_row = widths[src][0]
        cols = lambda terms, n, dt: [np.array([t[i] for t in terms], dt) for i in range(n)]  # noqa: E731
        self.bi_in, self.bi_out, self.bi_macs, self.bi_params = cols(bi, 4, "int64")
        self.lin_row, self.lin_macs, self.lin_params = cols(lin, 3, "int64")
        self.proj_in, self.proj_out, self.proj_area = cols(proj, 3, "int64")
        self.const_macs, self.const_params = int(const_macs), int(const_params)

    def exact_cost(self, widths):
        """Exact ``(macs, params)`` of the derived network with ``widths`` (Python ints)."""
        w = [int(v) for v in widths] + [self.input_channels]  # index -1 (INPUT) reads the image
        macs, params = self.const_macs, self.const_params
        for i, o, m, p in zip(self.bi_in, self.bi_out, self.bi_macs, self.bi_params):
            macs += int(m) * w[i] * w[o]
            params += int(p) * w[i] * w[o]
        for r, m, p in zip(self.lin_row, self.lin_macs, self.lin_params):
            macs += int(m) * w[r]
            params += int(p) * w[r]
        for i, o, a in zip(self.proj_in, self.proj_out, self.proj_area):
            if w[i] != w[o]:
                macs += int(a) * w[i] * w[o]
                params += w[i] * w[o] + 2 * w[o]
        return macs, params
