"""Float initialisation and knowledge distillation (issue 15): nce_tf.train.float_init, nce_tf.train.distill
and their use by run_training.

- a float checkpoint loaded into a W2A2 network computes the float outputs once the quantizers are off;
- the channel rule for other widths, checked against filters chosen by hand (an add-tied pair, a wider
  layer with fresh filters and fresh input columns downstream);
- PACT clips from statistics against a brute-force search of the squared error;
- the KD loss against numpy, and one Distiller step (its loss and its SGD update) against numpy, with a
  teacher and with the student as its own teacher (the KL term and its gradient vanish);
- a Distiller on two logical CPUs (MirroredStrategy) against one device;
- a W2A2 run_training from a float checkpoint, with PACT statistics and a teacher: what it records (both
  PACT clips against a grid search of the squared error, the test accuracy against the saved model).

The bad inputs (another model, a teacher of other classes, kd_weight and kd_temperature out of range)
are rows of tests/test_tools.py's bad-input table.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from nce_tf import data, distribute, models
from nce_tf.jobs import run_training
from nce_tf.jobs.train import PACT_STATS_BATCHES
from nce_tf.layers import QuantActivation, QuantConv2D, QuantDense
from nce_tf.quant import PACT
from nce_tf.train import Distiller, TrainConfig, calibrate_pact, kd_loss, load_float_weights
from nce_tf.train.float_init import describe_source, mse_clip


def _randomise_bn(model, seed):
    """BN statistics and affine terms away from (0, 1), so that copying them shows in the outputs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            layer.beta.assign(rng.normal(0.0, 0.3, n))
            layer.moving_mean.assign(rng.normal(0.0, 0.3, n))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n))


class _ReLU:
    """Stands in for PACT: the float activation (quantization off)."""

    def __call__(self, x, weights=None, training=None):
        return keras.ops.relu(x)


def _quantizers_off(model):
    for layer in model.layers:
        if hasattr(layer, "kernel_quantizer"):
            layer.kernel_quantizer = None
        if isinstance(layer, QuantActivation):
            layer.quantizer = _ReLU()


def test_a_float_checkpoint_gives_the_float_outputs_with_quantization_off(tmp_path):
    keras.utils.set_random_seed(1)
    float_net = models.build_model("resnet8")
    _randomise_bn(float_net, 1)
    path = str(tmp_path / "float.keras")
    float_net.save(path)
    keras.utils.set_random_seed(2)  # another initialisation: every weight must come from the file
    w2a2 = models.build_model("resnet8", policy=models.QuantPolicy(w_bits=2, a_bits=2))
    report = load_float_weights(w2a2, path)
    assert report["fresh"] == report["partial"] == [] and len(report["loaded"]) == 19  # 9 convs, 9 BNs, fc
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    expected = float_net(x, training=False).numpy()
    assert np.abs(w2a2(x, training=False).numpy() - expected).max() > 1e-2  # quantized: not the float outputs
    _quantizers_off(w2a2)
    np.testing.assert_allclose(w2a2(x, training=False).numpy(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("widths", [
    [20, 16, 16, 32, 32, 64, 64],  # the stem alone: block s1_b0 now needs a projection (its shortcut was x)
    [16, 20, 16, 40, 32, 80, 64],  # the inner convs: fresh columns of the next conv
    [32, 32, 32, 64, 64, 128, 128],  # 2X everywhere
])
def test_a_wider_network_starts_from_the_float_networks_function(widths):
    """Fresh channels start silent and a projection the checkpoint lacks as its identity shortcut, so a
    wider network loaded from a float one computes its logits (inference, quantizers off); as built
    they were 0.15-0.29 test accuracy against the source's 0.65 on a trained ResNet-8."""
    keras.utils.set_random_seed(5)
    float_net = models.build_model("resnet8")
    _randomise_bn(float_net, 5)
    keras.utils.set_random_seed(6)
    wider = models.build_model("resnet8", widths, policy=models.QuantPolicy(w_bits=2, a_bits=2))
    _randomise_bn(wider, 6)  # nothing of the wider network's own BN may show
    report = load_float_weights(wider, float_net)
    assert report["partial"]
    x = np.random.default_rng(1).normal(size=(4, 32, 32, 3)).astype("float32")
    _quantizers_off(wider)
    np.testing.assert_allclose(wider(x, training=False).numpy(), float_net(x, training=False).numpy(),
                               atol=2e-5, rtol=0)


def _tied_net(width_ab, width_c, quantized):
    """conv a -> BN -> ReLU -> conv b -> BN, added to a's output (a and b tied) -> ReLU -> conv c -> BN ->
    ReLU -> GAP -> dense fc; W2A2 layers when ``quantized``."""
    L = keras.layers

    def conv(*args, **kwargs):
        return QuantConv2D(*args, kernel_quantizer="sawb", **kwargs) if quantized else L.Conv2D(*args, **kwargs)

    def act(name):
        return QuantActivation(PACT(2), name=name) if quantized else L.ReLU(name=name)

    inputs = keras.Input((8, 8, 3))
    a = conv(width_ab, 3, padding="same", use_bias=False, name="a")(inputs)
    a = act("a_act")(L.BatchNormalization(name="a_bn")(a))
    b = L.BatchNormalization(name="b_bn")(conv(width_ab, 3, padding="same", use_bias=False, name="b")(a))
    x = act("add_act")(L.Add(name="add")([a, b]))
    x = act("c_act")(L.BatchNormalization(name="c_bn")(conv(width_c, 3, padding="same", use_bias=False, name="c")(x)))
    dense = QuantDense(2, kernel_quantizer=None, name="fc") if quantized else L.Dense(2, name="fc")
    return keras.Model(inputs, dense(L.GlobalAveragePooling2D(name="gap")(x)))


def _with_filter_norms(shape, norms, rng):
    """A kernel whose output filter j has L1 norm ``norms[j]`` (equal magnitudes, random signs)."""
    per = np.prod(shape[:-1])
    return (rng.choice([-1.0, 1.0], size=shape) * np.asarray(norms, float) / per).astype("float32")


def test_a_wider_float_network_starts_from_the_float_function_with_fresh_channels_that_train():
    # Without PACT sites (ReLU, gradient 0 at 0) fresh channels keep their BN as built and their consumers'
    # columns start at 0: the same logits, and the columns take a gradient at once. (With gamma = beta = 0
    # there, as in a quantized target, every gradient below was exactly 0.)
    keras.utils.set_random_seed(5)
    float_net = models.build_model("resnet8")
    _randomise_bn(float_net, 5)
    keras.utils.set_random_seed(6)
    wider = models.build_model("resnet8", [16, 20, 16, 40, 32, 80, 64])
    _randomise_bn(wider, 6)
    load_float_weights(wider, float_net)
    x = np.random.default_rng(1).normal(size=(8, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(wider(x, training=False).numpy(), float_net(x, training=False).numpy(),
                               atol=2e-5, rtol=0)
    consumer = wider.get_layer("s1_b0_b_conv")  # reads s1_b0_a's 20 channels, 4 of them fresh
    np.testing.assert_array_equal(consumer.kernel.numpy()[:, :, 16:, :], 0.0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(np.arange(8) % 10, wider(x, training=True),
                                                                           from_logits=True))
    grads = tape.gradient(loss, wider.trainable_variables)
    grad = next(g for v, g in zip(wider.trainable_variables, grads) if v.path == consumer.kernel.path).numpy()
    assert np.abs(grad[:, :, 16:, :]).max() > 1e-6


def test_the_channel_rule_by_hand():
    rng = np.random.default_rng(0)
    source = _tied_net(4, 3, quantized=False)
    _randomise_bn(source, 3)
    source.get_layer("a").kernel.assign(_with_filter_norms((3, 3, 3, 4), [4, 1, 3, 2], rng))
    source.get_layer("b").kernel.assign(_with_filter_norms((3, 3, 4, 4), [1, 1, 4, 2], rng))
    source.get_layer("fc").bias.assign([0.5, -0.5])
    target = _tied_net(2, 5, quantized=True)
    fresh = {w.path: w.numpy() for w in target.weights}
    report = load_float_weights(target, source)
    # a and b feed one Add, so they keep the same channels. Scores: a's norms / their mean 2.5 plus b's / 2:
    # [1.6, .4, 1.2, .8] + [.5, .5, 2, 1] = [2.1, .9, 3.2, 1.8]; the two largest are 2 and 0, kept in order.
    # (Each alone would keep [0, 2] for a, [2, 3] for b.)
    keep = [0, 2]
    get = lambda model, name, var="kernel": getattr(model.get_layer(name), var).numpy()  # noqa: E731
    np.testing.assert_array_equal(get(target, "a"), get(source, "a")[..., keep])
    np.testing.assert_array_equal(get(target, "b"), get(source, "b")[:, :, keep][..., keep])
    for name in ("a_bn", "b_bn"):
        for var in ("gamma", "beta", "moving_mean", "moving_variance"):
            np.testing.assert_array_equal(get(target, name, var), get(source, name, var)[keep])
    # c is wider than the checkpoint (5 > 3): its 3 filters in order, reading a/b's kept channels, then 2 fresh.
    c = get(target, "c")
    np.testing.assert_array_equal(c[..., :3], get(source, "c")[:, :, keep, :])
    np.testing.assert_array_equal(c[..., 3:], fresh[target.get_layer("c").kernel.path][..., 3:])
    for var in ("gamma", "beta", "moving_mean", "moving_variance"):
        path = getattr(target.get_layer("c_bn"), var).path
        np.testing.assert_array_equal(get(target, "c_bn", var)[:3], get(source, "c_bn", var))
        # the fresh channels start silent: gamma = beta = 0 (their statistics as built)
        np.testing.assert_array_equal(get(target, "c_bn", var)[3:], 0.0 if var in ("gamma", "beta") else fresh[path][3:])
    fc = get(target, "fc")  # the classifier's rows of the fresh channels stay fresh
    np.testing.assert_array_equal(fc[:3], get(source, "fc"))
    np.testing.assert_array_equal(fc[3:], fresh[target.get_layer("fc").kernel.path][3:])
    np.testing.assert_array_equal(get(target, "fc", "bias"), [0.5, -0.5])
    assert sorted(report["loaded"]) == ["a", "a_bn", "b", "b_bn"]
    assert sorted(report["partial"]) == ["c", "c_bn", "fc"] and report["fresh"] == []
    # rule="first" keeps the first filters instead.
    load_float_weights(target, source, rule="first")
    np.testing.assert_array_equal(get(target, "a"), get(source, "a")[..., :2])


def test_pact_clips_from_statistics_minimise_the_squared_error():
    inputs = keras.Input((64,))
    model = keras.Model(inputs, QuantActivation(PACT(2, alpha_init=4.0), name="act")(keras.layers.Dense(64)(inputs)))
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(32, 64)).astype("float32") for _ in range(3)]
    clips = calibrate_pact(model, batches)
    pre = np.concatenate([model.layers[1](b).numpy().ravel() for b in batches])
    assert clips == {"act": mse_clip(pre, 2)} and model.get_layer("act").alpha.numpy() == pytest.approx(clips["act"])

    def mse(a):  # PACT at 2 bits against ReLU, by brute force
        relu = np.maximum(pre, 0)
        return np.mean((np.round(np.minimum(relu, a) * 3 / a) * a / 3 - relu) ** 2)

    grid = np.linspace(0.01, pre.max(), 2000)
    assert mse(clips["act"]) <= min(mse(a) for a in grid) * 1.01
    assert mse(clips["act"]) < 0.5 * mse(4.0)  # the fixed clip was far off for unit-scale activations


def test_kd_loss_against_numpy():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(2, 6, 5)).astype("float32") * 3
    y = rng.integers(0, 5, size=6)
    w, temperature = 0.3, 2.5

    def log_softmax(z):
        z = z.astype(np.float64) - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    ce = -log_softmax(s)[np.arange(6), y]
    p_t = np.exp(log_softmax(t / temperature))
    kl = (p_t * (np.log(p_t) - log_softmax(s / temperature))).sum(axis=-1)
    expected = (1 - w) * ce + w * temperature ** 2 * kl
    np.testing.assert_allclose(kd_loss(y, s, t, w, temperature).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(kd_loss(y, s, t, 0.0, temperature).numpy(), ce, rtol=1e-5)
    np.testing.assert_allclose(kd_loss(y, s, t, 1.0, temperature).numpy(), temperature ** 2 * kl, rtol=1e-5)


def _softmax(z):
    z = np.asarray(z, np.float64) - np.max(z, axis=-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def _one_distillation_step(teacher_kernel, teacher_bias):
    """A Dense student (4 inputs, 5 classes) after one SGD step (lr 0.5) of a Distiller (w = 0.6, T = 3)
    on one batch of 8, against a Dense teacher with the given weights: ``(student kernel, bias, loss)``."""
    student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
    teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
    student.set_weights([_KD_KERNEL, _KD_BIAS])
    teacher.set_weights([teacher_kernel, teacher_bias])
    distiller = Distiller(student, teacher, kd_weight=0.6, temperature=3.0)
    distiller.compile(keras.optimizers.SGD(0.5))
    loss = distiller.fit(_KD_X, _KD_Y, batch_size=8, epochs=1, shuffle=False, verbose=0).history["loss"][0]
    return student.get_weights() + [loss]


_KD_RNG = np.random.default_rng(4)
_KD_X = _KD_RNG.normal(size=(8, 4)).astype("float32")
_KD_Y = np.array([0, 1, 2, 3, 4, 0, 1, 2])
_KD_KERNEL, _KD_BIAS = _KD_RNG.normal(size=(4, 5)).astype("float32"), _KD_RNG.normal(size=5).astype("float32")
_KD_TEACHER = (_KD_RNG.normal(size=(4, 5)) * 2).astype("float32"), _KD_RNG.normal(size=5).astype("float32")


def test_one_distillation_step_uses_the_teachers_logits():
    """One ``Distiller`` step against numpy: the reported loss is the batch mean of
    ``(1 - w) CE(y, s) + w T^2 KL(softmax(t/T) || softmax(s/T))`` at the student's starting weights, and
    the step is SGD along its gradient, which for logits ``s = x W + b`` is, per example,
    ``dL/ds = (1 - w) (softmax(s) - onehot(y)) + w T (softmax(s/T) - softmax(t/T))``
    (``T^2`` times the ``1/T`` of ``d(s/T)/ds``), averaged over the batch; ``dW = x^T dL/ds``.

    Against a teacher whose logits are the student's own (a copy of it), the KL term and its gradient
    vanish: the step is the plain cross-entropy's, scaled by ``1 - w``; the real teacher's step differs."""
    w, temperature, lr = 0.6, 3.0, 0.5
    x, onehot = _KD_X.astype(np.float64), np.eye(5)[_KD_Y]
    results = {}
    for name, (tk, tb) in {"teacher": _KD_TEACHER, "itself": (_KD_KERNEL, _KD_BIAS)}.items():
        s, t = x @ _KD_KERNEL + _KD_BIAS, x @ tk.astype(np.float64) + tb
        p_s, q_s, q_t = _softmax(s), _softmax(s / temperature), _softmax(t / temperature)
        ce = -np.log(p_s[np.arange(8), _KD_Y])
        kl = (q_t * (np.log(q_t) - np.log(q_s))).sum(axis=1)
        grad = ((1 - w) * (p_s - onehot) + w * temperature * (q_s - q_t)) / 8
        kernel, bias, loss = _one_distillation_step(tk, tb)
        assert loss == pytest.approx(np.mean((1 - w) * ce + w * temperature ** 2 * kl), rel=1e-5)
        np.testing.assert_allclose(kernel, _KD_KERNEL - lr * x.T @ grad, rtol=0, atol=1e-5)
        np.testing.assert_allclose(bias, _KD_BIAS - lr * grad.sum(axis=0), rtol=0, atol=1e-5)
        results[name] = kernel, kl.mean()
    # Measured: the teacher's mean KL 0.69, its kernel 0.30 from the self-taught one at the largest.
    assert results["itself"][1] == pytest.approx(0.0, abs=1e-12) and results["teacher"][1] > 0.1
    assert np.abs(results["teacher"][0] - results["itself"][0]).max() > 0.05


def _small_net(seed, width):
    keras.utils.set_random_seed(seed)
    L = keras.layers
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(width, 3, padding="same", use_bias=False, kernel_regularizer=keras.regularizers.L2(1e-3))(inputs)
    x = L.ReLU()(L.BatchNormalization(synchronized=True)(x))
    return keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(x)))


def _distil(strategy):
    with strategy.scope():
        student, teacher = _small_net(0, 8), _small_net(1, 6)
        _randomise_bn(teacher, 0)
        distiller = Distiller(student, teacher, kd_weight=0.7, temperature=3.0)
        optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
        distiller.compile(optimizer, metrics=["accuracy"])
        optimizer.build(student.trainable_variables)
    rng = np.random.default_rng(0)
    data = tf.data.Dataset.from_tensor_slices((rng.normal(size=(48, 8, 8, 3)).astype("float32"), np.arange(48) % 10))
    teacher_before = [w.numpy() for w in teacher.weights]
    logs = distiller.fit(data.batch(16), epochs=1, verbose=0, shuffle=False).history
    for before, after in zip(teacher_before, teacher.weights):  # inference mode, frozen: BN statistics too
        np.testing.assert_array_equal(before, after.numpy())
    return [w.numpy() for w in student.weights], logs["loss"][0]


def test_distillation_on_two_replicas_matches_one_device():
    assert len(tf.config.list_logical_devices("CPU")) == 2, "tests/conftest.py configures two logical CPUs"
    single, loss_1 = _distil(distribute.get_strategy("default"))
    mirrored, loss_2 = _distil(distribute.get_strategy("mirrored", 2))
    assert loss_1 == pytest.approx(loss_2, rel=1e-5)  # the global-batch mean, not 1/R of it
    for a, b in zip(single, mirrored):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def _tiny_zoo_style(input_shape=(32, 32, 3), num_classes=10, policy=None, weight_decay=0.0):
    """Two conv + BN + activation stages and a classifier, built as the zoo builds (a run's model_fn)."""
    from nce_tf.models.blocks import Builder

    bld = Builder(policy or models.QuantPolicy(), weight_decay)
    inputs = keras.Input(input_shape)
    x = bld.conv_bn(inputs, 8, 3, 2, "stem", role="first")
    x = bld.conv_bn(x, 16, 3, 2, "body")
    return keras.Model(inputs, bld.classifier(x, num_classes))


def _float_net_file(path, seed):
    keras.utils.set_random_seed(seed)
    net = _tiny_zoo_style()
    _randomise_bn(net, seed)
    net.save(path)
    return net


def _w2a2_run(tmp_path, colour_task, name, teacher):
    config = TrainConfig(workdir=str(tmp_path / name), dataset=f"npz:{colour_task.path}", w_bits=2, a_bits=2,
                         epochs=1, warmup_epochs=0, batch_size=32, steps_per_epoch=2, verbose=0,
                         init_from=str(tmp_path / "float.keras"), pact_init="stats",
                         teacher=teacher, kd_weight=0.5, kd_temperature=2.0)
    return config, run_training(config, model_fn=_tiny_zoo_style)


def _quantization_mse(values, clip, levels=3):
    """Squared error of 2-bit PACT (``levels`` steps of ``clip / levels`` on [0, clip]) over ``values``."""
    q = np.round(np.clip(values, 0, clip) / (clip / levels)) * (clip / levels)
    return float(np.mean((values - q) ** 2))


def _best_clip_on_a_grid(values):
    """``(clip, squared error)`` of 2-bit PACT minimised over a grid (250 clips up to the largest value, then
    251 around the best), a search that shares nothing with the calibration's percentile candidates."""
    grid = np.linspace(values.max() / 250, values.max(), 250)
    best = grid[int(np.argmin([_quantization_mse(values, c) for c in grid]))]
    grid = np.linspace(best - values.max() / 250, best + values.max() / 250, 251)
    errors = [_quantization_mse(values, c) for c in grid]
    return float(grid[int(np.argmin(errors))]), float(min(errors))


def _assert_least_error_clip(model, layer, batches, clip, training=False):
    """``clip`` is within 2% of the grid's least-error clip over the positive outputs of ``model``'s
    ``layer`` on ``batches`` (BN by batch statistics with ``training``), and its error within 0.5% of the least."""
    tap = keras.Model(model.input, model.get_layer(layer).output)
    values = np.concatenate([np.asarray(tap(x, training=training)).ravel() for x, _ in batches])
    values = values[values > 0]
    grid_clip, least = _best_clip_on_a_grid(values)
    assert clip == pytest.approx(grid_clip, rel=0.02), layer
    assert _quantization_mse(values, clip) <= 1.005 * least, layer


@pytest.mark.heavy  # 18-22 s alone (two short runs), before and after the clips' grid search (about 1 s)
def test_a_w2a2_run_from_a_float_checkpoint_with_a_teacher(tmp_path, colour_task):
    float_net = _float_net_file(str(tmp_path / "float.keras"), 3)
    config, metrics = _w2a2_run(tmp_path, colour_task, "run", str(tmp_path / "float.keras"))
    assert metrics["teacher"]["kd_weight"] == 0.5 and metrics["teacher"]["test_accuracy"] is None
    assert metrics["init_from"]["fresh"] == metrics["init_from"]["partial"] == []
    clips = metrics["pact_init"]["initial_clips"]
    assert sorted(clips) == ["body_act", "stem_act"]
    # The stem's clip from its own statistics: the stem conv stays float (the paper's first layer), so
    # the PACT site after it sees the float network's BN output on the run's first training batches
    # (trainer.PACT_STATS_BATCHES of epoch 0).
    source = data.get_source(f"npz:{colour_task.path}", seed=config.seed)
    batches = data.make_pipeline(source.train, source.info, training=True, batch_size=32, seed=config.seed,
                                 epoch=0).take(PACT_STATS_BATCHES)
    # The rule (the least squared error) found by a grid search over all of those activations: the recorded
    # clip is within 2% of the grid's best and its error within 0.5% of the least (measured: 0.13% and
    # 0.001%; the calibration scores percentiles of a 2^14-value subset per batch).
    _assert_least_error_clip(float_net, "stem_bn", batches, clips["stem_act"])
    # The body's site sees the student at its start: the W2 body conv from the float weights, after the
    # stem's PACT at its recorded clip (sites are calibrated in graph order, each after the ones upstream).
    # Measured: 0.5% from the grid's best clip, error 0.03% above the least.
    student = _tiny_zoo_style(policy=models.QuantPolicy(w_bits=2, a_bits=2))
    load_float_weights(student, str(tmp_path / "float.keras"))
    student.get_layer("stem_act").alpha.assign(clips["stem_act"])
    _assert_least_error_clip(student, "body_bn", batches, clips["body_act"])
    assert metrics["macs"] == 16 * 16 * 27 * 8 + 8 * 8 * 72 * 16 + 160  # the student's cost only
    with open(tmp_path / "run" / "config.json", encoding="utf-8") as f:
        settings = json.load(f)
    assert settings["teacher_sha256"] == settings["init_from_sha256"] == metrics["teacher"]["sha256"]
    assert settings["kd_temperature"] == 2.0 and settings["pact_init"] == "stats"
    # The saved model is the student (W2A2), and scores the recorded test accuracy on the test split.
    saved = keras.saving.load_model(str(tmp_path / "run" / "model.keras"), safe_mode=True)
    assert any(isinstance(layer, QuantActivation) for layer in saved.layers)
    tests = [(np.asarray(saved(x, training=False)).argmax(1), np.asarray(y))
             for x, y in data.make_pipeline(source.test, source.info, training=False, batch_size=64)]
    accuracy = np.mean(np.concatenate([p == y for p, y in tests]))
    assert len(np.concatenate([y for _, y in tests])) == len(colour_task.y_test)
    assert metrics["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    # The finished run's work directory names a teacher: its model and its recorded accuracy.
    described = describe_source(str(tmp_path / "run"), "teacher")
    assert described["file"] == str(tmp_path / "run" / "model.keras")
    assert described["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    # The teacher shapes the student's training: the same run (same seed, data, float start and PACT
    # clips) against another teacher ends with other weights; ignoring the teacher would give identical ones.
    _float_net_file(str(tmp_path / "other_teacher.keras"), 4)
    _, other = _w2a2_run(tmp_path, colour_task, "other", str(tmp_path / "other_teacher.keras"))
    assert other["pact_init"]["initial_clips"] == clips
    again = keras.saving.load_model(str(tmp_path / "other" / "model.keras"), safe_mode=True)
    moved = [np.abs(a.numpy() - b.numpy()).max() for a, b in zip(saved.trainable_weights, again.trainable_weights)]
    assert max(moved) > 1e-4, moved


_TABLE_SCRIPT = r"""
import dataclasses, json, sys
sys.path.insert(0, sys.argv[2])
from fake_runs import fake, times
import nce_tf.commands.cifar_subset_table as table
from nce_tf.plans import run_plan
plan = table.plan(sys.argv[1], [0, 1])
# The table's plan with every run a moment's child; the float run of seed 1 fails.
runs = [fake(r, seconds=0.05, fail=r.key == "w32a32_s1") for r in plan.runs]
outcome = run_plan(dataclasses.replace(plan, runs=tuple(runs)), jobs=2, verbose=False)
print(json.dumps({"runs": [dataclasses.asdict(r) for r in plan.runs],
                  "times": {r.key: times(r) for r in runs if r.finished()},
                  "failed": outcome.failed, "skipped": outcome.skipped}))
"""


def test_the_cifar_subset_table_starts_the_float_init_rows_from_the_float_run_of_their_seed(tmp_path):
    # In a child process: the table's module defines absl flags (out, jobs) that other commands define too.
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = str(tmp_path / "out")
    proc = subprocess.run([sys.executable, "-c", _TABLE_SCRIPT, out, os.path.join(repo, "tests")], cwd=repo,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": repo})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    runs = {r["key"]: r for r in result["runs"]}
    assert len(runs) == 18 and all(r["cwd"] == repo for r in runs.values())  # the presets' data paths: the checkout
    for seed in (0, 1):
        float_run, w2a2_run = os.path.join(out, f"w32a32_s{seed}"), os.path.join(out, f"w2a2_float_init_s{seed}")
        for key, tool, preset, flags, needs in (
                (f"w2a2_float_init_s{seed}", "train", "w2a2_float_init", [f"--init_from={float_run}"],
                 [f"w32a32_s{seed}"]),
                (f"w2a2_float_init_kd_s{seed}", "train", "w2a2_float_init_kd",
                 [f"--init_from={float_run}", f"--teacher={float_run}"], [f"w32a32_s{seed}"]),
                (f"w2a2_s{seed}", "train", "w2a2", [], []), (f"wrpn_w2a2_s{seed}", "nce", "wrpn_w2a2", [], []),
                # the searched rows: a search from the trained W2A2 network of the seed, its widths trained
                # from scratch with the W2A2 row's own preset
                *[(f"{search}_s{seed}", "search", search, [f"--init_from={w2a2_run}"], [f"w2a2_float_init_s{seed}"])
                  for search in ("nce_from_trained", "tas_from_trained")],
                *[(f"w2a2_{search}_s{seed}", "train", "w2a2",
                   [f"--arch={os.path.join(out, f'{search}_s{seed}', 'arch.json')}"], [f"{search}_s{seed}"])
                  for search in ("nce_from_trained", "tas_from_trained")]):
            run = runs[key]
            assert run["workdir"] == os.path.join(out, key) and run["needs"] == needs
            assert run["argv"] == ["-m", "nce_tf", tool, f"--flagfile=cifar_subset/{preset}", f"--seed={seed}",
                                   *flags, f"--workdir={run['workdir']}", "--verbose=0"]
    times = result["times"]
    for dependent in ("w2a2_float_init_s0", "w2a2_float_init_kd_s0"):  # after the float run of seed 0
        assert times[dependent][0] > times["w32a32_s0"][1]
    assert result["failed"] == [["w32a32_s1", "error: this run was told to fail", os.path.join(out, "w32a32_s1.log")]]
    # what starts from the failed float run of seed 1, directly or through its W2A2 network, is skipped
    lost = {"w2a2_float_init_s1", "w2a2_float_init_kd_s1", "nce_from_trained_s1", "tas_from_trained_s1",
            "w2a2_nce_from_trained_s1", "w2a2_tas_from_trained_s1"}
    assert {s[0] for s in result["skipped"]} == lost
    assert sorted(times) == sorted(set(runs) - {"w32a32_s1"} - lost)


@pytest.mark.heavy
def test_pact_clips_of_a_narrower_network_are_read_with_batch_statistics(tmp_path, colour_task):
    """A stem narrowed from 8 to 4 channels: the body conv sums 4 of the 8 channels its loaded BN moving
    statistics describe, so its site is calibrated on batch statistics (it read the stale moving ones)."""
    def narrower(input_shape=(32, 32, 3), num_classes=10, policy=None, weight_decay=0.0):
        from nce_tf.models.blocks import Builder

        bld = Builder(policy or models.QuantPolicy(), weight_decay)
        inputs = keras.Input(input_shape)
        x = bld.conv_bn(inputs, 4, 3, 2, "stem", role="first")
        return keras.Model(inputs, bld.classifier(bld.conv_bn(x, 16, 3, 2, "body"), num_classes))

    _float_net_file(str(tmp_path / "float.keras"), 3)
    config = TrainConfig(workdir=str(tmp_path / "narrow"), dataset=f"npz:{colour_task.path}", w_bits=2, a_bits=2,
                         epochs=1, warmup_epochs=0, batch_size=32, steps_per_epoch=2, verbose=0,
                         init_from=str(tmp_path / "float.keras"), pact_init="stats")
    metrics = run_training(config, model_fn=narrower)
    assert metrics["init_from"]["partial"] == metrics["init_from"]["fresh"] == []  # narrower: loads whole
    clips = metrics["pact_init"]["initial_clips"]
    source = data.get_source(f"npz:{colour_task.path}", seed=config.seed)
    batches = data.make_pipeline(source.train, source.info, training=True, batch_size=32, seed=config.seed,
                                 epoch=0).take(PACT_STATS_BATCHES)
    student = narrower(policy=models.QuantPolicy(w_bits=2, a_bits=2))
    load_float_weights(student, str(tmp_path / "float.keras"))
    student.get_layer("stem_act").alpha.assign(clips["stem_act"])
    _assert_least_error_clip(student, "body_bn", batches, clips["body_act"], training=True)
