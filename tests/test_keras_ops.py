"""A Keras layer type is one op class: the registry of Keras-layer readers (``nce_tf.search.ops``).

``test_a_new_keras_layer_type_is_one_op_class`` defines a layer type no nce-tf module knows (a
learnt per-channel scale) and one op class for it, registered inside the test, and takes a model
using it through the whole pipeline: adapt, one search step, derive with inherited weights, the
Keras cost count (against the space's exact cost and a count by hand) and the int8 TFLite export
(against the Keras model's outputs).  Nothing else is touched.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import nce_tf
from nce_tf.cost import count_model
from nce_tf.export.exporter import run_tflite
from nce_tf.models import QuantPolicy
from nce_tf.search import derive_widths
from nce_tf.search.callbacks import TauSchedule
from nce_tf.search.ops import KERAS_OPS, OPS, Op, register

L = keras.layers


@keras.saving.register_keras_serializable(package="tests_keras_ops")
class ChannelScale(L.Layer):
    """``y = x * s``: one learnt scale per channel (of the live leading channels in a super-net)."""

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.scale[: tf.shape(x)[-1]]


class Scale(Op):
    """The op of ``ChannelScale``: follows its input's width, one float parameter per channel, no MACs."""

    kind, reads_channels, layer_group = "test_channel_scale", True, "other"
    keras_types = (ChannelScale,)

    def add_cost(self, node, terms):
        for r in terms.widths[node.src[0]]:
            terms.linear(node, r, other=1)

    def make_layer(self, node, net, src_max, src_spatial):
        layer = ChannelScale(name=node.name)
        layer.build((None, src_max * src_spatial))
        return layer

    def call(self, node, layer, inputs, run):
        return layer(inputs[0])

    def reset_inputs(self, layer, lo, hi, total, spatial, fresh):
        fresh.reset(layer.scale, np.s_[lo:hi], 1.0)

    def inherit(self, node, sn, ctx):
        ctx.model.get_layer(node.layer).scale.assign(sn.scale.numpy()[ctx.cols])

    def keras_cost(self, layer, count):
        c = layer.output.shape[-1]
        count.weighted(layer, "scale", c, c, "-", 0, 0, c)

    def export_step(self, layer, plan):
        scale = layer.scale.numpy()

        def step(values):
            values[layer.output] = plan.requant(values[layer.input] * scale, layer)
        return step


@pytest.fixture
def scale_op():
    register(Scale)
    try:
        yield OPS[Scale.kind]
    finally:
        OPS.pop(Scale.kind)
        KERAS_OPS.pop(ChannelScale)


def _model():
    i = keras.Input((8, 8, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="c0")(i)
    x = L.ReLU(name="r0")(L.BatchNormalization(name="bn0")(x))
    x = L.Conv2D(16, 3, padding="same", use_bias=False, name="c1")(x)
    x = L.ReLU(name="r1")(L.BatchNormalization(name="bn1")(x))
    x = ChannelScale(name="scale")(x)
    x = L.Conv2D(16, 3, padding="same", use_bias=False, name="c2")(x)
    x = L.ReLU(name="r2")(L.BatchNormalization(name="bn2")(x))
    return keras.Model(i, L.Dense(4, name="logits")(L.GlobalAveragePooling2D(name="gap")(x)), name="scaled")


def _by_hand(w1, w2):
    """MACs and PARAMs of ``_model`` at widths (8, w1, w2), from first principles: 3x3 convs on
    8 x 8, BN gamma and beta, ``w1`` scales, the dense kernel and bias."""
    macs = 64 * 9 * (3 * 8 + 8 * w1 + w1 * w2) + w2 * 4
    params = 9 * (3 * 8 + 8 * w1 + w1 * w2) + 2 * (8 + w1 + w2) + w1 + w2 * 4 + 4
    return macs, params


@pytest.mark.heavy  # 16 s here
def test_a_new_keras_layer_type_is_one_op_class(scale_op):
    user = _model()
    assert (count_model(user).macs, count_model(user).params) == _by_hand(16, 16)
    net = nce_tf.adapt(user, w_bits=2, a_bits=2, seed=0)
    node = next(n for n in net.space.nodes if n.op == Scale.kind)
    rows = [r.name for r in net.space.rows]
    assert rows == ["c0", "c1", "c2"] and node.row == rows.index("c1")  # it follows the conv before it
    assert net.space.exact_cost(net.space.default_widths()) == _by_hand(16, 16)

    # One search step (weights and alpha) runs the op's forward and its gradients.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 4, 64)
    net.configure_optimizers(keras.optimizers.SGD(0.05), keras.optimizers.Adam(0.05))
    net.set_arch_updates(True)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32, drop_remainder=True)
    net.fit(tf.data.Dataset.zip((ds, ds.skip(1).concatenate(ds.take(1)))), epochs=1, verbose=0,
            callbacks=[TauSchedule(total_epochs=1)])
    assert len(derive_widths(net)) == 3

    # Derive at other widths, inheriting the super-net's scales of the live channels.
    sn_scale = net.layer_of_node(net.space.nodes.index(node)).scale
    sn_scale.assign(rng.uniform(0.5, 2.0, sn_scale.shape).astype("float32"))
    widths = [8, int(net.table_np[1][3]), int(net.table_np[2][5])]
    # 8-bit activations in the derived network: at 2 bits the int8 file's rounding of its input moves
    # values across PACT levels (README, Export), which random inputs to an untrained net do often.
    derived = nce_tf.derive_model(net, widths, inherit=True, policy=QuantPolicy(w_bits=2, a_bits=8))
    np.testing.assert_array_equal(derived.get_layer("scale").scale.numpy(), sn_scale.numpy()[: widths[1]])
    cost = count_model(derived)
    assert (cost.macs, cost.params) == net.space.exact_cost(widths) == _by_hand(*widths[1:])

    # Export to int8 TFLite: the scale is one of its ops, the file computes what the Keras model does
    # (a classifier of unit-variance weights, so the logits stand well above the int8 output step).
    head = derived.get_layer("logits")
    head.kernel.assign(rng.normal(size=head.kernel.shape).astype("float32"))
    flat, _ = nce_tf.export.convert(derived, x[:32])
    lite, _ = run_tflite(flat, x[32:])
    keras_logits = derived.predict(x[32:], verbose=0)
    assert np.abs(lite - keras_logits).max() < 0.1 * np.abs(keras_logits).max()
