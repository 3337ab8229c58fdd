"""A search that starts from a trained network (issue 25): nce_tf.adapter.from_trained and --init_from
for searches.

- the super-net loaded from a trained ResNet-8 computes that network's logits at its 1X sub-network
  (float and W2A2, BN in inference mode);
- each row's channel order is the L1 rule, checked against an order worked out by hand for an
  add-tied pair of rows, and consumers' input columns follow it;
- PACT clips from the super-net's own 1X statistics equal float initialisation's calibration of the
  same network built by the zoo;
- a search run with ``init_from`` and ``pact_init=stats`` records both; a checkpoint of another model
  is a one-line error.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import nce_tf
from nce_tf import models
from nce_tf.adapter.from_trained import load_trained_weights, pact_clips_from_stats
from nce_tf.errors import UsageError
from nce_tf.jobs.search import run_search
from nce_tf.search import SearchConfig, SuperNet
from nce_tf.sources import build_space
from nce_tf.train import TrainConfig, calibrate_pact, load_float_weights
from test_float_init_kd import _randomise_bn

W2A2 = models.QuantPolicy(w_bits=2, a_bits=2)


def _trained_like(policy=None, seed=0):
    """A ResNet-8 whose BN, clips and classifier are away from their initial values (as training leaves them)."""
    keras.utils.set_random_seed(seed)
    net = models.build_model("resnet8", policy=policy)
    rng = np.random.default_rng(seed)
    _randomise_bn(net, seed)
    for layer in net.layers:
        if getattr(layer, "alpha", None) is not None:
            layer.alpha.assign(rng.uniform(1.0, 3.0))
    classifier = net.get_layer("classifier")
    classifier.kernel.assign(rng.normal(0.0, 0.5, classifier.kernel.shape))  # logits of order 1, not 0.01
    return net


def _images(n=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 32, 32, 3)).astype("float32")


@pytest.mark.parametrize("policy", [None, W2A2], ids=["float", "w2a2"])
def test_the_1x_subnet_of_the_loaded_supernet_is_the_trained_network(policy):
    trained = _trained_like(policy)
    net = SuperNet(build_space("resnet8"), policy=policy or models.QuantPolicy(), mode="tas", tas_space="2x16", seed=3)
    x = _images()
    expected = trained(x, training=False).numpy()
    one_x = lambda: net.forward(x, net.subnet_sample(net.space.default_widths()))[0].numpy()  # noqa: E731
    assert np.abs(one_x() - expected).max() > 0.1  # before loading: another network
    report = load_trained_weights(net, trained)
    assert report["missing"] == [] and len(report["loaded"]) == 10  # 7 searched convs, 2 shortcuts, classifier
    assert len(report["clips"]) == (7 if policy else 0)
    if policy is None:
        np.testing.assert_allclose(one_x(), expected, atol=1e-4, rtol=0)
    else:
        # W2A2: the same network, but the super-net's folded BN rounds differently in the last bit, and a
        # pre-activation on a PACT level boundary then moves by a whole level (a/3) in one of the two: an
        # image's logits move by ~1e-2 (seen for 1 of 8 images with one random network, 0 with another).
        per_image = np.abs(one_x() - expected).max(axis=1)
        assert (per_image < 1e-4).mean() >= 0.75 and per_image.max() < 0.05 * np.abs(expected).max(), per_image
    # Wider than the checkpoint, the sub-net computes the same until the new channels train (BN gamma,
    # beta 0 there): every row at 1.5x.
    # (In W2A2 the consumers' SAWB scales see their new random columns: close, not equal.)
    wide = [int(1.5 * w + 0.5) for w in net.space.default_widths()]
    if policy is None:
        np.testing.assert_allclose(net.forward(x, net.subnet_sample(wide))[0].numpy(), one_x(), atol=1e-4, rtol=0)
    # Reordering is a permutation, not the identity: some row's channels moved.
    assert any(order != sorted(order) for order in report["orders"].values())


def _user_model_without_gamma_or_beta():
    """A user's net whose BNs hold no gamma (scale=False, folded into a conv) or no beta
    (center=False, after a depthwise conv), their statistics away from 0 and 1."""
    keras.utils.set_random_seed(0)
    L = keras.layers
    i = keras.Input((8, 8, 3))
    x = L.ReLU()(L.BatchNormalization(scale=False, name="bn0")(L.Conv2D(8, 3, padding="same", use_bias=False)(i)))
    x = L.ReLU()(L.BatchNormalization(center=False, name="bn1")(L.DepthwiseConv2D(3, padding="same")(x)))
    x = L.ReLU()(L.BatchNormalization(name="bn2")(L.Conv2D(8, 1, use_bias=False)(x)))
    model = keras.Model(i, L.Dense(4, name="logits")(L.GlobalAveragePooling2D()(x)))
    rng = np.random.default_rng(0)
    for name in ("bn0", "bn1", "bn2"):
        bn = model.get_layer(name)
        bn.moving_mean.assign(rng.normal(0, 0.3, bn.moving_mean.shape))
        bn.moving_variance.assign(rng.uniform(0.5, 2.0, bn.moving_variance.shape))
        for v in (bn.gamma, bn.beta):
            if v is not None:
                v.assign(rng.normal(1.0 if v is bn.gamma else 0.0, 0.3, v.shape))
    return model


def test_a_bn_without_gamma_or_beta_loads_derives_and_exports_as_the_users_network():
    """gamma 1 where the user's BN has none, beta 0 where it has none: the loaded super-net's 1X
    sub-network, the network derived from it and its int8 export compute the user's network (once
    an AttributeError in each)."""
    user = _user_model_without_gamma_or_beta()
    x = np.random.default_rng(1).normal(size=(8, 8, 8, 3)).astype("float32")
    expected = user(x, training=False).numpy()
    net = nce_tf.adapt(user, w_bits=32, a_bits=32)
    load_trained_weights(net, user)
    widths = net.space.default_widths()
    one_x = net.forward(x, net.subnet_sample(widths))[0].numpy()
    np.testing.assert_allclose(one_x, expected, atol=1e-4, rtol=0)
    derived = nce_tf.derive_model(net, widths, inherit=True)
    np.testing.assert_allclose(derived(x, training=False).numpy(), expected, atol=1e-4, rtol=0)
    flat, _ = nce_tf.export.convert(derived, x)
    lite, _ = nce_tf.export.run_tflite(flat, x, "builtin")
    assert np.abs(lite - expected).max() <= 0.1 * np.abs(expected).max()  # int8 rounding, not a lost BN


def _set_filter_l1(layer, l1):
    """Every entry of filter c is l1[c] / (entries per filter), signs alternating: its L1 norm is l1[c]."""
    k = layer.kernel.shape
    per = int(np.prod(k[:-1]))
    signs = np.where(np.arange(per) % 2 == 0, 1.0, -1.0).reshape(k[:-1])[..., None]
    layer.kernel.assign(signs * (np.asarray(l1, "float32") / per))


def test_rows_tied_by_an_add_share_one_l1_order_worked_out_by_hand():
    trained = models.build_model("resnet8")
    # stem_conv and s1_b0_b_conv are added channel by channel (one tie group); s1_b0_a_conv is its own.
    stem = np.ones(16)
    stem[5] = 3.0
    b = np.ones(16)
    b[9], b[5] = 4.0, 0.0
    _set_filter_l1(trained.get_layer("stem_conv"), stem)
    _set_filter_l1(trained.get_layer("s1_b0_b_conv"), b)
    _set_filter_l1(trained.get_layer("s1_b0_a_conv"), np.arange(1, 17))
    # Scores (L1 over the layer's mean, summed over the group; both means are 18 / 16 = 1.125):
    # channel 9: 1/1.125 + 4/1.125 = 4.44; channel 5: 3/1.125 + 0 = 2.67; every other: 2/1.125 = 1.78,
    # ties in index order.
    tied = [9, 5] + [c for c in range(16) if c not in (9, 5)]
    net = SuperNet(build_space("resnet8"), seed=0)
    report = load_trained_weights(net, trained)
    assert report["orders"]["stem_conv"] == report["orders"]["s1_b0_b_conv"] == tied
    assert report["orders"]["s1_b0_a_conv"] == list(range(15, -1, -1))
    src_a, sn_a = trained.get_layer("s1_b0_a_conv").kernel.numpy(), net.get_layer("s1_b0_a_conv").kernel.numpy()
    # s1_b0_a's filter 0 in the super-net is its checkpoint filter 15, reading channel 9 of the stem as input 0.
    np.testing.assert_array_equal(sn_a[:, :, :16, :16], src_a[:, :, tied, :][:, :, :, list(range(15, -1, -1))])
    # Every candidate's BN holds the checkpoint's BN of its channels, in the new order.
    bn = trained.get_layer("s1_b0_a_bn")
    bn.gamma.assign(np.arange(16, dtype="float32"))
    net = SuperNet(build_space("resnet8"), seed=0)
    load_trained_weights(net, trained)
    sn_gamma = net.get_layer("s1_b0_a_conv").gamma.numpy()
    np.testing.assert_array_equal(sn_gamma[:, :16], np.tile(np.arange(15, -1, -1), (16, 1)))
    np.testing.assert_array_equal(sn_gamma[:, 16:], 1.0)  # the 2X room: a fresh BN, live channels...
    consumer = net.get_layer("s1_b0_b_conv").kernel.numpy()
    np.testing.assert_array_equal(consumer[:, :, 16:, :], 0.0)  # ...that no consumer reads until it trains
    assert np.abs(consumer[:, :, :16, 16:]).min() > 0  # the consumer's own new filters stay random


@pytest.mark.parametrize("policy", [None, W2A2], ids=["float", "w2a2"])
def test_channels_beyond_the_checkpoint_train_from_the_first_step(policy):
    # The 2X room's channels must take a gradient from the first step. Float (ReLU): they are live and their
    # consumers' columns start at 0, so those columns take the gradient. W2A2: they output exactly 0 (BN gamma
    # = beta = 0) and PACT passes the gradient at 0 to their gamma. (Gamma = beta = 0 behind a ReLU, whose
    # gradient at 0 is 0, left every float gradient below exactly 0.)
    trained = _trained_like(policy, seed=2)
    net = SuperNet(build_space("resnet8"), policy=policy or models.QuantPolicy(), mode="tas", tas_space="2x16",
                   seed=5)
    load_trained_weights(net, trained)
    x, y = _images(16, seed=3), np.arange(16) % 10
    wide = net.subnet_sample([2 * w for w in net.space.default_widths()])
    a, b, fc = (net.get_layer(n) for n in ("s1_b0_a_conv", "s1_b0_b_conv", "classifier"))
    with tf.GradientTape() as tape:
        logits = net.forward(x, wide, training=True)[0]
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
    g_gamma, g_b, g_fc = tape.gradient(loss, [a.gamma, b.kernel, fc.kernel])
    if policy is None:
        # s1_b0_b reads s1_b0_a's channels 16..31 (beyond the checkpoint's 16) through zero columns: their
        # gradient is the new channels' activations times the upstream gradient.
        np.testing.assert_array_equal(b.kernel.numpy()[:, :, 16:32, :], 0.0)
        assert np.abs(g_b.numpy()[:, :, 16:32, :16]).max() > 1e-6
        assert np.abs(g_fc.numpy()[64:128]).max() > 1e-6  # the classifier's rows of the last stage's new channels
    else:
        np.testing.assert_array_equal(a.gamma.numpy()[:, 16:], 0.0)
        assert np.abs(tf.convert_to_tensor(g_gamma).numpy()[:, 16:32]).max() > 1e-6


def test_pact_clips_from_the_supernet_equal_float_initialisations_calibration():
    float_net = _trained_like(None, seed=4)
    zoo_w2a2 = models.build_model("resnet8", policy=W2A2)
    load_float_weights(zoo_w2a2, float_net)
    images = [_images(16, seed=s) for s in (1, 2)]
    # Every positive value enters (no subsample): the super-net's channels are reordered, so a random
    # subset of the same values would differ.
    expected = calibrate_pact(zoo_w2a2, images, sample=1 << 20)
    net = SuperNet(build_space("resnet8"), policy=W2A2, seed=0)
    load_trained_weights(net, float_net)
    clips = pact_clips_from_stats(net, images, sample=1 << 20)
    assert sorted(clips) == sorted(expected) and len(clips) == 7
    for site, clip in expected.items():
        assert clips[site] == pytest.approx(clip, rel=1e-5), site
        assert float(net.get_layer(site).alpha.numpy()) == pytest.approx(clip, rel=1e-6)


def test_a_checkpoint_of_another_model_is_a_one_line_error():
    net = SuperNet(build_space("resnet8"), seed=0)
    with pytest.raises(UsageError, match=r"another model: its QuantConv2D 's1_b1_a_conv' is not in the searched "
                                         r"model. Received: source='resnet20'") as e:
        load_trained_weights(net, models.build_model("resnet20"), received="source='resnet20'")
    assert "\n" not in str(e.value)
    vgg = models.build_model("vgg16")
    with pytest.raises(UsageError, match="another model: its QuantConv2D 'conv1_conv' is not in the searched model") as e:
        load_trained_weights(net, vgg)
    assert "\n" not in str(e.value)


@pytest.mark.heavy
def test_a_search_from_a_trained_network_records_where_it_started(tmp_path):
    trained = _trained_like(None, seed=5)
    path = str(tmp_path / "trained.keras")
    trained.save(path)
    tcfg = TrainConfig(workdir=str(tmp_path / "search"), model="resnet8", w_bits=2, a_bits=2, seed=0, verbose=0,
                       synthetic_train_size=256, synthetic_test_size=64, init_from=path, pact_init="stats")
    scfg = SearchConfig(search_warmup_epochs=0, search_epochs=1, search_batch_size=32, search_steps_per_epoch=2)
    record = run_search(tcfg, scfg, verbose=False)
    assert record["init_from"]["file"] == path and len(record["init_from"]["sha256"]) == 64
    assert len(record["init_from"]["loaded"]) == 10 and record["init_from"]["channel_order"] == "l1"
    clips = record["pact_init"]["initial_clips"]
    assert record["pact_init"]["kind"] == "stats" and len(clips) == 7 and all(c > 0 for c in clips.values())
    settings = json.load(open(tmp_path / "search" / "search_config.json"))
    assert settings["init_from"] == path and settings["pact_init"] == "stats"
    assert settings["init_from_sha256"] == record["init_from"]["sha256"]
