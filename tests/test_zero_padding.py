"""``ZeroPadding2D`` (the ResNets' and MobileNetV2's stems in ``keras.applications``) as an op:
adapted, derived, counted and exported on a tiny functional model."""

import keras
import numpy as np

import nce_tf
from nce_tf.cost import count_model
from nce_tf.models import QuantPolicy
from op_checks import int8_matches_keras

L = keras.layers


def _padded_net():
    """Asymmetric pads before a valid strided conv and before a flatten: a wrong pad changes shapes."""
    i = keras.Input((8, 8, 3), name="image")
    x = L.ZeroPadding2D(((1, 2), (1, 2)), name="pad0")(i)  # 11 x 11
    x = L.Conv2D(8, 3, strides=2, use_bias=False, name="c0")(x)  # 5 x 5
    x = L.ReLU(name="r0")(L.BatchNormalization(name="bn0")(x))
    x = L.ZeroPadding2D(((0, 1), (0, 1)), name="pad1")(x)  # 6 x 6
    x = L.Conv2D(16, 3, strides=2, use_bias=False, name="c1")(x)  # 2 x 2
    x = L.ReLU(name="r1")(L.BatchNormalization(name="bn1")(x))
    x = L.Flatten(name="flat")(L.ZeroPadding2D(1, name="pad2")(x))  # 4 x 4 x 16
    return keras.Model(i, L.Dense(4, name="logits")(x), name="padded")


def _by_hand(w0, w1):
    """MACs and PARAMs at widths ``(w0, w1)``: c0 on 5 x 5, c1 on 2 x 2, the dense layer on 4 x 4 x w1."""
    macs = 25 * 9 * 3 * w0 + 4 * 9 * w0 * w1 + 16 * w1 * 4
    params = 9 * 3 * w0 + 9 * w0 * w1 + 2 * (w0 + w1) + 16 * w1 * 4 + 4
    return macs, params


def test_zero_padding_adapts_derives_counts_and_exports():
    user = _padded_net()
    assert (count_model(user).macs, count_model(user).params) == _by_hand(8, 16)
    net = nce_tf.adapt(user, w_bits=2, a_bits=2, search_first=True, seed=0)
    assert [n.args["pads"] for n in net.space.nodes if n.op == "zeropad"] == [((1, 2), (1, 2)), ((0, 1), (0, 1)),
                                                                              ((1, 1), (1, 1))]
    assert net.space.exact_cost(net.space.default_widths()) == _by_hand(8, 16)
    x = np.random.default_rng(0).normal(size=(48, 8, 8, 3)).astype("float32")
    assert net(x[:2]).shape == (2, 4)  # the super-net pads as the user's model does
    widths = [int(net.table_np[0][2]), int(net.table_np[1][5])]
    derived = nce_tf.derive_model(net, widths, policy=QuantPolicy(w_bits=2, a_bits=8))
    cost = count_model(derived)
    assert (cost.macs, cost.params) == net.space.exact_cost(widths) == _by_hand(*widths)
    # int8 TFLite pads with the zero point: the file computes what the Keras model does.
    head = derived.get_layer("logits")
    head.kernel.assign(np.random.default_rng(1).normal(size=head.kernel.shape).astype("float32"))
    # Calibrated and checked on the same images (the file's arithmetic, not calibration's reach): since
    # c0 reads the image through the padding it is the float ``first`` conv, and on 16 held-out images
    # the int8 file was then 1.18 off for logits up to 4.45.
    int8_matches_keras(derived, x)
