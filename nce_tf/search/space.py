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
from nce_tf.search.candidates import MAX_CANDIDATES, candidate_widths

INPUT = -1  # the "row" of the 3-channel image


@dataclasses.dataclass
class Row:
    name: str
    n: int
    candidates: list


@dataclasses.dataclass
class Node:
    name: str
    op: str
    src: tuple = ()
    row: int = INPUT  # conv: its width row; other ops: the row their output width follows
    kernel: int = 1
    stride: int = 1
    hw: int = 0  # output spatial size (square)
    role: str = "body"  # conv: first | body | shortcut
    act: bool = False  # conv: followed by an activation node (informational)
    proj_hw: int = 0  # add: spatial size of the derived net's projection if widths differ
    conditional: bool = False  # stride-1 shortcut conv: the derived net keeps it only if widths differ


class SearchSpace:
    """Rows and nodes of one model's channel search space."""

    def __init__(self, model, rows, nodes, num_classes, input_shape):
        self.model, self.rows, self.nodes = model, rows, nodes
        self.num_classes, self.input_shape = num_classes, tuple(input_shape)
        self.candidates = np.array([r.candidates for r in rows], "int32")  # [L, 16]
        self._tables()

    def default_widths(self):
        return [r.n for r in self.rows]

    def _tables(self):
        """Flat arrays for the vectorised cost: conv terms and projection terms."""
        conv_in, conv_out, conv_k2hw2, conv_k2 = [], [], [], []
        proj_in, proj_out, proj_hw2 = [], [], []
        for node in self.nodes:
            if node.op == "conv" and node.conditional:
                proj_in.append(self.nodes[node.src[0]].row)
                proj_out.append(node.row)
                proj_hw2.append(node.hw**2)
            elif node.op == "conv":
                conv_in.append(self.nodes[node.src[0]].row)
                conv_out.append(node.row)
                conv_k2hw2.append(node.kernel**2 * node.hw**2)
                conv_k2.append(node.kernel**2)
            elif node.op == "add" and node.proj_hw:
                proj_out.append(self.nodes[node.src[0]].row)
                proj_in.append(self.nodes[node.src[1]].row)
                proj_hw2.append(node.proj_hw**2)
            elif node.op == "dense":
                self.last_row = self.nodes[node.src[0]].row
        self.conv_in, self.conv_out = np.array(conv_in), np.array(conv_out)
        self.conv_k2hw2, self.conv_k2 = np.array(conv_k2hw2, "float64"), np.array(conv_k2, "float64")
        self.proj_in, self.proj_out = np.array(proj_in, "int64"), np.array(proj_out, "int64")
        self.proj_hw2 = np.array(proj_hw2, "float64")

    def exact_cost(self, widths):
        """Exact ``(macs, params)`` of the derived network with ``widths`` (Python ints)."""
        w = list(widths) + [3]  # index -1 (INPUT) reads the image's 3 channels
        macs = params = 0
        for cin, cout, k2hw2, k2 in zip(self.conv_in, self.conv_out, self.conv_k2hw2, self.conv_k2):
            macs += int(k2hw2) * w[cin] * w[cout]
            params += int(k2) * w[cin] * w[cout] + 2 * w[cout]
        for cin, cout, hw2 in zip(self.proj_in, self.proj_out, self.proj_hw2):
            if w[cin] != w[cout]:
                macs += int(hw2) * w[cin] * w[cout]
                params += w[cin] * w[cout] + 2 * w[cout]
        macs += w[self.last_row] * self.num_classes
        params += w[self.last_row] * self.num_classes + self.num_classes
        return macs, params

    def max_channels(self):
        """Per node, the most channels it can carry in the supernet (2X caps, adds take the max)."""
        out = []
        for node in self.nodes:
            if node.op == "input":
                out.append(3)
            elif node.op == "conv":
                out.append(self.rows[node.row].candidates[MAX_CANDIDATES - 1])
            elif node.op == "add":
                out.append(max(out[s] for s in node.src))
            else:
                out.append(out[node.src[0]] if node.src else 0)
        return out


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

    def conv(self, src, name, kernel, stride, hw, role="body", act=True, row=None, conditional=False):
        r = self.row(f"{name}_conv") if row is None else row
        x = self.add(name=f"{name}_conv", op="conv", src=(src,), row=r, kernel=kernel, stride=stride,
                     hw=hw, role=role, act=act, conditional=conditional)
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
            # The zoo projects when the block changes resolution or its default width:
            # those blocks always have a shortcut conv tied to the block's last row.
            default_in = g.defaults[in_row]
            if stride != 1 or default_in != g.defaults[rl]:
                sc, _ = g.conv(x, f"{p}_shortcut", 1, stride, out_hw, role="shortcut", act=False, row=rl,
                               conditional=stride == 1)
                x = g.residual(y, sc, rl, p, out_hw, proj=False)
            else:
                x = g.residual(y, x, rl, p, out_hw, proj=True)
            in_row, hw = rl, out_hw
    return x


def build_space(model, *, lane=1, num_classes=None, input_shape=None):
    """The :class:`SearchSpace` of zoo model ``model``.

    Args:
        model: a zoo name (``nce_tf.models.MODEL_NAMES``).
        lane: round candidate widths up to a multiple of this (1 = no rounding).
        num_classes: classifier width (default: the model's dataset).
        input_shape: ``(H, W, 3)`` with ``H == W`` (default: the model's dataset).
    """
    spec = zoo.get_spec(model)
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
    g.add(name="classifier", op="dense", src=(x,), row=last)
    return SearchSpace(model, g.rows, g.nodes, int(num_classes or spec.num_classes), input_shape)
