"""Float activations (sigmoid, hard sigmoid, swish, hard swish) as ``fn`` nodes, and MobileNetV3's
hard sigmoid written in ``keras.ops`` (``HardSigmoidOps``): kept float in the search and the
derived network, and written by the int8 export."""

import keras
import numpy as np
import pytest

import nce_tf
from nce_tf.cost import count_model
from nce_tf.errors import UsageError
from op_checks import int8_matches_keras, supernet_matches_derived

L = keras.layers


def _net(last="hard_swish"):
    i = keras.Input((8, 8, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", activation="hard_swish", name="c0")(i)  # fused: its own layer when derived
    x = L.Activation("sigmoid", name="a_sigmoid")(L.Conv2D(16, 3, padding="same", name="c1")(x))
    x = L.Activation("swish", name="a_swish")(L.Conv2D(16, 3, padding="same", name="c2")(x))
    x = L.Activation("hard_sigmoid", name="a_hsig")(L.Conv2D(16, 3, padding="same", name="c3")(x))
    x = L.Conv2D(16, 3, padding="same", name="c4")(x)
    x = L.ReLU(6.0, name="ops_relu6")(x + 3.0) * (1.0 / 6.0)  # keras.ops: one hard sigmoid node
    x = L.Activation(last, name="a_last")(x)
    return keras.Model(i, L.Dense(4, name="logits")(L.GlobalAveragePooling2D(name="gap")(x)), name="acts")


def test_float_activations_search_derive_and_export():
    user = _net()
    net = nce_tf.adapt(user, w_bits=32, a_bits=32, search_first=True, seed=0)
    fns = [(n.op, n.fn) for n in net.space.nodes if n.op in ("fn", "hard_sigmoid_ops", "act")]
    assert fns == [("fn", "hard_silu"), ("fn", "sigmoid"), ("fn", "silu"), ("fn", "hard_sigmoid"),
                   ("hard_sigmoid_ops", "hard_sigmoid"), ("fn", "hard_silu")]  # no PACT site among them
    assert (count_model(user).macs, count_model(user).params) == net.space.exact_cost([8, 16, 16, 16, 16])

    x = np.random.default_rng(0).normal(size=(48, 8, 8, 3)).astype("float32")
    widths, derived = supernet_matches_derived(net, x[:8], [4, 3, 9, 5, 12])
    acts = {layer.name: layer.get_config()["activation"] for layer in derived.layers if type(layer) is L.Activation}
    assert acts == {"c0_hard_silu": "hard_silu", "a_sigmoid": "sigmoid", "a_swish": "silu", "a_hsig": "hard_sigmoid",
                    "ops_relu6": "hard_sigmoid", "a_last": "hard_silu"}
    assert (count_model(derived).macs, count_model(derived).params) == net.space.exact_cost(widths)
    int8_matches_keras(derived, x)


def _one(name):
    """A 1x1 conv, the activation, a dense layer reading every activated value."""
    i = keras.Input((4, 4, 3), name="image")
    x = L.Conv2D(8, 1, name="c0")(i)
    x = L.ReLU(6.0, name="relu6")(x + 3.0) * (1.0 / 6.0) if name == "ops" else L.Activation(name, name="act")(x)
    return keras.Model(i, L.Dense(4, name="logits")(L.Flatten(name="flat")(x)))


@pytest.mark.parametrize("name", ["sigmoid", "hard_sigmoid", "swish", "hard_swish", "ops"])
def test_each_float_activation_exports_as_itself(name):
    """Unit-variance kernels put the activation's inputs over its whole curve (about -6..6): the
    int8 file is within 3% of Keras (measured 1.0-1.5%); swish exported as hard swish is 6.5% off,
    hard sigmoid as sigmoid 8.5%."""
    net = nce_tf.adapt(_one(name), w_bits=32, a_bits=32, search_first=True)
    derived = nce_tf.derive_model(net, [8])
    rng = np.random.default_rng(0)
    for layer in ("c0", "logits"):
        kernel = derived.get_layer(layer).kernel
        kernel.assign(rng.normal(size=kernel.shape).astype("float32"))
    int8_matches_keras(derived, rng.normal(size=(48, 4, 4, 3)).astype("float32"), rel=0.03)


def test_an_activation_the_export_cannot_write_is_refused():
    net = nce_tf.adapt(_net(last="softplus"), w_bits=32, a_bits=32)
    with pytest.raises(UsageError, match=r"Export cannot convert layer 'a_last' of type Activation"):
        nce_tf.export.convert(nce_tf.derive_model(net), np.zeros((2, 8, 8, 3), "float32"))


def test_other_keras_ops_arithmetic_is_refused():
    i = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, name="c0")(i) + 1.0
    with pytest.raises(UsageError, match=r"read only as the hard sigmoid ReLU\(6.0\)\(x \+ 3.0\)") as info:
        nce_tf.adapt(keras.Model(i, L.Dense(4)(L.GlobalAveragePooling2D()(x))))
    assert "\n" not in str(info.value)
