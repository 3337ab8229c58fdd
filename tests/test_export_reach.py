"""The int8 export refuses a PACT site whose input was calibrated too far beyond its step.

TFLite requantizes a conv's int32 accumulator straight to the PACT step (``s_out = alpha / 255``)
by ``acc * 2^shift`` in int32, ``2^shift`` about ``s_in s_w / s_out``: once a pre-activation is
about 2^30 steps away the product wraps and the file's outputs flip across the whole int8 range
(``nce_tf.export.tflite_graph``, module doc).  A conv + BN + PACT whose BN gamma sets the
pre-activations' reach: the builtin kernels' file against the Keras model on either side of it.
"""

import keras
import numpy as np
import pytest

import nce_tf
from nce_tf.errors import UsageError
from nce_tf.export import tflite_graph
from nce_tf.export.exporter import run_tflite
from nce_tf.models import QuantPolicy

L = keras.layers


def _scaled_net(gamma):
    """conv -> BN (every gamma ``gamma``) -> PACT (alpha 1, 8 bits) -> GAP -> dense: the BN output
    reaches about ``40 gamma`` PACT steps on unit-normal images.  Seeded: how far a wrapped file
    lands from Keras depends on the kernels (16-68% of the largest logit over unseeded builds)."""
    keras.utils.set_random_seed(0)
    i = keras.Input((6, 6, 3))
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="c0")(i)
    x = L.BatchNormalization(name="bn0")(x)
    x = QuantPolicy(w_bits=32, a_bits=8).activation("act0")(x)
    model = keras.Model(i, L.Dense(4, name="logits")(L.GlobalAveragePooling2D(name="gap")(x)))
    model.get_layer("bn0").gamma.assign(np.full(8, gamma, "float32"))
    model.get_layer("act0").alpha.assign(1.0)
    return model


def _reach(model, x):
    """max |pre-activation| / PACT step, measured on the Keras model."""
    pre = keras.Model(model.inputs, model.get_layer("bn0").output)(x).numpy()
    return float(np.abs(pre).max()) * 255.0


X = np.random.default_rng(0).normal(size=(16, 6, 6, 3)).astype("float32")


def test_a_pact_input_within_reach_exports_and_matches_keras():
    model = _scaled_net(1e5)
    assert 2**24 < _reach(model, X) < tflite_graph.REACH_LIMIT  # far out (XNNPACK refuses it), still exact
    flat, _ = nce_tf.export.convert(model, X)
    lite, _ = run_tflite(flat, X, "builtin")
    keras_logits = model.predict(X, verbose=0)
    assert np.abs(lite - keras_logits).max() < 0.05 * np.abs(keras_logits).max()


def test_a_pact_input_past_the_reach_limit_is_refused_in_one_line():
    model = _scaled_net(1e8)
    assert _reach(model, X) > 2**32
    with pytest.raises(UsageError, match=r"layer 'act0': its input reaches .* Allowed: under 2\^28") as e:
        nce_tf.export.convert(model, X)
    assert "\n" not in str(e.value)


def test_past_the_reach_limit_the_file_would_be_wrong(monkeypatch):
    """Why the limit exists: let it through, and the builtin kernels' file is off Keras by more than
    twice the 5% the same network keeps within reach (test above): measured 26% (0.7% within reach)."""
    monkeypatch.setattr(tflite_graph, "REACH_LIMIT", np.inf)
    model = _scaled_net(1e8)
    flat, _ = nce_tf.export.convert(model, X)
    lite, _ = run_tflite(flat, X, "builtin")
    keras_logits = model.predict(X, verbose=0)
    assert np.abs(lite - keras_logits).max() > 0.1 * np.abs(keras_logits).max()


def test_a_relu_reading_the_image_is_checked_against_the_input_range():
    """The image has no layer of its own in the calibrated ranges (``__input__``): a ReLU reading it
    exports, and its int8 file keeps the Keras logits within 5%."""
    i = keras.Input((6, 6, 3))
    model = keras.Model(i, L.Dense(4, name="logits")(L.Flatten()(L.ReLU(name="r")(i))))
    flat, _ = nce_tf.export.convert(model, X)
    lite, _ = run_tflite(flat, X, "builtin")
    keras_logits = model.predict(X, verbose=0)
    assert np.abs(lite - keras_logits).max() < 0.05 * np.abs(keras_logits).max()
