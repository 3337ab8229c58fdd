"""The zoo: every model builds from a non-default width list; arch.json; .keras round trip; initial
kernels distinct per layer, per seed and per structure trained."""

import json

import keras
import numpy as np
import pytest

from nce_tf import arch, models
from nce_tf.errors import UsageError
from nce_tf.jobs.lifecycle import run_job
from nce_tf.jobs.train import _Training
from nce_tf.layers import QuantActivation, QuantConv2D
from nce_tf.models import QuantPolicy
from nce_tf.train import TrainConfig

SMALL_INPUT = {"cifar": (32, 32, 3), "imagenet": (64, 64, 3)}


def _mixed_widths(name):
    """Every third layer at 2X, every third narrower (about 5/8), the rest original."""
    widths = models.default_widths(name)
    out = []
    for i, n in enumerate(widths):
        out.append(2 * n if i % 3 == 1 else max(1, (5 * n) // 8) if i % 3 == 2 else n)
    return out


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_every_model_builds_from_a_non_default_width_list(name):
    spec = models.get_spec(name)
    widths = _mixed_widths(name)
    assert widths != models.default_widths(name)
    model = models.build_model(name, widths, policy=QuantPolicy(w_bits=2, a_bits=2),
                               input_shape=SMALL_INPUT[spec.kind], num_classes=7)
    for layer_name, w in zip(models.width_names(name), widths):
        assert model.get_layer(layer_name).filters == w, layer_name
    # Every block whose input and output widths differ got a projection (the add would fail otherwise).
    assert model.output.shape[-1] == 7
    # Width-list convs are 2-bit except the first; shortcuts stay float (the paper's rule).
    for layer in model.layers:
        if isinstance(layer, QuantConv2D):
            expected = 32 if layer.name.startswith("stem") or "shortcut" in layer.name or layer.name == "conv1_conv" else 2
            bits = layer.kernel_quantizer.bits if layer.kernel_quantizer else 32
            assert bits == expected, layer.name


def test_forward_pass_of_a_derived_resnet20():
    widths = _mixed_widths("resnet20")
    model = models.build_model("resnet20", widths, policy=QuantPolicy(w_bits=2, a_bits=2))
    y = model(np.zeros((2, 32, 32, 3), "float32"))
    assert y.shape == (2, 10)
    # Stage-1 block 0: input 16 (stem), conv_b 2X -> 32: a stride-1 projection is needed.
    assert model.get_layer("s1_b0_shortcut_conv").filters == widths[2]


def test_identity_shortcut_when_widths_match():
    model = models.build_model("resnet20")
    names = {layer.name for layer in model.layers}
    assert "s1_b0_shortcut_conv" not in names and "s2_b0_shortcut_conv" in names


@pytest.mark.parametrize("widths, match", [
    ([16] * 18, "Expected: 19"),
    ([16] * 18 + [0], "Allowed: an integer in"),
    ([16] * 18 + [129], r"\[1, 128\]"),
    ([16] * 18 + [3.5], "Received: 3.5"),
    ("16,16", "list of integers"),
])
def test_bad_width_lists(widths, match):
    with pytest.raises(UsageError, match=match):
        models.build_model("resnet20", widths)


def test_unknown_model():
    with pytest.raises(UsageError, match="Allowed: resnet20"):
        models.build_model("mobilenet")


def test_arch_file_round_trip_and_errors(tmp_path):
    widths = _mixed_widths("resnet8")
    path = str(tmp_path / "arch.json")
    arch.save_arch(path, "resnet8", widths, macs=123)
    loaded = arch.load_arch(path, expected_model="resnet8")
    assert loaded.widths == widths and loaded.extra["macs"] == 123
    with pytest.raises(UsageError, match="another model"):
        arch.load_arch(path, expected_model="resnet20")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        arch.load_arch(str(bad))
    bad.write_text(json.dumps({"model": "resnet8", "widths": [16] * 3}))
    with pytest.raises(UsageError, match="Wrong number of widths"):
        arch.load_arch(str(bad))
    with pytest.raises(UsageError, match="not found"):
        arch.load_arch(str(tmp_path / "missing.json"))


def test_w2a2_zoo_model_round_trips_through_keras_file(tmp_path):
    model = models.build_model("resnet8", _mixed_widths("resnet8"),
                               policy=QuantPolicy(w_bits=2, a_bits=2, pact_alpha_init=2.0), weight_decay=5e-4)
    x = np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype("float32")
    # Move PACT alphas and BN statistics away from their initial values first.
    model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, np.array([1, 2, 3]), epochs=2, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    alphas = [layer.alpha.numpy() for layer in loaded.layers if isinstance(layer, QuantActivation)]
    assert alphas and not np.allclose(alphas, 2.0)


def test_initial_kernels_are_distinct_per_layer_and_follow_the_seed():
    """Every conv of one shape starts from its own kernel, and ``set_random_seed`` alone decides
    them: a model built after ``set_random_seed(s)`` is the same whatever ran before."""
    def kernels(seed, warm_up=False):
        if warm_up:  # consume Python, NumPy and Keras random state first
            keras.utils.set_random_seed(123)
            models.build_model("resnet8")
            np.random.rand(5)
        keras.utils.set_random_seed(seed)
        model = models.build_model("resnet20")
        return {layer.name: layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")}

    first = kernels(0)
    by_shape = {}
    for name, k in first.items():
        by_shape.setdefault(k.shape, []).append(name)
    same_shape = [names for names in by_shape.values() if len(names) > 1]
    assert same_shape, "resnet20 has several convs of one shape"
    for names in same_shape:
        for a, b in zip(names, names[1:]):
            assert not np.array_equal(first[a], first[b]), (a, b)
    again = kernels(0, warm_up=True)
    assert all(np.array_equal(first[n], again[n]) for n in first)
    other = kernels(1)
    assert not any(np.array_equal(first[n], other[n]) for n in first)
    # Kaiming normal, fan-out: std sqrt(2 / (k * k * filters)) for the body convs.
    k = first["s3_b2_b_conv"]
    assert np.std(k) == pytest.approx(np.sqrt(2.0 / (9 * k.shape[-1])), rel=0.1)


class _Initial(Exception):
    """Carries a training's initial kernels out of its run."""


class _FirstKernels(_Training):
    """A training run stopped where its fit would start: its initial kernels, set up by the real lifecycle."""

    def fit(self, run):
        raise _Initial({layer.name: layer.kernel.numpy() for layer in self.model.layers if hasattr(layer, "kernel")})


def _initial_kernels(workdir, seed, widths):
    config = TrainConfig(workdir=str(workdir), model="resnet8", dataset="synthetic", synthetic_train_size=64,
                         synthetic_test_size=32, epochs=1, warmup_epochs=0, batch_size=32, steps_per_epoch=1, verbose=0,
                         seed=seed)
    with pytest.raises(_Initial) as caught:
        run_job(_FirstKernels(config, arch=arch.Arch("resnet8", list(widths))))
    return caught.value.args[0]


def test_two_structures_trained_with_one_seed_start_from_different_kernels(tmp_path):
    """A training's initialisation is seeded by its training seed and the structure it trains: a study
    trains every structure with the same training seeds, and same-shape convs of two structures must not
    start identical by that coincidence; one structure with one seed starts the same every time."""
    base = models.default_widths("resnet8")
    other = base[:-1] + [base[-1] // 2]  # only the last searchable conv differs
    first = _initial_kernels(tmp_path / "a", 1000, base)
    second = _initial_kernels(tmp_path / "b", 1000, other)
    same_shape = [n for n in first if n in second and first[n].shape == second[n].shape]
    assert "stem_conv" in same_shape and len(same_shape) >= 4, same_shape
    for name in same_shape:
        assert not np.array_equal(first[name], second[name]), name
    again = _initial_kernels(tmp_path / "c", 1000, base)
    assert all(np.array_equal(first[n], again[n]) for n in first)
