"""Squeeze-and-excitation as ops (``gap_keep``, ``reshape``, ``gate``): both ways ``keras.applications``
writes it (MobileNetV3: keepdims pooling and a hard sigmoid in ``keras.ops``; EfficientNet: flat
pooling, ``Reshape`` to ``(1, 1, C)`` and fused activations), on a tiny model."""

import keras
import numpy as np
import pytest

import nce_tf
from nce_tf.cost import count_model
from nce_tf.errors import UsageError
from nce_tf.models import QuantPolicy
from op_checks import int8_matches_keras, supernet_matches_derived

L = keras.layers


def _se_net():
    i = keras.Input((8, 8, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="c0")(i)
    x = L.ReLU(name="r0")(L.BatchNormalization(name="bn0")(x))
    x = L.ReLU(name="r1")(L.BatchNormalization(name="bn1")(L.Conv2D(16, 1, use_bias=False, name="c1")(x)))
    s = L.GlobalAveragePooling2D(keepdims=True, name="a_pool")(x)  # MobileNetV3's block
    s = L.ReLU(name="a_relu")(L.Conv2D(4, 1, name="a_reduce")(s))
    s = L.ReLU(6.0, name="a_relu6")(L.Conv2D(16, 1, name="a_expand")(s) + 3.0) * (1.0 / 6.0)
    x = L.Multiply(name="a_gate")([x, s])
    y = L.BatchNormalization(name="bn2")(L.Conv2D(16, 1, use_bias=False, name="c2")(x))
    y = L.Activation("swish", name="s2")(y)
    t = L.Reshape((1, 1, 16), name="b_reshape")(L.GlobalAveragePooling2D(name="b_pool")(y))  # EfficientNet's
    t = L.Conv2D(4, 1, activation="swish", name="b_reduce")(t)
    t = L.Conv2D(16, 1, activation="sigmoid", name="b_expand")(t)
    y = L.Multiply(name="b_gate")([t, y])  # the gate first: the op orders (gated, gate)
    return keras.Model(i, L.Dense(4, name="logits")(L.GlobalAveragePooling2D(name="gap")(y)), name="se")


def _by_hand(w1, ra, w2, rb):
    """MACs and PARAMs with c1 at ``w1``, c2 at ``w2``, the reduce convs at ``ra`` / ``rb``; each
    expand conv at its gated tensor's width (``w1``, ``w2``), on a 1 x 1 map."""
    macs = 64 * (9 * 3 * 8 + 8 * w1 + w1 * w2) + 2 * w1 * ra + 2 * w2 * rb + w2 * 4
    params = (9 * 3 * 8 + 8 * w1 + w1 * w2 + 2 * (8 + w1 + w2)  # convs and their BN
              + 2 * w1 * ra + ra + w1 + 2 * w2 * rb + rb + w2  # the SE convs with their biases
              + w2 * 4 + 4)
    return macs, params


def test_squeeze_excite_gates_follow_their_blocks_width():
    user = _se_net()
    net = nce_tf.adapt(user, w_bits=32, a_bits=32, seed=0)
    rows = [r.name for r in net.space.rows]
    assert rows == ["c0", "c1", "a_reduce", "c2", "b_reduce"]  # the expand convs have no row of their own
    row_of = {n.layer: n.row for n in net.space.nodes if n.op == "conv"}
    assert row_of["a_expand"] == rows.index("c1") and row_of["b_expand"] == rows.index("c2")
    assert [(n.op, n.fn) for n in net.space.nodes if n.name == "a_relu6"] == [("hard_sigmoid_ops", "hard_sigmoid")]
    assert "a_relu6" not in [n.name for n in net.space.nodes if n.op == "act"]  # float, not a PACT site
    assert (count_model(user).macs, count_model(user).params) == net.space.exact_cost([8, 16, 4, 16, 4]) \
        == _by_hand(16, 4, 16, 4)

    x = np.random.default_rng(0).normal(size=(48, 8, 8, 3)).astype("float32")
    widths, derived = supernet_matches_derived(net, x[:8], [0, 3, 9, 5, 12])
    assert derived.get_layer("a_expand").filters == widths[1] and derived.get_layer("b_expand").filters == widths[3]
    assert derived.get_layer("a_relu6").get_config()["activation"] == "hard_sigmoid"
    assert (count_model(derived).macs, count_model(derived).params) == net.space.exact_cost(widths) \
        == _by_hand(*widths[1:])
    quantized = nce_tf.derive_model(net, widths, policy=QuantPolicy(w_bits=2, a_bits=8))
    head = quantized.get_layer("logits")
    head.kernel.assign(np.random.default_rng(1).normal(size=head.kernel.shape).astype("float32"))
    int8_matches_keras(quantized, x)


def _bad_gate(case):
    i = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", name="c0")(i)
    if case == "no_conv":  # a gate that is a pooling, not a conv
        g = L.Multiply(name="gate")([x, L.GlobalAveragePooling2D(keepdims=True)(x)])
    else:  # a reshape whose target depends on the channel count
        g = L.Reshape((8, 16, 4), name="regroup")(x)
    return keras.Model(i, L.Dense(4)(L.GlobalAveragePooling2D()(g)))


@pytest.mark.parametrize("case, needle", [
    ("no_conv", "layer 'gate' (Multiply): its gate must be a Conv2D"),
    ("reshape", "layer 'regroup' (Reshape): its target shape depends on the channel count"),
])
def test_what_squeeze_excite_cannot_read_is_a_one_line_error(case, needle):
    with pytest.raises(UsageError) as info:
        nce_tf.adapt(_bad_gate(case))
    assert needle in str(info.value) and "\n" not in str(info.value)
