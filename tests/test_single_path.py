"""Single-path weight training of a super-net (nce_tf/search/single_path.py); a search's --supernet_epochs
is checked in tests/test_search_instruments.py's real search."""

import numpy as np
import pytest
import tensorflow as tf

from nce_tf.search import SuperNet
from nce_tf.search.single_path import random_widths, train_single_paths
from nce_tf.sources import build_space


def test_random_widths_keep_the_base_with_probability_keep_else_draw_uniformly():
    rng = np.random.default_rng(0)
    draws = np.array([random_widths(rng, [16, 32, 8], [[8, 12], [16, 24, 40], []], keep=0.25) for _ in range(8000)])
    assert (draws[:, 2] == 8).all()  # no options: always the base
    assert abs((draws[:, 0] == 16).mean() - 0.25) < 0.02
    others = draws[draws[:, 1] != 32, 1]
    for w in (16, 24, 40):  # the rest uniform over the options: 0.75 / 3 each
        assert abs((others == w).mean() - 1 / 3) < 0.03


def test_single_paths_at_1x_train_only_the_1x_channels():
    net = SuperNet(build_space("resnet8"), mode="tas", tas_space="2x16", seed=0)
    base = net.space.default_widths()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, 8)
    stem = net.get_layer("stem_conv")
    before = stem.kernel.numpy().copy()
    history = train_single_paths(net, lambda epoch: [(tf.constant(x), tf.constant(y))] * 2, epochs=2, lr=0.1,
                                 base=base, options=[[] for _ in base], seed=0, keep=1.0, verbose=False)
    after = stem.kernel.numpy()
    assert len(history) == 2 and all(np.isfinite(h["loss"]) and (h["accuracy"] * 16).is_integer() for h in history)
    assert history[1]["loss"] < history[0]["loss"]  # the same batch, a step later
    n = base[0]
    assert not np.allclose(after[..., :n], before[..., :n])  # the 1X filters moved
    np.testing.assert_array_equal(after[..., n:], before[..., n:])  # the ones beyond 1X were never in a sub-net


def test_the_history_is_the_sampled_networks_cross_entropy_and_accuracy():
    # At learning rate 0 the weights stay put, so each step's sub-network (keep=1: the 1X one) gives
    # the same logits as a forward pass outside the trainer: the recorded loss is their cross-entropy
    # (without the weight regulariser, here large enough to show) and the accuracy their top-1 hits, by numpy.
    net = SuperNet(build_space("resnet8"), mode="tas", tas_space="2x16", weight_decay=0.01, seed=0)
    base = net.space.default_widths()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, 8)
    logits, reg = net.forward(tf.constant(x), net.subnet_sample(base), training=True)
    logits = np.asarray(logits, np.float64)
    assert float(reg) > 0.01
    top = logits.max(1)
    ce = np.mean(top + np.log(np.exp(logits - top[:, None]).sum(1)) - logits[np.arange(8), y])
    history = train_single_paths(net, lambda epoch: [(tf.constant(x), tf.constant(y))] * 3, epochs=1, lr=0.0,
                                 base=base, options=[[] for _ in base], seed=0, keep=1.0, verbose=False)
    assert history[0]["loss"] == pytest.approx(ce, rel=1e-5)
    assert history[0]["accuracy"] == np.mean(logits.argmax(1) == y)


def test_a_clipped_single_path_step_moves_the_weights_by_lr_times_the_clip():
    # SGD with momentum 0.9, first step: dw = -lr g, with g scaled to the clip's norm when longer.
    net = SuperNet(build_space("resnet8"), mode="tas", tas_space="2x16", seed=0)
    base = net.space.default_widths()
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(8, 32, 32, 3)).astype("float32"), rng.integers(0, 10, 8)
    before = [w.numpy().copy() for w in net.weight_variables]
    train_single_paths(net, lambda epoch: [(tf.constant(x), tf.constant(y))], epochs=1, lr=0.1, base=base,
                       options=[[] for _ in base], seed=0, keep=1.0, verbose=False, global_clipnorm=1e-3)
    moved = np.sqrt(sum(np.sum((w.numpy().astype(np.float64) - b) ** 2) for w, b in zip(net.weight_variables, before)))
    assert moved == pytest.approx(0.1 * 1e-3, rel=1e-3)
