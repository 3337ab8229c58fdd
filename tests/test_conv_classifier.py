"""MobileNet's classifier, a 1x1 conv on a ``(1, 1, C)`` map then a flatten or reshape and a softmax,
as the ``conv_classifier`` op: the dense classifier's cost and super-net layer, the user's conv in
the derived network, logits out (the softmax dropped, as a ``Dense`` classifier's is)."""

import keras
import numpy as np
import pytest

import nce_tf
from nce_tf.cost import count_model
from op_checks import int8_matches_keras, supernet_matches_derived

L = keras.layers


def _net(tail):
    i = keras.Input((8, 8, 3), name="image")
    for k, width in enumerate((8, 16)):
        x = L.Conv2D(width, 3, padding="same", use_bias=False, name=f"c{k}")(i if k == 0 else x)
        x = L.ReLU(name=f"r{k}")(L.BatchNormalization(name=f"bn{k}")(x))
    x = L.Dropout(0.2, name="drop")(L.GlobalAveragePooling2D(keepdims=True, name="pool")(x))
    x = L.Conv2D(5, 1, name="logits")(x)
    if tail == "flatten":  # MobileNetV3
        x = L.Activation("softmax", name="predictions")(L.Flatten(name="flatten")(x))
    else:  # MobileNet (v1)
        x = L.Softmax(name="predictions")(L.Reshape((5,), name="reshape")(x))
    return keras.Model(i, x, name="conv_head")


def _by_hand(w1):
    """c0 and c1 on 8 x 8, the head ``w1 x 5`` MACs on the 1 x 1 map, its 5 biases."""
    macs = 64 * 9 * (3 * 8 + 8 * w1) + w1 * 5
    params = 9 * (3 * 8 + 8 * w1) + 2 * (8 + w1) + w1 * 5 + 5
    return macs, params


@pytest.mark.parametrize("tail", ["flatten", "reshape"])
def test_a_1x1_conv_classifier_is_the_classifier(tail):
    user = _net(tail)
    net = nce_tf.adapt(user, w_bits=32, a_bits=32, seed=0)
    assert net.space.nodes[-1].op == "conv_classifier" and net.space.num_classes == 5
    assert [r.name for r in net.space.rows] == ["c0", "c1"]  # the head has no row: its width is the classes
    assert (count_model(user).macs, count_model(user).params) == net.space.exact_cost([8, 16]) == _by_hand(16)

    x = np.random.default_rng(0).normal(size=(40, 8, 8, 3)).astype("float32")
    widths, derived = supernet_matches_derived(net, x[:8], [0, 5])  # the super-net's logits
    head = derived.get_layer("logits")
    assert type(head).__name__ == "QuantConv2D" and head.kernel.shape == (1, 1, widths[1], 5)
    logits = keras.Model(derived.inputs[0], head.output)(x[:8]).numpy().reshape(8, 5)
    np.testing.assert_allclose(derived(x[:8]).numpy(), logits, rtol=1e-6)  # no softmax after it
    assert (count_model(derived).macs, count_model(derived).params) == net.space.exact_cost(widths) \
        == _by_hand(widths[1])
    head.kernel.assign(np.random.default_rng(1).normal(size=head.kernel.shape).astype("float32"))
    int8_matches_keras(derived, x)
