"""Tests for nce_tf.data: sources, preprocessing, pipelines and per-class splits.

Everything runs offline: npz files are written to tmp_path and TFDS datasets are
replaced by ``tfds.testing.mock_data`` (preparing on first use: ``test_tfds.py``).
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from nce_tf.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    DatasetInfo,
    get_source,
    imagenet_eval_crop,
    make_pipeline,
    normalize_for_model,
    preprocess_eval,
    preprocess_train,
    select_per_class,
    split_per_class,
)
from nce_tf.data.augment import cifar_train_augment, imagenet_train_augment
from nce_tf.errors import UsageError

CIFAR_INFO = DatasetInfo(
    name="tiny", num_classes=10, image_shape=(32, 32, 3), num_train=None, num_test=None,
    mean=CIFAR10_MEAN, std=CIFAR10_STD, kind="cifar",
)
IMAGENET_INFO = DatasetInfo(
    name="tiny_in", num_classes=1000, image_shape=(224, 224, 3), num_train=None,
    num_test=None, mean=IMAGENET_MEAN, std=IMAGENET_STD, kind="imagenet",
)


def _one_line_usage_error(excinfo, *needles):
    message = str(excinfo.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)


# ----------------------------------------------------------------------------- synthetic


@pytest.fixture(scope="module")
def synthetic():
    return get_source("synthetic", seed=0, synthetic_train_size=1000, synthetic_test_size=500)


def test_synthetic_shapes_dtypes_and_balance(synthetic):
    x, y = synthetic.train_arrays
    assert x.shape == (1000, 32, 32, 3) and x.dtype == np.uint8
    assert y.shape == (1000,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y, minlength=10), np.full(10, 100))
    x_test, y_test = synthetic.test_arrays
    assert x_test.shape == (500, 32, 32, 3)
    assert set(np.unique(y_test)) == set(range(10))
    info = synthetic.info
    assert (info.num_classes, info.image_shape, info.kind) == (10, (32, 32, 3), "cifar")
    assert (info.num_train, info.num_test) == (1000, 500)
    # Mean/std are measured on the generated train split.
    np.testing.assert_allclose(info.mean, x.reshape(-1, 3).mean(0), atol=1e-2)
    np.testing.assert_allclose(info.std, x.reshape(-1, 3).std(0), atol=1e-2)
    image, label = next(iter(synthetic.train))
    assert image.dtype == tf.uint8 and image.shape == (32, 32, 3)
    assert label.dtype == tf.int64 and label.shape == ()
    np.testing.assert_array_equal(image.numpy(), x[0])


def test_synthetic_is_deterministic_per_seed(synthetic):
    again = get_source("synthetic", seed=0, synthetic_train_size=1000, synthetic_test_size=500)
    np.testing.assert_array_equal(again.train_arrays[0], synthetic.train_arrays[0])
    np.testing.assert_array_equal(again.train_arrays[1], synthetic.train_arrays[1])
    other = get_source("synthetic", seed=1, synthetic_train_size=1000, synthetic_test_size=500)
    assert not np.array_equal(other.train_arrays[0], synthetic.train_arrays[0])
    # Independent streams: the test split does not depend on the train size.
    smaller = get_source("synthetic", seed=0, synthetic_train_size=100, synthetic_test_size=500)
    np.testing.assert_array_equal(smaller.test_arrays[0], synthetic.test_arrays[0])


def _spectrum_features(x):
    gray = x.astype(np.float32).mean(-1)
    gray -= gray.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.rfft2(gray)).reshape(len(x), -1)
    return power / (np.linalg.norm(power, axis=1, keepdims=True) + 1e-6)


def _nearest_mean_accuracy(f_train, y_train, f_test, y_test):
    means = np.stack([f_train[y_train == c].mean(0) for c in range(10)])
    distances = ((f_test[:, None, :] - means[None]) ** 2).sum(-1)
    return float((distances.argmin(1) == y_test).mean())


def test_synthetic_is_learnable_from_spatial_structure_only(synthetic):
    (x, y), (x_test, y_test) = synthetic.train_arrays, synthetic.test_arrays
    f_train = _spectrum_features(x)
    assert _nearest_mean_accuracy(f_train, y, _spectrum_features(x_test), y_test) > 0.6
    # Augmentation keeps the class: flipped test images are classified as well.
    flipped = _spectrum_features(x_test[:, :, ::-1])
    assert _nearest_mean_accuracy(f_train, y, flipped, y_test) > 0.6
    # Colour/brightness carry no class information: raw pixel means sit near chance.
    colour = x.reshape(len(x), -1, 3).mean(1)
    colour_test = x_test.reshape(len(x_test), -1, 3).mean(1)
    assert _nearest_mean_accuracy(colour, y, colour_test, y_test) < 0.25


def test_synthetic_rejects_bad_sizes():
    with pytest.raises(UsageError) as excinfo:
        get_source("synthetic", synthetic_train_size=0)
    _one_line_usage_error(excinfo, "synthetic_train_size=0")


# ----------------------------------------------------------------------------------- npz


def _write_npz(path, n_train=12, n_test=6, size=32, num_classes=3, **overrides):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, size, size, 3), dtype=np.uint8),
        "y_train": (np.arange(n_train) % num_classes).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, size, size, 3), dtype=np.uint8),
        "y_test": (np.arange(n_test) % num_classes).astype(np.uint8),
    }
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


def test_npz_loads_a_good_file(tmp_path):
    path = tmp_path / "good.npz"
    arrays = _write_npz(path, num_classes=4)
    source = get_source(f"npz:{path}")
    info = source.info
    assert info.kind == "cifar" and info.image_shape == (32, 32, 3)
    assert info.num_classes == 4 and (info.num_train, info.num_test) == (12, 6)
    assert info.mean == CIFAR10_MEAN and info.std == CIFAR10_STD
    np.testing.assert_array_equal(source.train_arrays[0], arrays["x_train"])
    assert source.train_arrays[1].dtype == np.int64
    image, label = next(iter(source.test))
    assert image.dtype == tf.uint8 and label.dtype == tf.int64
    np.testing.assert_array_equal(image.numpy(), arrays["x_test"][0])


def test_npz_non_cifar_size_is_imagenet_kind(tmp_path):
    path = tmp_path / "big.npz"
    _write_npz(path, size=48)
    info = get_source(f"npz:{path}").info
    assert info.kind == "imagenet" and info.image_shape == (224, 224, 3)
    assert info.mean == IMAGENET_MEAN and info.std == IMAGENET_STD


def _bad_random_bytes(path):
    path.write_bytes(os.urandom(200))


def _bad_missing_arrays(path):
    _write_npz(path, x_test=None, y_test=None)


def _bad_x_3d(path):
    _write_npz(path, x_train=np.zeros((12, 32, 32), np.uint8))


def _bad_channels(path):
    _write_npz(path, x_test=np.zeros((6, 32, 32, 4), np.uint8))


def _bad_length(path):
    _write_npz(path, y_train=np.zeros(11, np.uint8))


def _bad_float_labels(path):
    _write_npz(path, y_test=np.zeros(6, np.float32))


def _bad_negative_labels(path):
    _write_npz(path, y_train=np.full(12, -1, np.int64))


def _bad_one_class(path):
    _write_npz(path, num_classes=1)


def _bad_npy(path):
    np.save(open(path, "wb"), np.zeros(3))


@pytest.mark.parametrize(
    "make_bad, expected",
    [
        (_bad_random_bytes, "not a valid .npz"),
        (_bad_npy, "not a valid .npz"),
        (_bad_missing_arrays, "x_test, y_test"),
        (_bad_x_3d, "x_train must be 4-D"),
        (_bad_channels, "x_test must be 4-D"),
        (_bad_length, "different lengths"),
        (_bad_float_labels, "integer"),
        (_bad_negative_labels, "negative"),
        (_bad_one_class, "at least 2 classes"),
    ],
)
def test_npz_bad_files_raise_usage_error_naming_the_path(tmp_path, make_bad, expected):
    path = tmp_path / "bad.npz"
    make_bad(path)
    with pytest.raises(UsageError) as excinfo:
        get_source(f"npz:{path}")
    _one_line_usage_error(excinfo, str(path), expected)


def test_npz_missing_file(tmp_path):
    path = tmp_path / "nope" / "missing.npz"
    with pytest.raises(UsageError) as excinfo:
        get_source(f"npz:{path}")
    _one_line_usage_error(excinfo, "not found", f"path={str(path)!r}", "x_train, y_train")


@pytest.mark.parametrize("name", ["npz:", "cifar100", "", 3])
def test_unknown_or_empty_names(name):
    with pytest.raises(UsageError) as excinfo:
        get_source(name)
    _one_line_usage_error(excinfo, "Received: name=")


def test_unknown_name_lists_the_allowed_names():
    with pytest.raises(UsageError) as excinfo:
        get_source("mnist")
    _one_line_usage_error(excinfo, "synthetic", "npz:PATH", "cifar10", "imagenet2012_subset")


# ------------------------------------------------------------------------------ pipeline


def _constant_dataset(value, n, shape=(32, 32, 3)):
    images = np.full((n,) + shape, value, np.uint8)
    return tf.data.Dataset.from_tensor_slices((images, np.arange(n, dtype=np.int64)))


def test_pipeline_batch_shapes_dtypes_and_remainder():
    ds = _constant_dataset(7, 10)
    train = list(make_pipeline(ds, CIFAR_INFO, training=True, batch_size=4, seed=0))
    assert [int(x.shape[0]) for x, _ in train] == [4, 4]
    x, y = train[0]
    assert x.dtype == tf.float32 and x.shape == (4, 32, 32, 3)
    assert y.dtype in (tf.int32, tf.int64) and y.shape == (4,)
    evaluation = list(make_pipeline(ds, CIFAR_INFO, training=False, batch_size=4))
    assert [int(x.shape[0]) for x, _ in evaluation] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([y for _, y in evaluation]), np.arange(10))


def test_pipeline_normalises_like_a_hand_computation():
    ds = _constant_dataset(100, 2)
    x, _ = next(iter(make_pipeline(ds, CIFAR_INFO, training=False, batch_size=2)))
    expected = (100.0 - np.array(CIFAR10_MEAN)) / np.array(CIFAR10_STD)
    np.testing.assert_allclose(x.numpy()[0, 5, 7], expected, rtol=1e-5)
    np.testing.assert_allclose(x.numpy(), np.broadcast_to(expected, x.shape), rtol=1e-5)


def test_pipeline_training_is_seeded_and_eval_is_deterministic(synthetic):
    ds = synthetic.train.take(64)

    def first_batch(**kwargs):
        return next(iter(make_pipeline(ds, synthetic.info, batch_size=32, **kwargs)))

    a_x, a_y = first_batch(training=True, seed=5)
    b_x, b_y = first_batch(training=True, seed=5)
    c_x, _ = first_batch(training=True, seed=6)
    assert a_x.shape == (32, 32, 32, 3)
    np.testing.assert_array_equal(a_x.numpy(), b_x.numpy())
    np.testing.assert_array_equal(a_y.numpy(), b_y.numpy())
    assert not np.array_equal(a_x.numpy(), c_x.numpy())
    evaluation = make_pipeline(ds, synthetic.info, training=False, batch_size=32)
    first, second = [np.concatenate([x for x, _ in evaluation]) for _ in range(2)]
    np.testing.assert_array_equal(first, second)
    mean, std = np.float32(synthetic.info.mean), np.float32(synthetic.info.std)
    expected = (synthetic.train_arrays[0][:64] - mean) / std
    np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-5)


def _left_bright_image():
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, :16] = 255
    return image


def _is_flipped(x):
    # Left-bright stays left-bright under any pad-4 crop; only a flip moves it right.
    return x[:, :8].mean() < x[:, -8:].mean()


def test_cifar_augmentation_keeps_shape_and_flips_for_some_seeds():
    image = tf.constant(_left_bright_image())
    flips = []
    for s in range(16):
        out = cifar_train_augment(image, tf.constant([s, 0]), CIFAR_INFO)
        assert out.shape == (32, 32, 3) and out.dtype == tf.uint8
        flips.append(_is_flipped(out.numpy()))
    assert any(flips) and not all(flips)
    ds = tf.data.Dataset.from_tensors((_left_bright_image(), np.int64(0))).repeat(32)
    x, _ = next(iter(make_pipeline(ds, CIFAR_INFO, training=True, batch_size=32, seed=0)))
    pipeline_flips = [_is_flipped(img) for img in x.numpy()]
    assert any(pipeline_flips) and not all(pipeline_flips)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8"])
def test_pipeline_rejects_bad_batch_size(bad):
    with pytest.raises(UsageError) as excinfo:
        make_pipeline(_constant_dataset(1, 2), CIFAR_INFO, training=False, batch_size=bad)
    _one_line_usage_error(excinfo, "batch_size=")


def test_pipeline_rejects_images_that_do_not_match_a_cifar_input():
    ds = _constant_dataset(1, 2, (28, 28, 3))
    with pytest.raises(UsageError) as excinfo:
        make_pipeline(ds, CIFAR_INFO, training=False, batch_size=2)
    _one_line_usage_error(excinfo, "(32, 32, 3)")


# ----------------------------------------------------------------- imagenet preprocessing


def test_imagenet_eval_gives_224_for_non_square_inputs():
    for shape in [(300, 500, 3), (500, 300, 3), (100, 120, 3)]:
        out = preprocess_eval(tf.zeros(shape, tf.uint8), IMAGENET_INFO)
        assert out.shape == (224, 224, 3) and out.dtype == tf.float32


def test_imagenet_eval_centre_crop_matches_hand_slicing():
    rows, cols = np.meshgrid(np.arange(256), np.arange(512), indexing="ij")
    image = np.stack([cols % 256, rows, cols // 256], axis=-1).astype(np.uint8)
    # The shorter side is already 256, so the resize is the identity.
    out = imagenet_eval_crop(tf.constant(image), IMAGENET_INFO).numpy()
    top, left = (256 - 224) // 2, (512 - 224) // 2
    np.testing.assert_allclose(out, image[top : top + 224, left : left + 224], atol=1e-3)


def test_imagenet_eval_resizes_shorter_side_before_cropping():
    # Left half dark, right half bright, 128x256: scaled x2 to 256x512, the centre crop
    # shows half dark and half bright.
    image = np.zeros((128, 256, 3), np.uint8)
    image[:, 128:] = 200
    out = imagenet_eval_crop(tf.constant(image), IMAGENET_INFO).numpy()
    assert out.shape == (224, 224, 3)
    np.testing.assert_allclose(out[:, :100], 0, atol=1e-3)
    np.testing.assert_allclose(out[:, -100:], 200, atol=1e-3)


def test_imagenet_train_augmentation_gives_the_input_size():
    for s, shape in enumerate([(300, 500, 3), (64, 48, 3), (224, 224, 3)]):
        image = tf.fill(shape, tf.constant(50, tf.uint8))
        out = imagenet_train_augment(image, tf.constant([s, 1]), IMAGENET_INFO)
        assert out.shape == (224, 224, 3) and out.dtype == tf.float32
        np.testing.assert_allclose(out.numpy(), 50, atol=1e-3)
        normalised = preprocess_train(image, tf.constant([s, 1]), IMAGENET_INFO)
        expected = (50 - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
        np.testing.assert_allclose(normalised.numpy()[3, 4], expected, rtol=1e-4)


def test_imagenet_pipeline_batches_images_of_varying_sizes():
    sizes = [(40, 60), (80, 50), (33, 33), (100, 70)]

    def generate():
        for i, (h, w) in enumerate(sizes):
            yield np.full((h, w, 3), i, np.uint8), np.int64(i)

    ds = tf.data.Dataset.from_generator(
        generate,
        output_signature=(
            tf.TensorSpec((None, None, 3), tf.uint8),
            tf.TensorSpec((), tf.int64),
        ),
    )
    for training in (True, False):
        x, y = next(iter(make_pipeline(ds, IMAGENET_INFO, training=training, batch_size=4, seed=0)))
        assert x.shape == (4, 224, 224, 3) and y.shape == (4,)


def test_normalize_for_model_numpy_and_tensor():
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    expected = (images.astype(np.float32) - np.float32(CIFAR10_MEAN)) / np.float32(CIFAR10_STD)
    out = normalize_for_model(images, CIFAR_INFO)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    out_tf = normalize_for_model(tf.constant(images[0]), CIFAR_INFO)
    assert tf.is_tensor(out_tf)
    np.testing.assert_allclose(out_tf.numpy(), expected[0], rtol=1e-6)
    big = normalize_for_model(np.zeros((1, 300, 400, 3), np.uint8), IMAGENET_INFO)
    assert big.shape == (1, 224, 224, 3)
    with pytest.raises(UsageError):
        normalize_for_model(np.zeros((2, 28, 28, 3), np.uint8), CIFAR_INFO)
    with pytest.raises(UsageError):
        normalize_for_model(np.zeros((32, 32)), CIFAR_INFO)


# -------------------------------------------------------------------------------- splits


def test_split_per_class_is_disjoint_complete_balanced_and_seeded():
    labels = np.repeat(np.arange(4), [10, 11, 1, 7])
    labels = np.random.default_rng(3).permutation(labels)
    a, b = split_per_class(labels, fraction=0.5, seed=111)
    assert a.dtype.kind == "i" and b.dtype.kind == "i"
    assert np.intersect1d(a, b).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([a, b])), np.arange(len(labels)))
    assert np.all(np.diff(a) > 0) and np.all(np.diff(b) > 0)
    # floor(n_c * fraction) per class to a, the rest to b.
    np.testing.assert_array_equal(np.bincount(labels[a], minlength=4), [5, 5, 0, 3])
    np.testing.assert_array_equal(np.bincount(labels[b], minlength=4), [5, 6, 1, 4])
    a2, b2 = split_per_class(labels, fraction=0.5, seed=111)
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    a3, _ = split_per_class(labels, fraction=0.5, seed=112)
    assert not np.array_equal(a, a3)
    a4, _ = split_per_class(labels, fraction=0.3, seed=111)
    np.testing.assert_array_equal(np.bincount(labels[a4], minlength=4), [3, 3, 0, 2])


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5])
def test_split_per_class_rejects_bad_fraction(fraction):
    with pytest.raises(UsageError) as excinfo:
        split_per_class(np.arange(10) % 2, fraction=fraction)
    _one_line_usage_error(excinfo, "fraction=")


def test_split_per_class_rejects_non_integer_labels():
    with pytest.raises(UsageError):
        split_per_class(np.zeros((4, 2), np.int64))
    with pytest.raises(UsageError):
        split_per_class(np.zeros(4, np.float32))


def test_select_per_class_takes_at_most_k_per_class():
    labels = np.repeat(np.arange(3), [5, 1, 3])
    chosen = select_per_class(labels, 2, seed=0)
    np.testing.assert_array_equal(np.bincount(labels[chosen]), [2, 1, 2])
    np.testing.assert_array_equal(chosen, select_per_class(labels, 2, seed=0))


# ---------------------------------------------------------------------------------- tfds


def test_cifar10_from_mocked_tfds(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6):
        source = get_source("cifar10", tfds_data_dir=str(tmp_path))
        elements = list(source.train)
        assert len(elements) == 6
        image, label = elements[0]
        assert image.shape == (32, 32, 3) and image.dtype == tf.uint8
        assert label.shape == () and label.dtype == tf.int64
        assert source.info.num_classes == 10 and source.info.kind == "cifar"
        x, y = next(iter(make_pipeline(source.test, source.info, training=False, batch_size=3)))
        assert x.shape == (3, 32, 32, 3)


def _mock_train_labels(tmp_path):
    import tensorflow_datasets as tfds

    builder = tfds.builder("imagenet2012", data_dir=str(tmp_path))
    ds = builder.as_dataset(split="train", decoders={"image": tfds.decode.SkipDecoding()})
    return np.array([int(example["label"]) for example in ds])


def test_imagenet_subset_from_mocked_tfds(tmp_path):
    import tensorflow_datasets as tfds

    per_class = 2
    with tfds.testing.mock_data(num_examples=400):
        all_labels = _mock_train_labels(tmp_path)
        available = np.bincount(all_labels, minlength=1000)
        assert available.max() > per_class  # the mock must exercise the per-class cap
        source = get_source(
            "imagenet2012_subset", tfds_data_dir=str(tmp_path), subset_per_class=per_class, seed=0
        )
        elements = list(source.train)
        labels = np.array([int(label) for _, label in elements])
        counts = np.bincount(labels, minlength=1000)
        np.testing.assert_array_equal(counts, np.minimum(available, per_class))
        np.testing.assert_array_equal(labels, all_labels[source.train_indices])
        image = elements[0][0]
        assert image.dtype == tf.uint8 and image.shape.rank == 3 and image.shape[-1] == 3
        info = source.info
        assert info.kind == "imagenet" and info.image_shape == (224, 224, 3)
        assert info.num_classes == 1000 and info.num_train == len(labels)

        again = get_source(
            "imagenet2012_subset", tfds_data_dir=str(tmp_path), subset_per_class=per_class, seed=0
        )
        np.testing.assert_array_equal(again.train_indices, source.train_indices)
        other = get_source(
            "imagenet2012_subset", tfds_data_dir=str(tmp_path), subset_per_class=per_class, seed=1
        )
        assert not np.array_equal(other.train_indices, source.train_indices)
        test_image, _ = next(iter(source.test))
        assert test_image.dtype == tf.uint8


@pytest.mark.parametrize("name", ["cifar10", "imagenet2012", "imagenet2012_subset", "tfds:cifar100"])
def test_unprepared_tfds_dir_with_nodownload_raises_usage_error(tmp_path, name):
    with pytest.raises(UsageError) as excinfo:
        get_source(name, tfds_data_dir=str(tmp_path), download=False)
    _one_line_usage_error(excinfo, str(tmp_path), "tfds build", "not prepared", "--nodownload")
    assert os.listdir(tmp_path) == []
