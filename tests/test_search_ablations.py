"""Tests of the search's ablation switches: ``expansion_init`` (how an expansion starts its new
candidate) and ``sawb_scope`` (what a searchable layer's weight quantizer sees); their settings and
bad values with ``max_width_ratio`` and ``pair_merge`` (whose forward ``test_pair_merge.py`` tests)."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import nce_tf
from nce_tf.errors import UsageError
from nce_tf.jobs.search import _Search, search_settings
from nce_tf.models import QuantPolicy
from nce_tf.search import SearchConfig
from nce_tf.search.cwi import cwi_matrix_np
from nce_tf.search.expansion import expand
from nce_tf.search.layers import SearchConv2D, SearchDense
from nce_tf.search.supernet import SuperNet
from nce_tf.sources import build_space
from nce_tf.train import TrainConfig
from test_adapt import concat_net, mobile_net
from tool_settings import search_configs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOAT = QuantPolicy(w_bits=32, a_bits=32)


def sawb_np(w):
    """2-bit SAWB from its formula (Choi et al. 2018): ``a = 3.212 sqrt(E w^2) - 2.178 E|w|``, the
    levels ``{-a, -a/3, a/3, a}``, each weight clipped to ``[-a, a]`` and rounded to the nearest."""
    w = np.asarray(w, "float64")
    a = 3.212 * np.sqrt(np.mean(w**2)) - 2.178 * np.mean(np.abs(w))
    levels = a * np.array([-1.0, -1 / 3, 1 / 3, 1.0])
    return levels[np.abs(np.clip(w, -a, a)[..., None] - levels).argmin(-1)], a


# ------------------------------------------------------------------------ expansion_init


def _randomise_bn(net, rng):
    """Every candidate's BN of every searchable conv set to its own random values."""
    for layer in (lay for lay in net.conv_layers if lay.use_bn):
        shape = tuple(layer.gamma.shape)
        for var, value in ((layer.gamma, rng.normal(1, 0.3, shape)), (layer.beta, rng.normal(0, 0.3, shape)),
                           (layer.moving_mean, rng.normal(0, 0.3, shape)),
                           (layer.moving_variance, rng.uniform(0.5, 2, shape))):
            var.assign(value.astype("float32"))


def _widest(net):
    return net.table_np[np.arange(len(net.space.rows)), net.num_candidates.numpy() - 1]


# Row 4 (s2_b0_b_conv) has a tied shortcut conv; row 2 (s1_b0_b_conv) adds into the stem's identity
# path, and with the stem live at 20 channels its new channels 16..18 land on columns its consumers
# already use for the stem: no consumer column is new there.
@pytest.mark.parametrize("row, stem_k", [(4, 8), (2, 10)])
@pytest.mark.parametrize("mode", ["warm", "fresh"])
def test_warm_expansion_starts_the_new_candidate_as_the_old_widest(mode, row, stem_k):
    """Warm: right after the expansion the sub-network with the expanded row at its new width computes
    the old widest sub-network's logits (float weights, inference); the new candidate's BN is the
    old one's on the first C_K channels (momentum slots too) and zero beyond, so its new channels
    leave the layer at exactly zero.  Fresh: its BN restarts, and the logits move."""
    rng = np.random.default_rng(1)
    net = SuperNet(build_space("resnet8"), policy=FLOAT, seed=0, expansion_init=mode)
    net.configure_optimizers(keras.optimizers.SGD(0.1, momentum=0.9), keras.optimizers.Adam(1e-3))
    _randomise_bn(net, rng)
    for m in net.weight_optimizer.momentums:
        m.assign(rng.normal(size=m.shape).astype("float32"))
    k = net.num_candidates.numpy()
    k[0] = stem_k
    net.num_candidates.assign(k)
    alpha = np.zeros((7, 16), "float32")
    alpha[row, k[row] - 1] = 3.0  # the widest candidate's probability e^3 / (7 + e^3) = 0.74 > 0.3
    net.alpha.assign(alpha)
    x = tf.constant(rng.normal(size=(4, 32, 32, 3)).astype("float32"))
    old_widths = _widest(net)
    before = net.forward(x, net.subnet_sample(old_widths))[0].numpy()
    old = {lay.name: [v.numpy().copy() for v in (lay.gamma, lay.beta, lay.moving_mean, lay.moving_variance)]
           for lay in net.producers(row)}
    index = {id(v): i for i, v in enumerate(net.weight_variables)}
    slots = {lay.name: [net.weight_optimizer.momentums[index[id(v)]].numpy().copy() for v in (lay.gamma, lay.beta)]
             for lay in net.producers(row)}

    assert expand(net, threshold=0.3) == [row]
    new_widths = _widest(net)
    lo, hi, j = int(old_widths[row]), int(new_widths[row]), int(net.num_candidates.numpy()[row]) - 1
    assert hi > lo and (np.delete(new_widths, row) == np.delete(old_widths, row)).all()
    after = net.forward(x, net.subnet_sample(new_widths))[0].numpy()
    scale = np.abs(before).max()
    if mode == "fresh":
        assert np.abs(after - before).max() > 1e-2 * scale
        return
    np.testing.assert_allclose(after, before, atol=1e-5 * scale)
    for layer in net.producers(row):  # the conv and, for row 4, its tied shortcut
        for var, was in zip((layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance), old[layer.name]):
            np.testing.assert_array_equal(var.numpy()[j, :lo], was[j - 1, :lo])
        assert (layer.gamma.numpy()[j, lo:] == 0).all() and (layer.beta.numpy()[j, lo:] == 0).all()
        for var, was in zip((layer.gamma, layer.beta), slots[layer.name]):
            slot = net.weight_optimizer.momentums[index[id(var)]].numpy()
            np.testing.assert_array_equal(slot[j, :lo], was[j - 1, :lo])
            assert (slot[j, lo:] == 0).all()
        pair = tf.constant([hi, hi]), tf.constant([j, j]), tf.constant([0.5, 0.5])
        inputs = tf.constant(rng.normal(size=(2, 8, 8, layer.max_in)).astype("float32"))
        for training in (False, True):
            out = layer(inputs, *pair, training=training).numpy()
            assert (out[..., lo:hi] == 0).all() and np.abs(out[..., :lo]).max() > 0.1


@pytest.mark.parametrize("build", [mobile_net, concat_net])
def test_warm_expansion_of_every_row_of_an_adapted_model(build):
    """Every row expanded at once in user models: producers without BN (a biased conv, the hidden
    dense ``fc1``), depthwise convs and BNs between a producer and its consumer, a concatenation and
    a flatten: warm keeps the widest sub-network's logits (float weights)."""
    rng = np.random.default_rng(2)
    net = nce_tf.adapt(build(), w_bits=32, a_bits=32, seed=0, expansion_init="warm")
    _randomise_bn(net, rng)
    for layer in net.other_layers + [net.dense] + net.conv_layers:  # biases and shared BNs off their init
        for var in layer.trainable_weights:
            if var.name in ("bias", "gamma", "beta") and len(var.shape) == 1:
                var.assign(rng.normal(0.5 if var.name == "gamma" else 0.0, 0.3, var.shape).astype("float32"))
    k = net.num_candidates.numpy()
    alpha = np.zeros((len(k), 16), "float32")
    alpha[np.arange(len(k)), k - 1] = 3.0
    net.alpha.assign(alpha)
    x = tf.constant(rng.normal(size=(4, 16, 16, 3)).astype("float32"))
    old_widths = _widest(net)
    before = net.forward(x, net.subnet_sample(old_widths))[0].numpy()
    rows = expand(net, threshold=0.3)
    assert len(rows) == len(net.space.rows) - 1  # all but the pinned stem
    after = net.forward(x, net.subnet_sample(_widest(net)))[0].numpy()
    np.testing.assert_allclose(after, before, atol=1e-5 * np.abs(before).max())


# ------------------------------------------------------------------------ sawb_scope


def candidate_conv(rng, use_bn=True, **kwargs):
    """A 5 -> 12 searchable conv (SAWB, candidate scope unless ``kwargs`` say otherwise), random BN or bias."""
    kwargs = {"kernel_quantizer": "sawb", "sawb_scope": "candidate", **kwargs}
    layer = SearchConv2D(5, 12, 6, kernel_size=3, use_bn=use_bn, **kwargs)
    layer.build()
    # Filters of unequal sizes, as trained ones are: the first ones small, so a narrow slice's SAWB
    # clip is well below a wide one's.
    layer.kernel.assign(layer.kernel * np.linspace(0.3, 1.5, 12).astype("float32"))
    if use_bn:
        for var, value in ((layer.gamma, rng.normal(1, 0.3, (16, 12))), (layer.beta, rng.normal(0, 0.3, (16, 12))),
                           (layer.moving_mean, rng.normal(0, 0.3, (16, 12))),
                           (layer.moving_variance, rng.uniform(0.5, 2, (16, 12)))):
            var.assign(value.astype("float32"))
    else:
        layer.bias.assign(rng.normal(0, 0.3, 12).astype("float32"))
    return layer


def test_candidate_scope_quantizes_each_candidates_own_slice_with_its_own_sawb_scale():
    """Widths 4 and 9 from a 5-channel input: the kernel the layer convolves with is SAWB of
    ``W[..., :4]`` beside SAWB of ``W[..., :9]``, each at its own clip; the narrow one's clip is not
    the pair's (so the pair scope quantizes it differently)."""
    layer = candidate_conv(np.random.default_rng(0))
    w = layer.kernel.numpy()[:, :, :5, :]
    got = layer.candidate_kernel(tf.constant(5), tf.constant([4, 9])).numpy()
    (narrow, a_narrow), (wide, a_wide) = sawb_np(w[..., :4]), sawb_np(w[..., :9])
    assert got.shape == (3, 3, 5, 13)
    np.testing.assert_allclose(got[..., :4], narrow, rtol=1e-5)
    np.testing.assert_allclose(got[..., 4:], wide, rtol=1e-5)
    np.testing.assert_allclose(np.abs(got[..., :4]).max(), a_narrow, rtol=1e-5)  # the top level is hit
    assert a_narrow < 0.8 * a_wide
    pair_scope = layer.live_kernel(tf.constant(5), tf.constant(9))[1].numpy()[..., :4]
    assert not np.allclose(pair_scope, narrow, rtol=1e-3)


def _reference(layer, x, widths, index, mix, training, quantize):
    """TAS's forward with each candidate's own quantized slice: separate convs, BN_j (batch or
    running statistics), bias instead without BN, CWI to C*, the weighted sum; and each candidate's
    conv output."""
    c_star, out, ys = max(widths), 0.0, []
    for c, j, h in zip(widths, index, tf.unstack(mix)):
        y = tf.nn.conv2d(x, quantize(layer.kernel[:, :, :x.shape[-1], :c]), 1, "SAME")
        ys.append(y)
        if not layer.use_bn:
            z = y + layer.bias[:c]
        else:
            mu, var = (tf.nn.moments(y, axes=[0, 1, 2]) if training
                       else (layer.moving_mean[j, :c], layer.moving_variance[j, :c]))
            z = (y - mu) * tf.math.rsqrt(var + 1e-5) * layer.gamma[j, :c] + layer.beta[j, :c]
        out = out + h * tf.einsum("nhwc,cd->nhwd", z, cwi_matrix_np(c, c_star))
    return out, ys


@pytest.mark.parametrize("widths, index", [((4, 9), (2, 5)), ((10, 3), (7, 1)), ((6, 6), (3, 3))])
@pytest.mark.parametrize("use_bn, training", [(True, True), (True, False), (False, True)])
def test_candidate_scope_conv_equals_a_per_candidate_reference(widths, index, use_bn, training):
    """Output and gradients (input, kernel, gamma, beta, mixing weights) equal a forward that
    quantizes each candidate's own slice with numpy's SAWB (output) or the layer's SAWB per slice
    (gradients), convolves it apart and normalises it with its own statistics; in training each
    candidate's running statistics move towards its own conv output (a pair (j, j) once)."""
    rng = np.random.default_rng(3)
    layer = candidate_conv(rng, use_bn)
    x = tf.constant(rng.normal(size=(6, 7, 7, 5)).astype("float32"))
    mix = tf.constant([0.35, 0.65])
    g = tf.constant(rng.normal(size=(6, 7, 7, max(widths))).astype("float32"))
    stats0 = (layer.moving_mean.numpy(), layer.moving_variance.numpy()) if use_bn else None
    variables = [x, layer.kernel, mix] + ([layer.gamma, layer.beta] if use_bn else [layer.bias])
    results = []
    for run in ("layer", "reference"):
        with tf.GradientTape() as tape:
            tape.watch([x, mix])
            if run == "layer":
                out = layer(x, tf.constant(widths), tf.constant(index), mix, training=training)
            else:
                out, ys = _reference(layer, x, widths, index, mix, training, layer.kernel_quantizer)
            loss = tf.reduce_sum(out * g)
        results.append([out] + [tf.convert_to_tensor(t) for t in tape.gradient(loss, variables)])
    numpy_sawb = lambda w: tf.constant(sawb_np(w.numpy())[0], tf.float32)  # noqa: E731
    np.testing.assert_allclose(results[0][0].numpy(), _reference(layer, x, widths, index, mix, training,
                                                                 numpy_sawb)[0].numpy(), rtol=1e-4, atol=1e-4)
    for got, want in zip(*results):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)
    if not use_bn:
        return
    mean, var = stats0[0].copy(), stats0[1].copy()
    if training:
        for (c, j), y in zip(zip(widths, index), ys):
            y = y.numpy().reshape(-1, c)
            mean[j, :c] = 0.9 * stats0[0][j, :c] + 0.1 * y.mean(0)
            var[j, :c] = 0.9 * stats0[1][j, :c] + 0.1 * y.var(0, ddof=1)
    np.testing.assert_allclose(layer.moving_mean.numpy(), mean, atol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), var, rtol=1e-4, atol=1e-5)


def test_candidate_scope_dense_quantizes_each_candidates_own_columns():
    """A searchable hidden dense layer: ``sum_j h_j (x @ SAWB(W[:c_in, :C_j]) + b[:C_j]) @ CWI_{C_j -> C*}``."""
    rng = np.random.default_rng(5)
    layer = SearchDense(6, 12, kernel_quantizer="sawb", base_width=6, sawb_scope="candidate")
    layer.build()
    layer.bias.assign(rng.normal(0, 0.3, 12).astype("float32"))
    x = rng.normal(size=(5, 4)).astype("float32")  # the producer emits 4 of 6 features
    widths, mix = (3, 10), np.array([0.4, 0.6], "float32")
    out = layer(tf.constant(x), tf.constant(widths), tf.constant([2, 9]), tf.constant(mix)).numpy()
    w, b = layer.kernel.numpy()[:4], layer.bias.numpy()
    ref = sum(h * (x @ sawb_np(w[:, :c])[0] + b[:c]) @ cwi_matrix_np(c, 10) for c, h in zip(widths, mix))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------ settings


def test_ablation_settings_are_recorded_only_when_set():
    """Defaults keep a search's recorded settings as they were before the fields existed (old runs
    resume); a set value is recorded, and the search job builds its super-net with it."""
    tcfg = TrainConfig(workdir="unused", model="resnet8", w_bits=2, a_bits=2, synthetic_train_size=64,
                       synthetic_test_size=16, seed=0, verbose=0)
    fields = ("expansion_init", "sawb_scope", "max_width_ratio", "pair_merge")
    assert not set(fields) & set(search_settings(tcfg, SearchConfig()))
    scfg = SearchConfig(expansion_init="warm", sawb_scope="candidate", max_width_ratio=1.5, pair_merge="pad",
                        search_batch_size=8)
    recorded = search_settings(tcfg, scfg)
    assert tuple(recorded[k] for k in fields) == ("warm", "candidate", 1.5, "pad")
    job = _Search(tcfg, scfg, verbose=False)
    job.prepare(tf.distribute.get_strategy())
    job.build()
    searched = [lay for lay in job.net.conv_layers if lay.kernel_quantizer is not None]
    assert job.net.expansion_init == "warm" and searched and {lay.sawb_scope for lay in searched} == {"candidate"}
    assert {lay.pair_merge for lay in searched} == {"pad"}
    # 1.5n: 4 expansion steps of n/8 beyond the 8 candidates up to n
    assert (job.net.k_caps == 12).all() and (job.k_caps == 12).all()


@pytest.mark.parametrize("flag, value, allowed", [("expansion_init", "hot", "fresh, warm"),
                                                  ("sawb_scope", "layer", "pair, candidate"),
                                                  ("max_width_ratio", 2.5, "a number in [1, 2]"),
                                                  ("pair_merge", "mean", "cwi, pad")])
def test_a_bad_ablation_value_is_a_one_line_error(tmp_path, flag, value, allowed):
    text = f"Invalid {flag}. Received: {flag}={value!r}. Allowed: {allowed}."
    with pytest.raises(UsageError) as err:
        search_configs([f"--workdir={tmp_path / 'run'}", f"--{flag}={value}"])
    assert str(err.value) == text
    with pytest.raises(UsageError) as err:
        SuperNet(build_space("resnet8"), policy=FLOAT, **{flag: value})
    assert str(err.value) == text
    if flag == "sawb_scope":
        with pytest.raises(UsageError, match="Allowed: pair, candidate"):
            SearchConv2D(4, 8, 4, sawb_scope=value)
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_CONFIG")}
    proc = subprocess.run([sys.executable, os.path.join("tools", "search.py"), f"--workdir={tmp_path / 'run'}",
                           f"--{flag}={value}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr == f"error: {text}\n", proc.stderr
    assert not (tmp_path / "run").exists()
