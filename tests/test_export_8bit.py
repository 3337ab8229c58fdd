"""The int8 export of 8-bit weight grids and of layers whose weights have all but died.

Two ways a compressed W8A8 MobileNetV2 (``results/compress_mobilenetv2``) lost its int8 file:

- an 8-bit zero-free grid (SAWB) has odd integers up to +-255 steps; an int8 range of +-127 of
  those steps clipped every weight past it (the graph no longer computed the Keras network);
- a conv whose kernel decayed to 1e-8 keeps a BN bias of 0.7: at the converter's int32 bias step
  ``s_in * s_w`` that bias needs 1e10, past int32; the file saturated it at -2^31 and the
  accumulator wrapped (a PACT output of 0 came out at alpha).

And a dead branch (a squeeze-excite reduce conv whose ReLU never fired, in CI): the conv reading it
was calibrated to 0, its int8 step floored at 1e-8 / 255 gave a requantization multiplier of 8e5,
and LiteRT's XNNPACK delegate aborted the test process instead of refusing the file (a dead tensor
now gets a unit range; XNNPACK is not handed a multiplier it refuses).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import nce_tf
from nce_tf.export import tflite_graph
from nce_tf.export import delegation
from nce_tf.export.delegation import delegated, interpreter, xnnpack_suspect
from nce_tf.export.exporter import run_tflite
from nce_tf.export.grid import integer_grid
from nce_tf.layers import QuantActivation, QuantConv2D

L = keras.layers
X = np.random.default_rng(0).normal(size=(16, 6, 6, 3)).astype("float32")


def _conv_bn(kernel_scale=1.0, beta=None):
    """conv (8-bit SAWB, 3x3, 3 -> 2) -> BN -> PACT (8 bits, alpha 1): a MobileNetV2 block's conv; returns
    the model with outputs (PACT, BN); ``beta``: BN offsets with moving variances of 1e-9."""
    i = keras.Input((6, 6, 3))
    x = QuantConv2D(2, 3, padding="same", use_bias=False, kernel_quantizer=nce_tf.quant.SAWB(bits=8), name="c0")(i)
    bn = L.BatchNormalization(name="bn0")(x)
    y = QuantActivation(nce_tf.quant.PACT(bits=8, alpha_init=1.0), name="act0")(bn)
    model = keras.Model(i, [y, bn])
    # normal weights: SAWB's 8-bit clip is 4.1 rms of them, the largest of 54 reach past half of it
    kernel = np.random.default_rng(1).normal(size=(3, 3, 3, 2)).astype("float32")
    model.get_layer("c0").kernel.assign(kernel * kernel_scale)
    if beta is not None:
        b = model.get_layer("bn0")
        b.beta.assign(np.asarray(beta, "float32"))
        b.moving_variance.assign(np.full(2, 1e-9, "float32"))
    return model


def test_an_8bit_zero_free_grid_keeps_its_levels_past_127_steps():
    """The int8 graph's BN output stays within an int8 step of Keras's (clipped at 127 steps, the
    largest weights were halved: several steps off)."""
    model = _conv_bn()
    ints = integer_grid(model.get_layer("c0")).ints
    assert np.abs(ints).max() > 127  # the case: levels an int8 range of 127 steps cannot reach
    ranges = tflite_graph.calibrate(model, X)
    plan = tflite_graph.Plan(model, ranges)
    kernel, _, bound = plan.folded(model.get_layer("c0"), model.get_layer("bn0"))
    assert (np.abs(kernel).max(axis=(0, 1, 2)) <= bound * (1 + 1e-6)).all()

    keras_bn = keras.Model(model.inputs, model.get_layer("bn0").output)(X).numpy()
    graph_bn = tflite_graph.build_graph(keras.Model(model.inputs, model.get_layer("bn0").output), ranges)(X)
    lo, hi = ranges["bn0"]
    step = (max(hi, 0) - min(lo, 0)) / 255
    assert np.abs(np.asarray(graph_bn) - keras_bn).max() <= 1.5 * step


def test_a_dead_kernel_keeps_its_bias_in_the_int8_file():
    """Kernel 1e-8 (folded 3e-7), BN beta (0.3, -0.7): the PACT outputs are (0.3, 0) everywhere,
    in Keras and in the builtin kernels' int8 file (the wrapped accumulator gave alpha = 1 for 0)."""
    model = _conv_bn(kernel_scale=1e-8, beta=[0.3, -0.7])
    pact = keras.Model(model.inputs, model.outputs[0])
    keras_out = pact.predict(X, verbose=0)
    assert np.allclose(keras_out[..., 0], 0.3, atol=1 / 255) and (keras_out[..., 1] == 0).all()
    flat, _ = nce_tf.export.convert(pact, X)
    lite, _ = run_tflite(flat, X, "builtin")
    assert np.abs(lite - keras_out).max() <= 1.5 / 255  # alpha 1, 8 bits: one PACT step is 1 / 255


def _dead_branch():
    """conv (bias -100: never positive) -> PACT (2 bits: 0 everywhere) -> conv (bias 0: 0 everywhere)
    -> ReLU -> pooling -> dense (bias 0.5): the logits are the dense bias for every image."""
    i = keras.Input((6, 6, 3))
    x = L.Conv2D(4, 1, bias_initializer=keras.initializers.Constant(-100.0), name="c0")(i)
    x = QuantActivation(nce_tf.quant.PACT(bits=2), name="dead")(x)
    x = L.ReLU(name="r1")(L.Conv2D(4, 1, name="c1")(x))
    out = L.Dense(3, bias_initializer=keras.initializers.Constant(0.5), name="logits")(L.GlobalAveragePooling2D()(x))
    return keras.Model(i, out)


def test_a_dead_branch_exports_within_the_multipliers_xnnpack_takes():
    """Every conv's requantization multiplier under 256, and XNNPACK runs the file to Keras's logits."""
    model = _dead_branch()
    keras_out = model.predict(X, verbose=0)
    assert np.allclose(keras_out, 0.5)
    flat, _ = nce_tf.export.convert(model, X)
    assert xnnpack_suspect(flat) is None
    assert any(delegated(interpreter(flat, "xnnpack")).values())
    lite, _ = run_tflite(flat, X, "xnnpack")
    assert np.abs(lite - keras_out).max() <= 0.5 / 255  # one int8 step of the logits' range [0, 0.5]


def test_xnnpack_is_not_handed_a_multiplier_it_refuses(monkeypatch):
    """The dead branch's old 1e-8 range: a multiplier of 2.7e4.  XNNPACK, tried in a child process,
    fails to prepare it: ``"xnnpack"`` says so in one line, ``"auto"`` leaves the file to the builtin
    kernels.  (Those ran it to logits of 0.06 for 0.5: the dense layer's int32 bias step ``s_in s_w``
    was 1e-8 / 255 of a weight, so the old range broke the file's arithmetic as well.)"""
    monkeypatch.setattr(tflite_graph, "DEAD_RANGE", 1e-8)
    flat, _ = nce_tf.export.convert(_dead_branch(), X)
    suspect = xnnpack_suspect(flat)
    assert suspect is not None and "(CONV_2D) requantizes by" in suspect
    with pytest.raises(RuntimeError, match=r"XNNPACK refuses this file \(op \d+ \(CONV_2D\).*failed to prepare"):
        interpreter(flat, "xnnpack")
    assert not any(delegated(interpreter(flat, "auto")).values())


def test_a_delegate_that_aborts_its_process_is_kept_out_of_this_one(monkeypatch):
    """LiteRT 2.3.0's XNNPACK aborted on one suspect file (a double free): the child's abort stands for
    it here.  ``"auto"`` survives it on the builtin kernels, ``"xnnpack"`` names the signal; a suspect
    file that XNNPACK does prepare in the child keeps XNNPACK."""
    flat, _ = nce_tf.export.convert(_dead_branch(), X)
    monkeypatch.setattr(delegation, "XNNPACK_MULTIPLIER_LIMIT", 1e-9)  # every conv a suspect
    assert xnnpack_suspect(flat) is not None
    assert any(delegated(interpreter(flat, "auto")).values())  # the child prepared it: XNNPACK kept
    monkeypatch.setattr(delegation, "_CHILD", "import os; os.abort()")
    assert not any(delegated(interpreter(flat, "auto")).values())
    with pytest.raises(RuntimeError, match="ended a child process with signal 6"):
        interpreter(flat, "xnnpack")


def _transpose_conv_int8():
    """A TFLite converter's int8 file of one TRANSPOSE_CONV (inputs: output shape, filter, data)."""
    rng = np.random.default_rng(0)
    w = tf.constant(rng.normal(size=(3, 3, 4, 2)).astype("float32"))

    @tf.function(input_signature=[tf.TensorSpec((1, 4, 4, 2), tf.float32)])
    def up(x):
        return tf.nn.conv2d_transpose(x, w, output_shape=(1, 8, 8, 4), strides=2, padding="SAME")

    converter = tf.lite.TFLiteConverter.from_concrete_functions([up.get_concrete_function()], up)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.normal(size=(1, 4, 4, 2)).astype("float32")] for _ in range(4))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def test_a_transpose_conv_multiplier_is_read_from_its_filter_and_data(monkeypatch):
    """TRANSPOSE_CONV lists its output shape first: the check reads the filter (input 1) and the data
    (input 2), not the shape tensor, whose missing scales once made it skip the op as a float one."""
    flat = _transpose_conv_int8()
    assert xnnpack_suspect(flat) is None
    monkeypatch.setattr(delegation, "XNNPACK_MULTIPLIER_LIMIT", 1e-9)  # every requantizing op a suspect
    assert "(TRANSPOSE_CONV) requantizes by" in xnnpack_suspect(flat)


def test_a_child_that_hangs_counts_as_a_refusal(monkeypatch):
    """A delegate that never finishes preparing the file in the child: ``"xnnpack"`` says so in one line,
    ``"auto"`` runs the builtin kernels (no exception escapes, nothing waits past the timeout)."""
    flat, _ = nce_tf.export.convert(_dead_branch(), X)
    monkeypatch.setattr(delegation, "XNNPACK_MULTIPLIER_LIMIT", 1e-9)
    monkeypatch.setattr(delegation, "_CHILD", "import time; time.sleep(60)")
    monkeypatch.setattr(delegation, "CHILD_TIMEOUT", 1.0)
    with pytest.raises(RuntimeError, match=r"did not finish in 1 s"):
        interpreter(flat, "xnnpack")
    assert not any(delegated(interpreter(flat, "auto")).values())


def test_a_one_layer_model_is_calibrated_over_every_image():
    """A one-output probe returns its tensor, not a list of one: calibration once walked its batch
    axis and took the first image's range for the layer."""
    model = keras.Sequential([keras.Input((6, 6, 3)), L.Conv2D(4, 1, name="c")])
    out = model.predict(X, verbose=0)
    assert tflite_graph.calibrate(model, X)["c"] == pytest.approx((float(out.min()), float(out.max())))


def test_a_bias_equal_on_every_channel_keeps_each_channels_scale():
    """Bias 0.5 on 4 channels whose weight scales differ 1:2:4:8: TF 2.21's converter quantized that
    constant with channel 0's scale for all four (channels 1-3 off by 0.3 to 3.6); the exported file
    stays within an output step or two of Keras on every channel."""
    model = keras.Sequential([keras.Input((6, 6, 3)), L.Conv2D(4, 1, name="c"), L.ReLU(name="r")])
    kernel = np.random.default_rng(1).normal(size=(1, 1, 3, 4)).astype("float32") * np.float32([1, 2, 4, 8])
    model.get_layer("c").set_weights([kernel, np.full(4, 0.5, "float32")])
    keras_out = model.predict(X, verbose=0)
    graph_out = np.asarray(tflite_graph.build_graph(model, tflite_graph.calibrate(model, X))(X))
    flat, _ = nce_tf.export.convert(model, X)
    lite, _ = run_tflite(flat, X, "builtin")
    step = float(keras_out.max()) / 255
    assert np.abs(lite - graph_out).max() <= 1.01 * step  # the file computes its int8 graph
    assert np.abs((lite - keras_out).mean(axis=(0, 1, 2))).max() <= 0.5 * step  # no channel shifted
