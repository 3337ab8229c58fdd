"""Every quantized layer: shapes, weights, .keras round trip, a training step, MirroredStrategy, and
Keras's own layer-test harness (mixed precision included) over every public layer and the super-net's."""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

# keras.src is Keras's private package; its TestCase.run_layer_test is the harness the Keras team tests
# every built-in layer with (build, symbolic and eager calls, config round trip, a compiled training
# step, a mixed_float16 pass with float32 variables).  No public API offers it; the test below pins
# that nce-tf's layers pass it, so a Keras change to the harness shows up here first.
from keras.src.testing import TestCase as KerasTestCase

from nce_tf import quant
from nce_tf.export.grid import integer_grid
from nce_tf.layers import QuantActivation, QuantConv2D, QuantDense, QuantDepthwiseConv2D
from nce_tf.models import QuantPolicy, build_model
from nce_tf.search.layers import SearchBatchNorm, SearchConv2D, SearchDense, SearchDepthwiseConv2D

LAYERS = {
    "conv_sawb": lambda: QuantConv2D(6, 3, padding="same", kernel_quantizer=quant.SAWB(2)),
    "conv_dorefa": lambda: QuantConv2D(6, 3, strides=2, kernel_quantizer=quant.DoReFa(3)),
    "conv_uniform": lambda: QuantConv2D(6, 1, use_bias=False, kernel_quantizer="uniform"),
    "conv_float": lambda: QuantConv2D(6, 3, padding="same"),
    "dense_sawb": lambda: QuantDense(5, kernel_quantizer=quant.SAWB(2)),
    "dense_uniform": lambda: QuantDense(5, activation="relu", kernel_quantizer=quant.Uniform(4, per_channel=False)),
    "pact": lambda: QuantActivation(quant.PACT(bits=2, alpha_init=1.5)),
    "depthwise_sawb": lambda: QuantDepthwiseConv2D(3, padding="same", kernel_quantizer=quant.SAWB(2)),
    "depthwise_float": lambda: QuantDepthwiseConv2D(3, strides=2, use_bias=False),
    "depthwise_uniform": lambda: QuantDepthwiseConv2D(3, padding="same", depth_multiplier=2, kernel_quantizer="uniform"),
}
INPUT = {"conv": (2, 8, 8, 3), "dense": (2, 7), "pact": (2, 8, 8, 3), "depthwise": (2, 8, 8, 3)}
OUTPUT = {
    "conv_sawb": (2, 8, 8, 6), "conv_dorefa": (2, 3, 3, 6), "conv_uniform": (2, 8, 8, 6),
    "conv_float": (2, 8, 8, 6), "dense_sawb": (2, 5), "dense_uniform": (2, 5), "pact": (2, 8, 8, 3),
    "depthwise_sawb": (2, 8, 8, 3), "depthwise_float": (2, 3, 3, 3), "depthwise_uniform": (2, 8, 8, 6),
}
TRAINABLE = {
    "conv_sawb": 2, "conv_dorefa": 2, "conv_uniform": 1, "conv_float": 2,
    "dense_sawb": 2, "dense_uniform": 2, "pact": 1, "depthwise_sawb": 2, "depthwise_float": 1,
    "depthwise_uniform": 2,
}


def _x(key, seed=0):
    return np.random.default_rng(seed).normal(size=INPUT[key.split("_")[0]]).astype("float32")


def _wrap(key):
    inputs = keras.Input(INPUT[key.split("_")[0]][1:])
    return keras.Model(inputs, LAYERS[key]()(inputs))


@pytest.mark.parametrize("key", sorted(LAYERS))
def test_shapes_and_weights(key):
    layer = LAYERS[key]()
    y = layer(_x(key))
    assert tuple(y.shape) == OUTPUT[key]
    assert len(layer.trainable_weights) == TRAINABLE[key]


@pytest.mark.parametrize("key", sorted(LAYERS))
def test_keras_file_round_trip_gives_identical_outputs(key, tmp_path):
    model = _wrap(key)
    x = _x(key, seed=1)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert type(loaded.layers[1]) is type(model.layers[1])
    assert loaded.layers[1].get_config() == model.layers[1].get_config()


@pytest.mark.parametrize("key", sorted(LAYERS))
def test_a_training_step_updates_every_trainable_weight(key):
    model = _wrap(key)
    before = [w.numpy().copy() for w in model.trainable_weights]
    x = _x(key, seed=2)
    # A target far from the output, so every weight (PACT alpha included) gets a gradient.
    target = np.full(OUTPUT[key], 5.0, "float32")
    model.compile(keras.optimizers.SGD(0.05), "mse")
    loss0 = model.evaluate(x, target, verbose=0)
    model.fit(x, target, epochs=3, verbose=0)
    assert model.evaluate(x, target, verbose=0) < loss0
    for b, w in zip(before, model.trainable_weights):
        assert not np.array_equal(b, w.numpy()), w.path


def test_quantized_kernel_is_what_the_layer_uses():
    layer = QuantConv2D(4, 3, padding="same", use_bias=False, kernel_quantizer="sawb")
    x = _x("conv")
    y = layer(x)
    qk = layer.quantized_kernel().numpy()
    assert len(np.unique(qk)) == 4
    expected = tf.nn.conv2d(x, qk, strides=1, padding="SAME").numpy()
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)


def _per_filter_uniform(w, bits):
    """numpy: each output channel's filter (a depthwise kernel's last two axes) on its own max-abs grid."""
    top = 2 ** (bits - 1) - 1
    s = np.maximum(np.abs(w).max(axis=(0, 1), keepdims=True), 1e-8) / top
    return s * np.clip(np.round(w / s), -top, top)


def test_a_per_channel_quantizer_scales_each_depthwise_filter_on_its_own():
    # [3, 3, C=4, M=2]: 8 filters of spreads 1..128, so one scale for the tensor (or per M) would
    # put the narrow filters at zero.
    layer = QuantDepthwiseConv2D(3, depth_multiplier=2, use_bias=False, kernel_quantizer=quant.Uniform(3))
    layer.build((None, 6, 6, 4))
    w = np.random.default_rng(0).normal(size=(3, 3, 4, 2)) * (2.0 ** np.arange(8)).reshape(1, 1, 4, 2)
    layer.kernel.assign(w.astype("float32"))
    np.testing.assert_allclose(layer.quantized_kernel().numpy(), _per_filter_uniform(w, 3), rtol=1e-6)
    assert all(len(np.unique(layer.quantized_kernel().numpy()[..., c, m])) > 2 for c in range(4) for m in range(2))
    grid = integer_grid(layer)  # the export's grid: one step per filter, [C, M]
    assert grid.step.shape == (4, 2)
    np.testing.assert_allclose(grid.values(), layer.quantized_kernel().numpy(), rtol=1e-6)


def test_the_search_depthwise_conv_scales_each_live_filter_on_its_own():
    layer = SearchDepthwiseConv2D(6, kernel_size=3, kernel_quantizer=quant.Uniform(2), seed=0)
    x = np.random.default_rng(1).normal(size=(2, 5, 5, 4)).astype("float32")
    layer(x)
    w = np.random.default_rng(0).normal(size=(3, 3, 6, 1)) * (4.0 ** np.arange(6)).reshape(1, 1, 6, 1)
    layer.kernel.assign(w.astype("float32"))
    want = tf.nn.depthwise_conv2d(x, _per_filter_uniform(w[:, :, :4], 2).astype("float32"), [1, 1, 1, 1], "SAME")
    np.testing.assert_allclose(layer(x).numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def test_w2a2_network_activation_sites_take_at_most_4_values():
    model = build_model("resnet8", policy=QuantPolicy(w_bits=2, a_bits=2))
    sites = [layer for layer in model.layers if isinstance(layer, QuantActivation)]
    assert len(sites) == 1 + 2 * 3  # stem, then conv_a and block output of 3 blocks
    probe = keras.Model(model.inputs, [layer.output for layer in sites])
    outs = probe([np.random.default_rng(3).normal(size=(4, 32, 32, 3)).astype("float32")])
    for layer, out in zip(sites, outs):
        values = np.unique(out.numpy())
        assert len(values) <= 4, layer.name
        alpha = float(layer.alpha.numpy())
        # Every value is one of the PACT levels {0, a/3, 2a/3, a}.
        np.testing.assert_allclose(values, np.round(values / (alpha / 3)) * alpha / 3, atol=1e-5)


def _train_small(strategy, bits):
    keras.utils.set_random_seed(7)
    x = np.random.default_rng(5).normal(size=(16, 32, 32, 3)).astype("float32")
    y = np.arange(16) % 10
    with strategy.scope():
        model = build_model("resnet8", [8, 8, 8, 16, 16, 32, 32], policy=QuantPolicy(w_bits=bits, a_bits=bits))
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    initial = [w.numpy() for w in model.trainable_weights]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    model.fit(ds, epochs=2, verbose=0, shuffle=False)
    return ([w.numpy() for w in model.trainable_weights], [w.numpy() for w in model.non_trainable_weights],
            initial)


def _flat(arrays):
    return np.concatenate([a.ravel() for a in arrays])


# Float training agrees to float32 round-off.  With 2-bit weights and activations the summation
# order of two replicas can move a value across a rounding boundary (a PACT level, a SAWB bin),
# which then changes that element's forward value by a whole step; measured here: usually up to
# 5e-5 in the weights after 4 steps, once 7.7e-3 on three elements of one BN (a flip), once 40% of
# one 32-channel BN vector off by more than 1e-3 (a flip that spread through that layer), so the
# W2A2 case holds the whole network's mean difference and the share of its elements that moved.
@pytest.fixture(scope="module")
def strategies():
    # One MirroredStrategy for the whole session, from nce_tf.distribute's cache: two in one
    # process collide on collective keys (tests/test_distribute.py uses the same one).
    from nce_tf import distribute

    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2, "tests/conftest.py configures two logical CPUs"
    return tf.distribute.OneDeviceStrategy(devices[0]), distribute.get_strategy("mirrored", 2)


@pytest.mark.heavy
@pytest.mark.parametrize("bits, atol", [(32, 1e-5), (2, 1e-3)])
def test_mirrored_strategy_on_two_cpus_matches_single_device(bits, atol, strategies):
    (w_1, stats_1, initial), (w_2, stats_2, _) = _train_small(strategies[0], bits), _train_small(strategies[1], bits)
    if bits == 32:
        for a, b in zip(w_1 + stats_1, w_2 + stats_2):
            np.testing.assert_allclose(a, b, atol=atol, rtol=1e-4)
    else:
        # Flips spread within a layer, so the whole network is held: the two runs' weights differ
        # by under a tenth of how far training moved them (measured: 9e-7; a learning rate off by
        # x1.2, x0.5, x2 gives 0.24, 0.50, 0.94), and the BN statistics agree on average.
        moved = np.linalg.norm(_flat(w_1) - _flat(initial))
        assert np.linalg.norm(_flat(w_1) - _flat(w_2)) < 0.1 * moved
        assert np.mean(np.abs(_flat(stats_1) - _flat(stats_2))) < atol


# Each quantized layer with kernel_quantizer=None is its Keras layer (the model: larq's test_layer_kwargs,
# quantized layers accept every constructor argument of the layer they extend).  Two argument sets per
# layer, because Keras refuses LoRA together with a kernel constraint and strides > 1 with a dilation;
# between them they set EVERY named argument of the Keras class (its own, its base conv's, Layer's) away
# from its default, which test_twin_arguments_cover_every_keras_constructor_argument checks against
# the signatures, so a new Keras argument fails here until it is added.
R, C = keras.regularizers, keras.constraints
_LAYER_ARGS = dict(activity_regularizer=R.L2(1e-5), trainable=False, dtype="float64", autocast=False, name="twin")
_BIAS_ARGS = dict(activation="relu", bias_initializer="ones", bias_regularizer=R.L1(1e-4), bias_constraint=C.NonNeg())
KERAS_TWINS = {
    QuantConv2D: (keras.layers.Conv2D, [
        (dict(filters=6, kernel_size=(3, 2), strides=1, padding="same", dilation_rate=2, groups=2,
              kernel_initializer="he_normal", kernel_regularizer=R.L2(1e-3), kernel_constraint=C.MaxNorm(2.0),
              **_BIAS_ARGS, **_LAYER_ARGS), (2, 9, 8, 4)),
        # data_format away from its default (None) but channels_last: with Keras 3.15.1 / TF 2.21 a
        # channels_first Conv2D (Keras's own included) fails on the CPU ("only supports NHWC").
        (dict(filters=6, kernel_size=3, strides=(2, 1), data_format="channels_last", use_bias=False,
              lora_rank=2, lora_alpha=3.0), (2, 9, 8, 4)),
    ]),
    QuantDense: (keras.layers.Dense, [
        (dict(units=6, kernel_initializer="glorot_normal", kernel_regularizer=R.L2(1e-3),
              kernel_constraint=C.MaxNorm(2.0), quantization_config=keras.quantizers.Int8QuantizationConfig(),
              **_BIAS_ARGS, **_LAYER_ARGS), (3, 7)),
        (dict(units=6, use_bias=False, lora_rank=2, lora_alpha=3.0), (3, 7)),
    ]),
    QuantDepthwiseConv2D: (keras.layers.DepthwiseConv2D, [
        (dict(kernel_size=3, strides=1, padding="same", depth_multiplier=2, dilation_rate=2,
              data_format="channels_first", depthwise_initializer="he_uniform",
              depthwise_regularizer=R.L2(1e-3), depthwise_constraint=C.MaxNorm(2.0), **_BIAS_ARGS, **_LAYER_ARGS),
         (2, 3, 9, 9)),
        (dict(kernel_size=(3, 2), strides=2, use_bias=False), (2, 9, 9, 3)),
    ]),
    # QuantActivation extends Layer itself: only Layer's arguments (it has no float twin to compare with).
    QuantActivation: (keras.layers.Layer, [(dict(**_LAYER_ARGS), (2, 5))]),
}
TWIN_CASES = [(q, k, kwargs, shape) for q, (k, sets) in KERAS_TWINS.items() for kwargs, shape in sets]


def _keras_arguments(keras_cls):
    """Every named constructor argument of ``keras_cls``, its base conv and ``Layer``, with its default
    (the class's own default wins: Conv2D's strides=(1, 1) over BaseConv's 1)."""
    found = {}
    for cls in keras_cls.__mro__:
        if cls is object or "__init__" not in vars(cls) or not issubclass(cls, keras.layers.Layer):
            continue
        for p in inspect.signature(cls.__init__).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("self", "rank"):
                found.setdefault(p.name, p.default)
    return found


@pytest.mark.parametrize("quant_cls", list(KERAS_TWINS), ids=lambda c: c.__name__)
def test_twin_arguments_cover_every_keras_constructor_argument(quant_cls):
    keras_cls, sets = KERAS_TWINS[quant_cls]
    arguments = _keras_arguments(keras_cls)
    assert {"name", "dtype", "trainable", "activity_regularizer"} <= set(arguments)  # the walk reached Layer
    passed = {}
    for kwargs, _ in sets:
        for key, value in kwargs.items():
            passed.setdefault(key, []).append(value)
    assert sorted(set(arguments) - set(passed)) == [], "Keras arguments no twin case sets"
    for key, default in arguments.items():
        assert any(v is not default and not (default is not inspect.Parameter.empty and v == default)
                   for v in passed[key]), f"{key} is only passed at its default {default!r}"


@pytest.mark.parametrize("quant_cls, keras_cls, kwargs, shape", TWIN_CASES,
                         ids=[f"{q.__name__}-{i}" for q, (_, sets) in KERAS_TWINS.items() for i in range(len(sets))])
def test_float_quantized_layer_is_its_keras_layer(quant_cls, keras_cls, kwargs, shape):
    kwargs = {"name": "twin", **kwargs}  # one name, so the two configs can be compared whole
    is_activation = quant_cls is QuantActivation
    ours = quant_cls(**kwargs) if is_activation else quant_cls(kernel_quantizer=None, **kwargs)
    x = np.random.default_rng(0).normal(size=shape)
    ours.build(shape)
    config = ours.get_config()
    # Every argument is kept: the layer rebuilt from its config has the same config, and each
    # argument Keras records is recorded as Keras records it (below, for the float twins).
    again = quant_cls.from_config(config)
    again.build(shape)
    assert again.get_config() == config
    if "autocast" in kwargs:  # Layer's arguments reach the layer (Keras's own config leaves autocast out)
        assert (ours.name, ours.trainable, ours.autocast, ours.dtype_policy.name) == ("twin", False, False, "float64")
        assert (again.name, again.trainable, again.dtype_policy.name) == ("twin", False, "float64")
    if is_activation:
        assert config["quantizer"] == quant.serialize(ours.quantizer)
        assert keras.regularizers.serialize(ours.activity_regularizer) == keras.regularizers.serialize(
            kwargs["activity_regularizer"])
        assert ours.compute_dtype == ours.variable_dtype == "float64" and not ours.trainable_weights
        return
    theirs = keras_cls(**kwargs)
    theirs.build(shape)
    mine = dict(config)
    assert mine.pop("kernel_quantizer") is None
    assert mine == theirs.get_config()
    # Same weights (random, LoRA factors included, so LoRA's term is not zero), same output.
    rng = np.random.default_rng(1)
    weights = [rng.normal(size=w.shape) for w in theirs.get_weights()]
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in weights]
    for layer in (ours, theirs, again):
        layer.set_weights(weights)
    expected = theirs(x).numpy()
    assert expected.dtype == ("float64" if kwargs.get("dtype") == "float64" else "float32")
    np.testing.assert_allclose(ours(x).numpy(), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(again(x).numpy(), expected, rtol=1e-6, atol=1e-6)
    # The regularizers' terms, nothing else: activity where set, kernel and bias where set on a
    # trainable layer (Keras leaves out the penalties of frozen weights).
    weight_terms = sum(k in kwargs for k in ("kernel_regularizer", "depthwise_regularizer", "bias_regularizer"))
    regularized = ("activity_regularizer" in kwargs) + weight_terms * kwargs.get("trainable", True)
    assert len(ours.losses) == len(theirs.losses) == regularized
    np.testing.assert_allclose(sorted(float(v) for v in ours.losses), sorted(float(v) for v in theirs.losses),
                               rtol=1e-6)


# ---------------------------------------------------------------- Keras's layer-test harness
# One pair sample of a searchable row: candidates 0 and 2 at widths 3 and 6, mixed 0.3 / 0.7.
_SAMPLE = dict(widths=[3, 6], index=[0, 2], mix=[0.3, 0.7])


class _AtOneSample:
    """Mixin: a searchable layer called at the fixed ``_SAMPLE``.  Keras's harness calls a layer with its
    input alone in its training step (its ``call_kwargs`` reach only the other checks), and a searchable
    row's pair sample is a call argument, so the harness's layer binds it; everything else is the layer's."""

    def call(self, x, training=False):
        sample = (tf.constant(_SAMPLE["widths"]), tf.constant(_SAMPLE["index"]), tf.constant(_SAMPLE["mix"]))
        return super().call(x, *sample, training=training) if isinstance(self, SearchConv2D) else super().call(x, *sample)


@keras.saving.register_keras_serializable(package="nce_tf_tests")
class SampledSearchConv2D(_AtOneSample, SearchConv2D):
    pass


@keras.saving.register_keras_serializable(package="nce_tf_tests")
class SampledSearchDense(_AtOneSample, SearchDense):
    pass


_CONV_BN = (keras.layers.Conv2D(6, 3, use_bias=False), keras.layers.BatchNormalization())
# name: (layer class, its arguments, input shape, output shape, Keras counterparts, own extra (trainable weights,
# losses)).
# The expected weight counts and supports_masking are read off the Keras counterparts built on the same input
# (a SearchConv2D is a Conv2D and a BatchNormalization in one; PACT adds its alpha to ReLU); supports_masking is
# the first counterpart's (what the layer's output is: a conv's, a dense layer's, an activation's).
HARNESS = {
    "QuantConv2D-sawb": (QuantConv2D, dict(filters=6, kernel_size=3, padding="same", kernel_quantizer=quant.SAWB(2)),
                         (2, 6, 6, 4), (2, 6, 6, 6), [keras.layers.Conv2D(6, 3)], (0, 0)),
    "QuantConv2D-dorefa": (QuantConv2D, dict(filters=6, kernel_size=3, strides=2, use_bias=False,
                                             kernel_quantizer=quant.DoReFa(3)),
                           (2, 6, 6, 4), (2, 2, 2, 6), [keras.layers.Conv2D(6, 3, use_bias=False)], (0, 0)),
    "QuantDense-uniform": (QuantDense, dict(units=5, kernel_quantizer=quant.Uniform(4, per_channel=False)),
                           (2, 7), (2, 5), [keras.layers.Dense(5)], (0, 0)),
    "QuantDepthwiseConv2D-sawb": (QuantDepthwiseConv2D, dict(kernel_size=3, padding="same",
                                                             kernel_quantizer=quant.SAWB(2)),
                                  (2, 6, 6, 4), (2, 6, 6, 4), [keras.layers.DepthwiseConv2D(3)], (0, 0)),
    "QuantActivation-pact": (QuantActivation, dict(quantizer=quant.PACT(bits=2, alpha_init=1.5)),
                             (2, 6, 6, 4), (2, 6, 6, 4), [keras.layers.ReLU()], (1, 1)),  # alpha, its L2
    "SearchConv2D-pair": (SampledSearchConv2D, dict(max_in=4, max_out=8, base_width=4, num_candidates=4,
                                                    kernel_quantizer=quant.SAWB(2), seed=1),
                          (2, 6, 6, 4), (2, 6, 6, 6), list(_CONV_BN), (0, 0)),
    "SearchConv2D-candidate": (SampledSearchConv2D, dict(max_in=4, max_out=8, base_width=4, num_candidates=4,
                                                         kernel_quantizer=quant.SAWB(2), sawb_scope="candidate",
                                                         strides=2, seed=1),
                               (2, 6, 6, 4), (2, 3, 3, 6), list(_CONV_BN), (0, 0)),
    "SearchConv2D-pad": (SampledSearchConv2D, dict(max_in=4, max_out=8, base_width=4, num_candidates=4,
                                                   kernel_quantizer=quant.SAWB(2), pair_merge="pad", seed=1),
                         (2, 6, 6, 4), (2, 6, 6, 6), list(_CONV_BN), (0, 0)),
    "SearchConv2D-nobn": (SampledSearchConv2D, dict(max_in=4, max_out=8, base_width=4, use_bn=False, seed=1),
                          (2, 6, 6, 4), (2, 6, 6, 6), [keras.layers.Conv2D(6, 3)], (0, 0)),
    "SearchDense-classifier": (SearchDense, dict(max_in=7, units=5, kernel_quantizer=quant.SAWB(2), seed=1),
                               (2, 7), (2, 5), [keras.layers.Dense(5)], (0, 0)),
    "SearchDense-hidden": (SampledSearchDense, dict(max_in=7, units=8, base_width=4, sawb_scope="candidate",
                                                    kernel_quantizer=quant.SAWB(2), seed=1),
                           (2, 7), (2, 6), [keras.layers.Dense(6)], (0, 0)),
    "SearchDepthwiseConv2D": (SearchDepthwiseConv2D, dict(max_in=6, kernel_size=3, use_bias=True,
                                                          kernel_quantizer=quant.SAWB(2), seed=1),
                              (2, 6, 6, 4), (2, 6, 6, 4), [keras.layers.DepthwiseConv2D(3)], (0, 0)),
    "SearchBatchNorm": (SearchBatchNorm, dict(max_channels=6), (2, 6, 6, 4), (2, 6, 6, 4),
                        [keras.layers.BatchNormalization()], (0, 0)),
}
# supports_masking where a layer differs from its Keras counterpart on purpose: Keras's BatchNormalization
# leaves masked positions out of its batch statistics; SearchBatchNorm (images only: the super-net never
# sees a mask) counts every position, so it must not claim to support a mask.
MASKING_EXCEPTIONS = {"SearchBatchNorm": False}


def _expected_from_counterparts(counterparts, input_shape, extra):
    """``(trainable weights, non-trainable weights, losses, supports_masking)`` the harness expects."""
    trainable = non_trainable = 0
    for layer in counterparts:
        if not layer.built:
            layer.build(input_shape)
        trainable += len(layer.trainable_weights)
        non_trainable += len(layer.non_trainable_weights)
    return trainable + extra[0], non_trainable, extra[1], counterparts[0].supports_masking


@pytest.mark.parametrize("name", list(HARNESS))
def test_keras_layer_test_harness_with_mixed_precision(name):
    cls, kwargs, input_shape, output_shape, counterparts, extra = HARNESS[name]
    trainable, non_trainable, losses, masking = _expected_from_counterparts(counterparts, input_shape, extra)
    KerasTestCase().run_layer_test(
        cls, init_kwargs=kwargs, input_shape=input_shape, expected_output_shape=output_shape,
        expected_num_trainable_weights=trainable, expected_num_non_trainable_weights=non_trainable,
        expected_num_seed_generators=0, expected_num_losses=losses,
        supports_masking=MASKING_EXCEPTIONS.get(name, masking),
        custom_objects={c.__name__: c for c in (SampledSearchConv2D, SampledSearchDense)},
        run_training_check=True, run_mixed_precision_check=True)


def test_the_harness_covers_every_public_and_search_layer():
    import nce_tf.layers
    import nce_tf.search.layers

    public = {getattr(nce_tf.layers, n) for n in nce_tf.layers.__all__}
    search = {v for v in vars(nce_tf.search.layers).values()
              if isinstance(v, type) and issubclass(v, keras.layers.Layer) and v.__module__ == "nce_tf.search.layers"}
    tested = {c.__mro__[2] if c in (SampledSearchConv2D, SampledSearchDense) else c for c, *_ in HARNESS.values()}
    assert public | search == tested
