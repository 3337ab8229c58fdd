"""Mixed precision: the 2-bit grids under every policy, a W2A2 training step and a search step under
mixed_bfloat16 against float32, loss scaling under mixed_float16, the run's setting, and the export.

Tolerances, measured here (W2A2 ResNet-8 at widths 8-32, 16 images, same weights in both runs):
bfloat16 rounds each conv output by up to 2^-9 of its value, which moves an activation across a
PACT level edge now and then; a moved activation is a whole level (alpha / 3) off, and it moves
others downstream.  The first site moves 0.07% of its elements, the last 14%; the logits then differ
by 12% (relative L2) where a W32A32 network, with no levels to cross, differs by 0.4%.  The grids
themselves do not move: the levels are float32's, rounded to the compute dtype.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from nce_tf import mixed_precision, quant
from nce_tf.errors import UsageError
from nce_tf.export.exporter import export_model, load_model, run_tflite
from nce_tf.export.tflite_graph import convert
from nce_tf.jobs import run_training
from nce_tf.layers import QuantActivation, QuantConv2D, QuantDense, QuantDepthwiseConv2D
from nce_tf.models import QuantPolicy, build_model
from nce_tf.search import SuperNet
from nce_tf.search.layers import SearchConv2D, SearchDense, SearchDepthwiseConv2D
from nce_tf.sources import build_space
from nce_tf.train import TrainConfig
from tool_settings import search_configs, train_config

MIXED = ("mixed_float16", "mixed_bfloat16")
WIDTHS = [8, 8, 8, 16, 16, 32, 32]
W2A2 = QuantPolicy(w_bits=2, a_bits=2)


def _rel(a, b):
    """``||a - b|| / ||b||`` in float32."""
    a, b = np.asarray(a, "float32").ravel(), np.asarray(b, "float32").ravel()
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _in(dtype, values):
    """``values`` (float32) rounded to ``dtype`` and read back as float32."""
    return keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.cast(np.asarray(values, "float32"), dtype), "float32"))


@pytest.mark.parametrize("policy", MIXED)
def test_a_2bit_layer_keeps_its_grid_under_a_mixed_policy(policy):
    with mixed_precision.policy_scope(policy):
        act = QuantActivation(quant.PACT(bits=2, alpha_init=3.0))
        conv = QuantConv2D(8, 3, use_bias=False, kernel_quantizer="sawb")
    dtype = keras.mixed_precision.Policy(policy).compute_dtype
    y = act(np.linspace(-2, 6, 101, dtype="float32")[None])
    assert y.dtype == dtype
    # Exactly the 4 PACT levels {0, 1, 2, 3} (alpha 3), as float32 computes them.
    np.testing.assert_array_equal(np.unique(keras.ops.convert_to_numpy(keras.ops.cast(y, "float32"))),
                                  [0.0, 1.0, 2.0, 3.0])
    conv.build((1, 6, 6, 4))
    assert conv.kernel.dtype == "float32"
    used = conv.quantize_kernel(conv.kernel)  # what the conv computes with
    grid = quant.SAWB(2)(conv.kernel.numpy()).numpy()  # float32's grid of the same float32 kernel
    assert used.dtype == dtype and len(np.unique(grid)) == 4
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(keras.ops.cast(used, "float32")), _in(dtype, grid))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", [*quant.WEIGHT_QUANTIZERS, "pact"])
def test_a_quantizer_given_16_bit_values_computes_them_in_float32(name, dtype):
    # What it returns is float32's result on the same (16-bit) values, rounded once to the input's dtype:
    # computed in 16 bits, the clip statistics and the rounding would differ (bfloat16: 8 bits of mantissa).
    q = quant.get_activation_quantizer(name, 2) if name == "pact" else quant.get_weight_quantizer(name, 2)
    weights = {"alpha": tf.constant(2.5)} if name == "pact" else {}
    x = tf.cast(np.random.default_rng(0).normal(0.0, 1.5, size=(3, 3, 16, 8)), dtype)
    y = q(x, weights)
    assert y.dtype == dtype
    expected = tf.cast(q(tf.cast(x, tf.float32), weights), dtype)
    np.testing.assert_array_equal(y.numpy().astype("float32"), expected.numpy().astype("float32"))


class _Recording(quant.SAWB):
    """SAWB that records the dtype of every kernel it is given."""

    def __call__(self, x, weights=None, training=None):
        self.seen.append(tf.convert_to_tensor(x).dtype.name)
        return super().__call__(x, weights, training=training)


_SAMPLE = (tf.constant([3, 6]), tf.constant([0, 2]), tf.constant([0.3, 0.7]))
QUANTIZED_LAYERS = {  # name: (layer given a quantizer, input shape, call arguments after the input)
    "QuantConv2D": (lambda q: QuantConv2D(6, 3, kernel_quantizer=q), (2, 6, 6, 4), ()),
    "QuantDense": (lambda q: QuantDense(6, kernel_quantizer=q), (2, 7), ()),
    "QuantDepthwiseConv2D": (lambda q: QuantDepthwiseConv2D(3, kernel_quantizer=q), (2, 6, 6, 4), ()),
    "SearchConv2D-pair": (lambda q: SearchConv2D(4, 8, 4, kernel_quantizer=q, num_candidates=4), (2, 6, 6, 4), _SAMPLE),
    "SearchConv2D-candidate": (lambda q: SearchConv2D(4, 8, 4, kernel_quantizer=q, num_candidates=4,
                                                      sawb_scope="candidate"), (2, 6, 6, 4), _SAMPLE),
    "SearchDense": (lambda q: SearchDense(7, 5, kernel_quantizer=q), (2, 7), ()),
    "SearchDepthwiseConv2D": (lambda q: SearchDepthwiseConv2D(6, kernel_quantizer=q), (2, 6, 6, 4), ()),
}


@pytest.mark.parametrize("name", list(QUANTIZED_LAYERS))
def test_the_weight_quantizer_sees_the_float32_kernel_under_mixed_bfloat16(name):
    # Keras casts a variable to the compute dtype when a layer reads it; a quantized kernel must reach its
    # quantizer in float32 (a bfloat16 kernel would move SAWB's clip and flip weights at a bin edge).
    make, shape, args = QUANTIZED_LAYERS[name]
    recording = _Recording(2)
    recording.seen = []
    with mixed_precision.policy_scope("mixed_bfloat16"):
        layer = make(recording)
    y = layer(np.random.default_rng(0).normal(size=shape).astype("float32"), *args)
    assert y.dtype == "bfloat16" and recording.seen and set(recording.seen) == {"float32"}


def _resnet8(policy, weights=None):
    with mixed_precision.policy_scope(policy):
        keras.utils.set_random_seed(3)
        model = build_model("resnet8", WIDTHS, policy=W2A2)
        # Keras's own train_step, eagerly (a traced step is the same code; tracing costs seconds here).
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True)
    if weights is not None:
        model.set_weights(weights)
    return model


def test_w2a2_resnet8_training_step_under_mixed_bfloat16_is_float32s_within_tolerance():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 32, 32, 3)).astype("float32"), np.arange(16) % 10
    reference = _resnet8("float32")
    sites = [layer.name for layer in reference.layers if isinstance(layer, QuantActivation)]
    runs = {}
    for policy in ("float32", "mixed_bfloat16"):
        model = _resnet8(policy, reference.get_weights())
        probe = keras.Model(model.inputs, [*(model.get_layer(n).output for n in sites), model.output])
        outs = [keras.ops.convert_to_numpy(keras.ops.cast(o, "float32")) for o in probe(x, training=False)]
        before = [v.numpy().copy() for v in model.trainable_weights]
        loss = float(model.train_on_batch(x, y))
        step = np.concatenate([(v.numpy() - b).ravel() for v, b in zip(model.trainable_weights, before)])
        runs[policy] = (model, outs, loss, step)
    (_, outs32, loss32, step32), (model, outs, loss, step) = runs["float32"], runs["mixed_bfloat16"]
    assert model.output.dtype == "bfloat16" and all(v.dtype == "float32" for v in model.weights)
    for name, ours, theirs in zip(sites, outs, outs32):
        levels = float(model.get_layer(name).alpha.numpy()) / 3 * np.arange(4)
        assert set(np.unique(ours)) <= set(_in("bfloat16", levels)), name  # float32's grid, in bfloat16
        assert len(np.unique(ours)) == len(np.unique(theirs)) == 4, name
    # The first site's input differs by bfloat16 rounding only: few of its activations change level.
    first, step_size = outs[0], float(model.get_layer(sites[0]).alpha.numpy()) / 3
    assert np.mean(np.round(first / step_size) != np.round(outs32[0] / step_size)) < 0.01  # measured 0.0007
    assert _rel(outs[-1], outs32[-1]) < 0.25  # measured 0.118 (module doc)
    assert abs(loss - loss32) < 0.01 * loss32  # measured 0.1%
    assert _cos(step, step32) > 0.8  # the update's direction; measured 0.94 (W32A32: 0.9996)
    for layer in model.layers:  # every quantized kernel computes on float32's grid of its weights
        if getattr(layer, "kernel_quantizer", None) is not None:
            grid = layer.kernel_quantizer(layer.kernel.numpy()).numpy()
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(
                keras.ops.cast(layer.quantize_kernel(layer.kernel), "float32")), _in("bfloat16", grid))


def _supernet(policy, bits, arch_balance="shared"):
    with mixed_precision.policy_scope(policy):
        net = SuperNet(build_space("resnet8"), policy=QuantPolicy(w_bits=bits, a_bits=bits), seed=0)
        net.configure_optimizers(keras.optimizers.SGD(0.05, momentum=0.9), keras.optimizers.Adam(1e-3, beta_1=0.5),
                                 arch_balance=arch_balance)
    net.arch_updates = True
    return net


def _search_step(net, x, y):
    """``(logits of the 1X sub-network before the step, the weights' update, alpha's update)`` of one
    bi-level step (the super-net's own train_step, eagerly: tracing it costs more than the step here)."""
    k = net.num_candidates.numpy()
    one_x = net.subnet_sample([int(net.table_np[r, k[r] - 1]) for r in range(len(k))])
    logits = keras.ops.convert_to_numpy(keras.ops.cast(net.forward(x, one_x)[0], "float32"))
    weights, alpha = [v.numpy().copy() for v in net.weight_variables], net.alpha.numpy().copy()
    net.train_step(((x, y), (x, y)))
    step = np.concatenate([(v.numpy() - w).ravel() for v, w in zip(net.weight_variables, weights)])
    return logits, step, net.alpha.numpy() - alpha


def _images(n=8):
    rng = np.random.default_rng(1)
    return rng.normal(size=(n, 32, 32, 3)).astype("float32"), np.arange(n) % 10


def test_w2a2_search_step_under_mixed_bfloat16_is_float32s_within_tolerance():
    x, y = _images()
    logits32, step32, alpha32 = _search_step(_supernet("float32", 2), x, y)
    net = _supernet("mixed_bfloat16", 2)
    logits, step, alpha = _search_step(net, x, y)
    # The super-net's 1X sub-network crosses PACT levels as the network above does, and more: its
    # inference-mode BN statistics are still the initial ones, so its activations are not normalised
    # (measured 0.25; W32A32: 0.005, a test of its own below).
    assert _rel(logits, logits32) < 0.5
    assert _rel(alpha, alpha32) < 1e-3  # Adam's first step is ~lr sign(g): the CE's sign survives bfloat16
    assert _cos(step, step32) > 0.8  # measured 0.90 (W32A32: 0.9995)
    for conv in (layer for layer in net.conv_layers if layer.kernel_quantizer is not None):
        w, used = conv.live_kernel(conv.max_in, conv.max_out)
        assert used.dtype == "bfloat16" and w.dtype == "float32"
        grid = conv.kernel_quantizer(w).numpy()  # float32's grid of the float32 kernel
        assert len(np.unique(grid)) == 4
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(keras.ops.cast(used, "float32")),
                                      _in("bfloat16", grid))
    sites = [act for act in net.act_layers if getattr(act, "alpha", None) is not None]
    assert len(sites) == 7
    for act in sites:  # every PACT site computes in bfloat16 on float32's 4 levels of its float32 alpha
        assert act.compute_dtype == "bfloat16" and act.alpha.dtype == "float32"
        alpha = float(act.alpha.numpy())
        out = keras.ops.convert_to_numpy(keras.ops.cast(act(np.linspace(-1, alpha + 1, 64, dtype="float32")), "float32"))
        np.testing.assert_array_equal(np.unique(out), _in("bfloat16", alpha / 3 * np.arange(4)))


@pytest.mark.heavy  # two super-nets built and stepped: 10 s each variant here
@pytest.mark.parametrize("arch_balance", ["shared", "split"])
def test_mixed_float16_search_step_scales_the_loss_as_fit_does(arch_balance):
    # A W32A32 super-net: with no levels to cross, float16 follows float32 closely (measured: updates
    # 0.8% apart), so a step without loss scaling (its gradients divided by 2^15 unscaled) cannot pass.
    x, y = _images()
    float32 = _supernet("float32", 32, arch_balance)
    logits32, step32, alpha32 = _search_step(float32, x, y)
    net = _supernet("mixed_float16", 32, arch_balance)
    ce_optimizer = net.arch_optimizer.ce if arch_balance == "split" else net.arch_optimizer
    assert isinstance(net.weight_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(ce_optimizer, keras.optimizers.LossScaleOptimizer)
    logits, step, alpha = _search_step(net, x, y)
    assert _rel(logits, logits32) < 0.01  # measured 0.0005 (bfloat16: 0.005)
    assert float(net.weight_optimizer.dynamic_scale.numpy()) == 2.0**15  # no step was skipped
    assert int(net.weight_optimizer.iterations.numpy()) == 1 and int(ce_optimizer.iterations.numpy()) == 1
    assert _rel(step, step32) < 0.05
    # The instruments record the CE part unscaled, and the cost part (computed off the network) exactly.
    assert _rel(net.alpha_ce_grad_sum.numpy(), float32.alpha_ce_grad_sum.numpy()) < 0.05
    np.testing.assert_allclose(net.alpha_cost_grad_sum.numpy(), float32.alpha_cost_grad_sum.numpy(), rtol=1e-6)
    # The whole update: with the cost part dominant (shared) it is float32's; split steps the CE part
    # with its own Adam, whose first step is ~lr sign(g_CE), so near-zero CE entries may flip sign.
    assert _rel(alpha, alpha32) < (1e-3 if arch_balance == "shared" else 0.1)


def test_mixed_precision_is_a_setting_recorded_only_when_set(tmp_path):
    from nce_tf.jobs.search import search_settings

    args = [f"--workdir={tmp_path}", "--model=resnet8"]
    default = train_config(args)
    assert default.mixed_precision == "float32"
    assert "mixed_precision" not in default.run_settings()  # a float32 run records what it recorded before
    assert "mixed_precision" not in search_settings(*search_configs(args))
    for policy in MIXED:
        assert train_config([*args, f"--mixed_precision={policy}"]).run_settings()["mixed_precision"] == policy
        assert search_settings(*search_configs([*args, f"--mixed_precision={policy}"]))["mixed_precision"] == policy
    for parse in (train_config, search_configs):
        with pytest.raises(UsageError, match=r"^Invalid mixed_precision\. Received: mixed_precision='float16'\. "
                                             r"Allowed: float32, mixed_float16, mixed_bfloat16\.$"):
            parse([*args, "--mixed_precision=float16"])


def test_policy_scope_restores_the_callers_policy_when_the_block_fails():
    keras.mixed_precision.set_global_policy("mixed_float16")  # the conftest fixture restores float32
    with pytest.raises(RuntimeError):
        with mixed_precision.policy_scope("mixed_bfloat16"):
            assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
            raise RuntimeError("the run failed")
    assert keras.mixed_precision.global_policy().name == "mixed_float16"


@pytest.mark.heavy
def test_a_mixed_precision_run_exports_as_its_float32_network(tmp_path):
    workdir = str(tmp_path / "run")
    config = TrainConfig(workdir=workdir, model="resnet8", dataset="synthetic", synthetic_train_size=64,
                         synthetic_test_size=32, w_bits=2, a_bits=2, epochs=1, warmup_epochs=0, batch_size=32,
                         verbose=0, mixed_precision="mixed_bfloat16")
    run_training(config)
    assert keras.mixed_precision.global_policy().name == "float32"  # the run's policy ended with it
    with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
        assert json.load(f)["mixed_precision"] == "mixed_bfloat16"
    trained = load_model(os.path.join(workdir, "model.keras"))
    assert {layer.dtype_policy.name for layer in trained.layers[1:]} == {"mixed_bfloat16"}
    # The float32 run's export path: the same weights in a network built under float32.
    float32 = build_model("resnet8", policy=W2A2)
    float32.set_weights(trained.get_weights())
    rng = np.random.default_rng(2)
    calib, images = rng.normal(size=(32, 32, 32, 3)).astype("float32"), rng.normal(size=(16, 32, 32, 3)).astype("float32")
    export_model(trained, str(tmp_path / "export"), calib, images)
    with open(tmp_path / "export" / "model_int8.tflite", "rb") as f:
        exported = f.read()
    reference, _ = convert(float32, calib)  # the int8 file export_model makes of a float32 network
    np.testing.assert_array_equal(run_tflite(exported, images[:4])[0], run_tflite(reference, images[:4])[0])
