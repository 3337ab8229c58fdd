"""Tests of ``pair_merge``: how a searchable layer aligns its narrower candidate to ``C*`` channels
(``cwi``, TAS's interpolation, or ``pad``, its channels in place and zeros beyond)."""

import numpy as np
import pytest
import tensorflow as tf

import nce_tf
from nce_tf.errors import UsageError
from nce_tf.models import QuantPolicy
from nce_tf.search import SearchConfig
from nce_tf.search.config import PAIR_MERGES
from nce_tf.search.cwi import cwi_matrix_np
from nce_tf.search.layers import SearchConv2D, SearchDense
from nce_tf.search.merge import MERGE_MATRICES, check_pair_merge, pad_matrix
from nce_tf.search.supernet import SuperNet
from nce_tf.sources import build_space
from test_adapt import mobile_net
from test_search_ablations import candidate_conv, sawb_np


def pad_np(c, c_star):
    """``[c, c_star]``: channel ``i`` of the candidate goes to channel ``i`` of the output."""
    return np.eye(c, c_star, dtype="float32")


def test_registry_names_are_the_configs():
    assert tuple(MERGE_MATRICES) == PAIR_MERGES == ("cwi", "pad")


def test_pad_matrix_by_hand():
    m = pad_matrix(tf.constant([2, 3]), tf.constant(4)).numpy()
    want = np.zeros((2, 4, 4), "float32")
    want[0, 0, 0] = want[0, 1, 1] = 1
    want[1, 0, 0] = want[1, 1, 1] = want[1, 2, 2] = 1
    np.testing.assert_array_equal(m, want)
    np.testing.assert_array_equal(pad_matrix(tf.constant(3), tf.constant(5)).numpy()[:3], pad_np(3, 5))


def _padded_reference(layer, x, widths, index, mix, training):
    """``sum_j h_j [BN_j(conv(x, Q_j)) | 0]`` in numpy, each candidate at its own ``C_j`` channels
    zero-padded to ``C*``: ``Q_j`` the first ``C_j`` filters of SAWB over the pair's ``C*`` slice
    (pair scope) or SAWB of its own ``C_j`` filters (candidate scope)."""
    c_star, out = max(widths), 0.0
    w = layer.kernel.numpy()[:, :, :x.shape[-1]]
    for c, j, h in zip(widths, index, mix):
        if layer.kernel_quantizer is None:
            wq = w[..., :c]
        else:
            wq = sawb_np(w[..., :c_star])[0][..., :c] if layer.sawb_scope == "pair" else sawb_np(w[..., :c])[0]
        y = tf.nn.conv2d(x, wq.astype("float32"), 1, "SAME").numpy()
        if not layer.use_bn:
            z = y + layer.bias.numpy()[:c]
        else:
            mu, var = ((y.mean((0, 1, 2)), y.var((0, 1, 2))) if training
                       else (layer.moving_mean.numpy()[j, :c], layer.moving_variance.numpy()[j, :c]))
            z = (y - mu) / np.sqrt(var + 1e-5) * layer.gamma.numpy()[j, :c] + layer.beta.numpy()[j, :c]
        out = out + h * np.concatenate([z, np.zeros(z.shape[:-1] + (c_star - c,), "float32")], -1)
    return out


@pytest.mark.parametrize("widths, index", [((4, 9), (2, 5)), ((10, 3), (7, 1)), ((6, 6), (3, 3))])
@pytest.mark.parametrize("sawb_scope, use_bn, training, quantized", [
    ("pair", True, True, True), ("pair", True, False, True), ("pair", False, True, False),
    ("candidate", True, True, True), ("candidate", False, True, True)])
def test_padded_conv_equals_a_per_candidate_reference(widths, index, sawb_scope, use_bn, training, quantized):
    """Both quantizer scopes, with and without BN, batch or running statistics: each candidate's
    output sits on its own first ``C_j`` channels, nothing is interpolated."""
    rng = np.random.default_rng(7)
    layer = candidate_conv(rng, use_bn, sawb_scope=sawb_scope, kernel_quantizer="sawb" if quantized else None,
                           pair_merge="pad")
    x = rng.normal(size=(6, 7, 7, 5)).astype("float32")
    mix = np.array([0.35, 0.65], "float32")
    out = layer(tf.constant(x), tf.constant(widths), tf.constant(index), tf.constant(mix), training=training)
    want = _padded_reference(layer, x, widths, index, mix, training)
    np.testing.assert_allclose(out.numpy(), want, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("sawb_scope", ["pair", "candidate"])
def test_padded_dense_equals_a_per_candidate_reference(sawb_scope):
    """A searchable hidden dense layer: ``sum_j h_j [x @ Q_j + b[:C_j] | 0]``."""
    rng = np.random.default_rng(5)
    layer = SearchDense(6, 12, kernel_quantizer="sawb", base_width=6, sawb_scope=sawb_scope, pair_merge="pad")
    layer.build()
    layer.bias.assign(rng.normal(0, 0.3, 12).astype("float32"))
    x = rng.normal(size=(5, 4)).astype("float32")
    widths, mix = (3, 10), np.array([0.4, 0.6], "float32")
    out = layer(tf.constant(x), tf.constant(widths), tf.constant([2, 9]), tf.constant(mix)).numpy()
    w, b = layer.kernel.numpy()[:4], layer.bias.numpy()
    want = 0.0
    for c, h in zip(widths, mix):
        wq = sawb_np(w[:, :10])[0][:, :c] if sawb_scope == "pair" else sawb_np(w[:, :c])[0]
        want = want + h * (x @ wq + b[:c]) @ pad_np(c, 10)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pair_merge, tied", [("pad", True), ("cwi", False)])
def test_at_a_tie_only_the_padded_merge_leaves_the_mix_without_a_gradient(pair_merge, tied):
    """Candidates 4 and 9 channels wide that compute one function (the wider one's first 4 channels
    normalised as the narrower's, its other 5 at gamma = beta = 0; float, running statistics): with
    ``pad`` the output is the same for any mix, so the mixing weights' gradients are equal (a softmax
    over the pair moves neither); ``cwi`` spreads the narrower's 4 channels over 9 and does not."""
    rng = np.random.default_rng(11)
    layer = SearchConv2D(5, 12, 6, kernel_size=3, pair_merge=pair_merge)
    layer.build()
    for var, value in ((layer.gamma, rng.normal(1, 0.3, (16, 12))), (layer.beta, rng.normal(0, 0.3, (16, 12))),
                       (layer.moving_mean, rng.normal(0, 0.3, (16, 12))),
                       (layer.moving_variance, rng.uniform(0.5, 2, (16, 12)))):
        value = value.astype("float32")
        value[5, :4] = value[2, :4]  # candidate 5 (9 wide) normalises its first 4 channels as candidate 2
        if var is layer.gamma or var is layer.beta:
            value[5, 4:] = 0.0
        var.assign(value)
    x = tf.constant(rng.normal(size=(4, 6, 6, 5)).astype("float32"))
    g = tf.constant(rng.normal(size=(4, 6, 6, 9)).astype("float32"))
    mix = tf.constant([0.5, 0.5])
    with tf.GradientTape() as tape:
        tape.watch(mix)
        loss = tf.reduce_sum(g * layer(x, tf.constant([4, 9]), tf.constant([2, 5]), mix))
    grad = tape.gradient(loss, mix).numpy()
    # d loss / d h_a - d loss / d h_b = <g, out_a - out_b>: the pair's own preference
    assert (abs(grad[0] - grad[1]) < 1e-3 * np.abs(grad).max()) == tied, grad


def test_supernet_builds_its_searchable_layers_with_the_merge_and_serializes_it():
    net = SuperNet(build_space("resnet8"), policy=QuantPolicy(w_bits=2, a_bits=2), seed=0, pair_merge="pad")
    searched = [lay for lay in net.conv_layers if isinstance(lay, SearchConv2D)]
    assert searched and {lay.pair_merge for lay in searched} == {"pad"}
    again = SearchConv2D.from_config(searched[1].get_config())
    assert again.pair_merge == "pad"
    old = {k: v for k, v in searched[1].get_config().items() if k != "pair_merge"}  # a config from before
    assert SearchConv2D.from_config(old).pair_merge == "cwi"


def test_adapt_builds_every_searchable_layer_with_the_merge():
    """An adapted model with a hidden dense row: its searchable convs and the hidden dense layer merge by
    padding (the dense layer's own config too); the classifier has no pair."""
    net = nce_tf.adapt(mobile_net(), w_bits=2, a_bits=2, pair_merge="pad")
    every = [*net.conv_layers, *net.act_layers, *net.other_layers, net.dense]
    searched = [lay for lay in every if isinstance(lay, (SearchConv2D, SearchDense)) and lay.base_width]
    kinds = {type(lay).__name__ for lay in searched}
    assert kinds == {"SearchConv2D", "SearchDense"} and {lay.pair_merge for lay in searched} == {"pad"}
    dense = next(lay for lay in searched if isinstance(lay, SearchDense))
    assert SearchDense.from_config(dense.get_config()).pair_merge == "pad"


def test_a_bad_pair_merge_is_a_one_line_error():
    text = "Invalid pair_merge. Received: pair_merge='mean'. Allowed: cwi, pad."
    for make in (lambda: check_pair_merge("mean"), lambda: SearchConv2D(4, 8, 4, pair_merge="mean"),
                 lambda: SearchDense(4, 8, base_width=4, pair_merge="mean"),
                 lambda: SearchConfig(pair_merge="mean").validate()):
        with pytest.raises(UsageError) as err:
            make()
        assert str(err.value) == text


def test_cwi_is_still_the_default_merge():
    """The default layer merges with TAS's interpolation (the matrix of :mod:`nce_tf.search.cwi`)."""
    layer = SearchDense(6, 12, base_width=6)
    layer.build()
    x = np.random.default_rng(2).normal(size=(3, 6)).astype("float32")
    out = layer(tf.constant(x), tf.constant([4, 8]), tf.constant([3, 7]), tf.constant([0.25, 0.75])).numpy()
    w, b = layer.kernel.numpy(), layer.bias.numpy()
    want = sum(h * (x @ w[:, :c] + b[:c]) @ cwi_matrix_np(c, 8) for c, h in zip((4, 8), (0.25, 0.75)))
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
