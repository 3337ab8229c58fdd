"""The op registry: every op the adapter emits has a class, and a new op is one class.

The registry test builds a graph by hand with an op the package does not know, registers that
op (one small class), and checks that the super-net, the exact cost and the width rules use it
with nothing else changed.
"""

import numpy as np
import pytest
import tensorflow as tf

from nce_tf.models import QuantPolicy
from nce_tf.search import SuperNet
from nce_tf.search.candidates import candidate_widths
from nce_tf.search.ops import OPS, Op, op_of, register
from nce_tf.search.space import Node, Row, SearchSpace
from nce_tf.sources import build_space


def test_every_op_of_the_zoo_spaces_is_registered():
    kinds = {node.op for name in ("resnet8", "vgg16", "resnet18") for node in build_space(name).nodes}
    assert kinds <= set(OPS)
    assert {"conv", "act", "add", "gap", "dense", "maxpool", "input"} <= kinds


def test_an_unknown_op_is_a_one_line_error_naming_it():
    with pytest.raises(ValueError, match="Received: op='warp'"):
        op_of(Node(name="w", op="warp"))


def test_an_op_without_a_forward_cannot_be_registered():
    class NoForward(Op):
        kind = "no_forward"

    with pytest.raises(TypeError, match="abstract"):
        register(NoForward)
    assert "no_forward" not in OPS


def _space(mid_op):
    rows = [Row("c0", 8, candidate_widths(8))]
    nodes = [Node("image", "input", area=36),
             Node("c0", "conv", src=(0,), row=0, kernel=3, area=36, layer="c0"),
             Node("mid", mid_op, src=(1,), row=0, area=36),
             Node("gap", "gap", src=(2,), row=0),
             Node("logits", "dense", src=(3,), layer="logits")]
    return SearchSpace("toy", rows, nodes, num_classes=3, input_shape=(6, 6, 3))


def test_a_new_op_is_one_registered_class():
    @register
    class Double(Op):
        """Doubles its input; a BN-like linear cost of 1 MAC per channel and position."""

        kind = "double"

        def add_cost(self, node, terms):
            terms.lin += [(r, node.out_area, 0) for r in terms.widths[node.src[0]]]

        def call(self, node, layer, inputs, run):
            return 2.0 * inputs[0]

    try:
        doubled, plain = _space("double"), _space("identity")
        for w in (4, 8, 13):
            macs, params = doubled.exact_cost([w])
            assert (macs, params) == (plain.exact_cost([w])[0] + 36 * w, plain.exact_cost([w])[1])
        policy = QuantPolicy(w_bits=32, a_bits=32)
        a, b = SuperNet(doubled, policy, seed=0), SuperNet(plain, policy, seed=0)
        x = tf.constant(np.random.default_rng(0).normal(size=(2, 6, 6, 3)), tf.float32)
        sample = a.sample()
        # The classifier is linear after global pooling: doubling the features doubles the logits
        # minus the bias (zero at initialisation).
        np.testing.assert_allclose(a.forward(x, sample)[0], 2.0 * b.forward(x, sample)[0].numpy(), rtol=1e-5, atol=1e-6)
    finally:
        OPS.pop("double")
