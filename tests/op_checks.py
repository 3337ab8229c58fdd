"""Checks an op's tests share: the super-net's forward against the derived network's, and the int8
TFLite file against the Keras model.

``supernet_matches_derived``: with alpha pinned so every row's argmax is a chosen candidate and
both sampled candidates equal it, the super-net computes exactly the derived network at those
widths with inherited weights (in float): each op's super-net ``call`` is checked against the
Keras layers its ``derive`` writes.  ``int8_matches_keras``: the exported file's logits against
the Keras model's, within a tenth of the logits' range.
"""

import numpy as np
import tensorflow as tf

import nce_tf
from nce_tf.export.exporter import run_tflite


def pin_argmax(net, picks):
    """Sets alpha so row ``r``'s argmax is candidate ``picks[r]`` (clipped to the live ones); returns
    the widths and the sample ``(widths, index, mix)`` with both candidates of every row at it."""
    picks = np.minimum(np.asarray(picks), net.num_candidates.numpy() - 1)
    alpha = np.full(net.alpha.shape, -5.0, "float32")
    alpha[np.arange(len(picks)), picks] = 5.0
    net.alpha.assign(alpha)
    widths = net.table_np[np.arange(len(picks)), picks]
    pair = lambda v: tf.constant(np.stack([v, v], 1).astype("int32"))  # noqa: E731
    return [int(w) for w in widths], (pair(widths), pair(picks), tf.constant(np.full((len(picks), 2), 0.5, "float32")))


def supernet_matches_derived(net, x, picks, atol=1e-4):
    """The super-net's forward at ``picks`` equals the derived network's with inherited weights."""
    widths, sample = pin_argmax(net, picks)
    expected, _ = net.forward(tf.constant(x), sample, training=False)
    derived = nce_tf.derive_model(net, widths, inherit=True)
    np.testing.assert_allclose(derived(x, training=False).numpy(), expected.numpy(), atol=atol, rtol=1e-4)
    return widths, derived


def int8_matches_keras(model, x, calibration=None, rel=0.1, against="keras"):
    """Converts ``model`` to int8 TFLite (calibrated on ``x[:calibration]``) and checks its logits on
    the rest against Keras's, within ``rel`` of their largest magnitude.  ``calibration=None``:
    calibrated and checked on all of ``x``, so no value falls outside its calibrated int8 range (a
    check of the file's arithmetic, not of how calibration generalizes); returns the largest
    difference and the bound.

    ``against="graph"``: the file against the export's own int8 graph (the float TensorFlow graph with
    int8 fake quantization that ``convert`` returns), the bound still a tenth of the Keras logits: the
    file's arithmetic checked apart from the network's sensitivity to int8 rounding, for a network
    (an untrained MobileNetV2) whose Keras logits move by about the bound under that rounding alone."""
    held_out = x if calibration is None else x[calibration:]
    flat, graph = nce_tf.export.convert(model, x if calibration is None else x[:calibration])
    lite, _ = run_tflite(flat, held_out)
    keras_logits = model.predict(held_out, verbose=0)
    if against == "graph":
        reference = np.concatenate([np.asarray(graph(tf.constant(held_out[i:i + 1]))) for i in range(len(held_out))])
    else:
        reference = keras_logits
    diff, bound = float(np.abs(lite - reference).max()), rel * float(np.abs(keras_logits).max())
    assert diff < bound, (diff, bound)
    return diff, bound
