"""``Rescaling`` / ``Normalization`` at the input (MobileNetV3's and EfficientNet's preprocessing) as
the ``input_affine`` op: read, costed, run in the super-net, derived and exported on a tiny model."""

import keras
import numpy as np
import pytest

import nce_tf
from nce_tf.cost import count_model
from nce_tf.errors import UsageError
from op_checks import int8_matches_keras, supernet_matches_derived

L = keras.layers


def _net(images):
    """Rescaling, a Normalization adapted to ``images`` (its mean and variance are weights, not
    config), zero padding, then two convs: the stem must stay ``first`` behind all three."""
    norm = L.Normalization(name="norm")
    norm.adapt(images / 127.5 - 1.0)
    i = keras.Input((8, 8, 3), name="image")
    x = norm(L.Rescaling(1 / 127.5, offset=-1.0, name="scale")(i))
    x = L.Conv2D(8, 3, use_bias=False, name="c0")(L.ZeroPadding2D(1, name="pad")(x))  # 8 x 8
    x = L.ReLU(name="r0")(L.BatchNormalization(name="bn0")(x))
    x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="c1")(x)  # 4 x 4
    x = L.ReLU(name="r1")(L.BatchNormalization(name="bn1")(x))
    return keras.Model(i, L.Dense(4, name="logits")(L.GlobalAveragePooling2D(name="gap")(x)), name="affine")


def _by_hand(w1):
    """MACs and PARAMs at c1's width ``w1``: no term for the preprocessing (statistics, not weights)."""
    macs = 64 * 9 * 3 * 8 + 16 * 9 * 8 * w1 + w1 * 4
    params = 9 * 3 * 8 + 9 * 8 * w1 + 2 * (8 + w1) + w1 * 4 + 4
    return macs, params


def test_rescaling_and_normalization_at_the_input():
    x = np.random.default_rng(0).uniform(0, 255, size=(48, 8, 8, 3)).astype("float32")
    user = _net(x)
    net = nce_tf.adapt(user, w_bits=32, a_bits=32, seed=0)
    scale, norm = [n for n in net.space.nodes if n.op == "input_affine"]
    assert (scale.args["scale"], scale.args["offset"]) == ([1 / 127.5], [-1.0])
    z = x / 127.5 - 1.0  # what the Normalization was adapted to: its mean and standard deviation by numpy
    mean, std = z.mean(axis=(0, 1, 2)), z.std(axis=(0, 1, 2))
    np.testing.assert_allclose(norm.args["scale"], 1 / std, rtol=1e-4)
    np.testing.assert_allclose(norm.args["offset"], -mean / std, rtol=1e-4, atol=1e-6)
    assert [(r.name, r.frozen) for r in net.space.rows] == [("c0", True), ("c1", False)]  # the stem stays first
    assert (count_model(user).macs, count_model(user).params) == net.space.exact_cost([8, 16]) == _by_hand(16)

    # The super-net scales as the user's layers do; the derived network keeps the adapted statistics.
    widths, derived = supernet_matches_derived(net, x[:8], [0, 3])
    np.testing.assert_array_equal(derived.get_layer("norm").get_weights()[0], user.get_layer("norm").get_weights()[0])
    cost = count_model(derived)
    assert (cost.macs, cost.params) == net.space.exact_cost(widths) == _by_hand(widths[1])
    int8_matches_keras(derived, x)


def test_normalization_inside_the_network_is_refused():
    i = keras.Input((8, 8, 3))
    x = L.Normalization(mean=0.0, variance=1.0, name="late_norm")(L.Conv2D(8, 3, name="c0")(i))
    model = keras.Model(i, L.Dense(4)(L.GlobalAveragePooling2D()(x)))
    with pytest.raises(UsageError, match=r"layer 'late_norm' \(Normalization\): .* at the input only") as info:
        nce_tf.adapt(model)
    assert "\n" not in str(info.value)
