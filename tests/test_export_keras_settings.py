"""The int8 export honours every Keras layer setting it accepts, and refuses in one line the ones it
does not compute: each of these once exported silently wrong, or crashed with a traceback (dilations
and non-square strides dropped, an average pool fused into a 1x1 conv whatever its stride and padding,
a leaky ReLU or a softmax exported as a plain clamp, a channel concatenation on any axis, a BN
without gamma or beta, a BN folded into a conv another layer also reads)."""

import keras
import numpy as np
import pytest

import nce_tf
from nce_tf.errors import UsageError
from nce_tf.export import tflite_graph
from nce_tf.export.exporter import run_tflite
from nce_tf.layers import QuantActivation

L = keras.layers
X = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype("float32")


def _model(body, shape=(8, 8, 3)):
    keras.utils.set_random_seed(0)
    i = keras.Input(shape)
    return keras.Model(i, body(i))


def _conv_bn_read_twice(i):
    x = L.Conv2D(4, 3, padding="same", name="c")(i)
    return L.Add()([L.BatchNormalization(name="bn")(x), x])


HONOURED = {
    "dilated conv": lambda i: L.Conv2D(4, 3, dilation_rate=2, name="c")(i),
    "dilated depthwise conv": lambda i: L.DepthwiseConv2D(3, dilation_rate=2, name="c")(i),
    "conv of strides (1, 2)": lambda i: L.Conv2D(4, 3, strides=(1, 2), name="c")(i),
    "BN without gamma": lambda i: L.BatchNormalization(scale=False, name="bn")(L.Conv2D(4, 3, name="c")(i)),
    "BN without beta": lambda i: L.BatchNormalization(center=False, name="bn")(L.Conv2D(4, 3, name="c")(i)),
    "average pool of stride 1 before a 1x1 conv": lambda i: L.Conv2D(4, 1, name="c")(
        L.AveragePooling2D(2, strides=1)(L.ReLU()(i))),
    "padded average pool before a 1x1 conv": lambda i: L.Conv2D(4, 1, name="c")(
        L.AveragePooling2D(3, padding="same")(L.ReLU()(i))),
    "average pool fused into a 1x1 conv": lambda i: L.Conv2D(4, 1, name="c")(
        L.AveragePooling2D(2)(L.ReLU()(i))),
    "average pool as the output": lambda i: L.AveragePooling2D(2)(L.ReLU()(L.Conv2D(4, 3, name="c")(i))),
}


@pytest.mark.parametrize("case", sorted(HONOURED))
def test_a_setting_the_export_accepts_is_computed_as_keras_does(case):
    model = _model(HONOURED[case])
    keras_out = model.predict(X, verbose=0)
    graph_out = np.asarray(tflite_graph.build_graph(model, tflite_graph.calibrate(model, X))(X))
    flat, _ = nce_tf.export.convert(model, X)
    lite, _ = run_tflite(flat, X, "builtin")
    step = (max(float(keras_out.max()), 0.0) - min(float(keras_out.min()), 0.0)) / 255
    assert lite.shape == keras_out.shape
    # the file computes its int8 graph; an unfused average pool rounds its int8 sum in TFLite's own
    # way, one pool step that the 1x1 conv after it carries into up to 2 of its output steps
    unfused_pool = "average pool" in case and "fused" not in case and "output" not in case
    assert np.abs(lite - graph_out).max() <= (2.01 if unfused_pool else 1.01) * step
    # and the graph the Keras model, to int8 rounding (a dropped dilation was 160 steps off)
    assert np.abs(graph_out - keras_out).max() <= 4 * step


REFUSED = {
    "softmax": (lambda i: L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(i)),
                "Received: activation='softmax'"),
    "sigmoid conv": (lambda i: L.Conv2D(4, 3, activation="sigmoid")(i), "Received: activation='sigmoid'"),
    "leaky ReLU": (lambda i: L.ReLU(negative_slope=0.2)(L.Conv2D(4, 3)(i)), "Received: negative_slope=0.2"),
    "thresholded ReLU": (lambda i: L.ReLU(threshold=0.5)(L.Conv2D(4, 3)(i)), "threshold=0.5"),
    "depth multiplier": (lambda i: L.DepthwiseConv2D(3, depth_multiplier=2)(i), "Received: depth_multiplier=2"),
    "concatenation on rows": (lambda i: L.Concatenate(axis=1)([L.ReLU()(i), i]), "Received: axis=1"),
    "BN after a conv's ReLU": (lambda i: L.BatchNormalization(name="bn")(L.Conv2D(4, 3, activation="relu")(i)),
                               "Received: 'bn'"),
    "BN of a conv another layer reads": (_conv_bn_read_twice, "no other reader. Received: 'bn'"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_setting_the_export_does_not_compute_is_refused_in_one_line(case):
    body, needle = REFUSED[case]
    with pytest.raises(UsageError, match="Export") as info:
        nce_tf.export.convert(_model(body), X)
    assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("pact_first", [True, False])
def test_a_conv_read_by_its_activation_and_another_layer_converts_in_either_order(pact_first):
    """PACT's clip reads the conv's float output whichever reader comes first (with the add first,
    the conv was requantized and the converter refused PACT's MINIMUM of two scales)."""
    def body(i):
        x = L.Conv2D(4, 3, padding="same")(i)
        act = QuantActivation(nce_tf.quant.PACT(bits=2))
        if pact_first:
            return L.Add()([act(x), x])
        y = L.Add()([x, x])
        return L.Add()([act(x), y])

    model = _model(body)
    keras_out = model.predict(X, verbose=0)
    flat, _ = nce_tf.export.convert(model, X)
    lite, _ = run_tflite(flat, X, "builtin")
    graph_out = np.asarray(tflite_graph.build_graph(model, tflite_graph.calibrate(model, X))(X))
    step = (float(keras_out.max()) - min(float(keras_out.min()), 0.0)) / 255
    assert np.abs(lite - graph_out).max() <= 1.01 * step
