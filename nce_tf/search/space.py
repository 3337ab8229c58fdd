"""The search space of a zoo model as a small graph: rows (searchable widths) and nodes.

A **row** is one searchable conv: its original width ``n``, its 16 candidate widths and
the zoo layer name it sets (``nce_tf.models.width_names``): one alpha row per entry of
the model's width list.  A **node** is one operation in topological order:

- ``input`` (3 channels), ``conv`` (output width from its row; a shortcut conv reuses its
  block's last row), ``act``, ``avgpool`` / ``maxpool``, ``add``, ``gap``, ``dense``.

Every node's width in the *derived* network is the width of one row (or the 3 input
channels): a conv's own row, an add's main branch (a block whose identity input has
another width gets a 1x1 projection in the derived net, costed here as ``proj`` terms).
The same graph drives the supernet's forward pass, its expected cost (from softmax(alpha))
and the exact cost of any width list, so the three cannot disagree.

Example:

>>> from nce_tf.search.space import build_space
>>> space = build_space("resnet20")
>>> len(space.rows), space.exact_cost(space.default_widths())
(19, (40813184, 272474))
"""

import dataclasses

import numpy as np

from nce_tf.errors import UsageError
from nce_tf.models import zoo
from nce_tf.models.resnet_imagenet import LAYOUT as IMAGENET_LAYOUT
from nce_tf.models.vgg_cifar import GROUPS as VGG_GROUPS
from nce_tf.search.candidates import candidate_widths

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

    def __init__(self, model, rows, nodes, num_classes, input_shape, source=None, lane=1):
        self.model, self.rows, self.nodes = model, rows, nodes
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


class _Graph:
    """Helper that appends nodes and tracks rows while a family lays out its network."""

    def __init__(self, model, lane):
        self.model, self.lane = model, lane
        self.names = zoo.width_names(model)
        self.defaults = zoo.default_widths(model)
        self.rows, self.nodes = [], []

    def add(self, **kw):
        self.nodes.append(Node(**kw))
        return len(self.nodes) - 1

    def row(self, name):
        i = len(self.rows)
        if self.names[i] != name:
            raise AssertionError(f"space/zoo mismatch at row {i}: {name} vs {self.names[i]}")
        self.rows.append(Row(name, self.defaults[i], candidate_widths(self.defaults[i], self.lane)))
        return i

    def conv(self, src, name, kernel, stride, hw, role="body", act=True, row=None):
        r = self.row(f"{name}_conv") if row is None else row
        x = self.add(name=f"{name}_conv", op="conv", src=(src,), row=r, kernel=kernel, stride=stride,
                     hw=hw, role=role, act=act)
        if act:
            x = self.add(name=f"{name}_act", op="act", src=(x,), row=r, hw=hw)
        return x, r

    def residual(self, main, shortcut, main_row, name, hw, proj):
        x = self.add(name=f"{name}_add", op="add", src=(main, shortcut), row=main_row, hw=hw,
                     proj_hw=hw if proj else 0)
        return self.add(name=f"{name}_out_act", op="act", src=(x,), row=main_row, hw=hw)


def _cifar_resnet(g, depth, hw):
    n = (depth - 2) // 6
    x = g.add(name="image", op="input", hw=hw)
    x, in_row = g.conv(x, "stem", 3, 1, hw, role="first")
    for s in range(3):
        for b in range(n):
            stride = 2 if s > 0 and b == 0 else 1
            hw //= stride
            p = f"s{s + 1}_b{b}"
            y, _ = g.conv(x, f"{p}_a", 3, stride, hw)
            y, rb = g.conv(y, f"{p}_b", 3, 1, hw, act=False)
            if stride != 1:
                sc = g.add(name=f"{p}_shortcut_pool", op="avgpool", src=(x,), row=in_row, hw=hw, stride=2)
                sc, _ = g.conv(sc, f"{p}_shortcut", 1, 1, hw, role="shortcut", act=False, row=rb)
                x = g.residual(y, sc, rb, p, hw, proj=False)
            else:
                x = g.residual(y, x, rb, p, hw, proj=True)
            in_row = rb
    return x


def _vgg16(g, hw):
    x = g.add(name="image", op="input", hw=hw)
    i = 0
    for k, group in enumerate(VGG_GROUPS):
        for _ in group:
            x, r = g.conv(x, f"conv{i + 1}", 3, 1, hw, role="first" if i == 0 else "body")
            i += 1
        hw //= 2
        x = g.add(name=f"maxpool{k + 1}", op="maxpool", src=(x,), row=r, hw=hw, stride=2, kernel=2)
    return x


def _imagenet_resnet(g, depth, hw):
    kind, blocks = IMAGENET_LAYOUT[depth]
    x = g.add(name="image", op="input", hw=hw)
    hw //= 2
    x, in_row = g.conv(x, "stem", 7, 2, hw, role="first")
    hw = -(-hw // 2)
    x = g.add(name="stem_pool", op="maxpool", src=(x,), row=in_row, hw=hw, stride=2, kernel=3)
    for s, nblocks in enumerate(blocks):
        for b in range(nblocks):
            stride = 2 if s > 0 and b == 0 else 1
            out_hw = -(-hw // stride)
            p = f"s{s + 1}_b{b}"
            if kind == "basic":
                y, _ = g.conv(x, f"{p}_a", 3, stride, out_hw)
                y, rl = g.conv(y, f"{p}_b", 3, 1, out_hw, act=False)
            else:
                y, _ = g.conv(x, f"{p}_a", 1, 1, hw)
                y, _ = g.conv(y, f"{p}_b", 3, stride, out_hw)
                y, rl = g.conv(y, f"{p}_c", 1, 1, out_hw, act=False)
            # A block that changes resolution or width in the 1X network has a shortcut conv, tied
            # to the block's last row, in every derived network (models/resnet_imagenet.py).
            default_in = g.defaults[in_row]
            if stride != 1 or default_in != g.defaults[rl]:
                sc, _ = g.conv(x, f"{p}_shortcut", 1, stride, out_hw, role="shortcut", act=False, row=rl)
                x = g.residual(y, sc, rl, p, out_hw, proj=False)
            else:
                x = g.residual(y, x, rl, p, out_hw, proj=True)
            in_row, hw = rl, out_hw
    return x


def build_space(model, *, lane=1, num_classes=None, input_shape=None):
    """The :class:`SearchSpace` of zoo model ``model``.

    Args:
        model: a zoo name (``nce_tf.models.MODEL_NAMES``) or ``keras:PATH.keras``
            (:mod:`nce_tf.models.user`: the space :func:`nce_tf.adapt` makes of that model).
        lane: round candidate widths up to a multiple of this (1 = no rounding).
        num_classes: classifier width (default: the model's dataset).
        input_shape: ``(H, W, 3)`` with ``H == W`` (default: the model's dataset).
    """
    spec = zoo.get_spec(model)
    if spec.kind == "user":
        return spec.search_space(lane, num_classes, input_shape)
    input_shape = tuple(input_shape or spec.input_shape)
    if len(input_shape) != 3 or input_shape[0] != input_shape[1] or input_shape[2] != 3:
        raise UsageError(f"The search needs square RGB inputs. Received: input_shape={input_shape}.")
    g = _Graph(model, lane)
    hw = input_shape[0]
    if model.startswith("resnet") and spec.kind == "cifar":
        x = _cifar_resnet(g, int(model[len("resnet"):]), hw)
    elif model == "vgg16":
        x = _vgg16(g, hw)
    else:
        x = _imagenet_resnet(g, int(model[len("resnet"):]), hw)
    last = g.nodes[x].row
    x = g.add(name="pool", op="gap", src=(x,), row=last, hw=1)
    g.add(name="classifier", op="dense", src=(x,), row=last, use_bias=True)
    return SearchSpace(model, g.rows, g.nodes, int(num_classes or spec.num_classes), input_shape, lane=lane)
