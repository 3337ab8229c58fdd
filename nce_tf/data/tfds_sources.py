"""Sources backed by TensorFlow Datasets: CIFAR-10, ImageNet and the ImageNet subset.

nce-tf never downloads: the datasets must already be prepared in the TFDS data
directory (``tfds build cifar10 --data_dir=DIR``; ImageNet additionally needs the
manually downloaded tar files via ``--manual_dir``). An unprepared directory raises
:class:`~nce_tf.errors.UsageError` saying exactly that, instead of starting a
multi-gigabyte download in the middle of a training job.

The ImageNet search subset of the NCE paper keeps ``per_class`` random training images
of every class. It is chosen in two passes over the training split in its fixed file
order: first only the labels are read (images skipped undecoded), numpy picks the
indices per class from ``seed``, then the split is read again and only the chosen
records are decoded. Each pass over the subset therefore still scans the whole training
split; for many epochs, cache it (``source.train.cache(path)``) or export it to an npz.

``tensorflow_datasets`` is imported inside the functions because importing it costs
seconds, which every other code path should not pay.

Example::

    source = cifar10_source(tfds_data_dir="/data/tfds")
    source = imagenet_subset_source(tfds_data_dir="/data/tfds", per_class=50, seed=0)
"""

import contextlib
import numbers
from typing import Optional

import numpy as np
import tensorflow as tf

from nce_tf.data.info import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    DatasetInfo,
    Source,
)
from nce_tf.data.split import select_per_class
from nce_tf.errors import UsageError

IMAGENET_NAME = "imagenet2012"
_LABEL_BATCH = 8192


@contextlib.contextmanager
def _absl_quiet(quiet=True):
    """Lowers absl logging to errors: on an unprepared data dir TFDS logs INFO and WARNING
    lines (no dataset_info.json, constructing the dataset) before we report one line."""
    from absl import logging

    verbosity = logging.get_verbosity()
    if quiet:
        logging.set_verbosity(logging.ERROR)
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)


def _builder(name: str, data_dir: Optional[str]):
    import tensorflow_datasets as tfds

    with _absl_quiet():
        return tfds.builder(name, data_dir=data_dir)


def _deterministic(ds: tf.data.Dataset) -> tf.data.Dataset:
    # The subset is selected by position, so both passes must see the same order even
    # if a caller's options elsewhere allow non-deterministic interleaving.
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options)


def _as_dataset(builder, data_dir: Optional[str], split: str, **kwargs) -> tf.data.Dataset:
    """``builder.as_dataset`` that reports an unprepared dataset as a UsageError."""
    with _absl_quiet():
        prepared = builder.is_prepared()
    try:
        with _absl_quiet(not prepared):  # a prepared dir logs as usual
            return builder.as_dataset(split=split, **kwargs)
    except AssertionError as e:
        # TFDS signals "no data in data_dir" with a bare AssertionError. Check before
        # translating so that unrelated assertion failures still surface as they are.
        # (Under tfds.testing.mock_data is_prepared() is False but no error is raised.)
        if prepared:
            raise
        name = builder.name
        manual = " --manual_dir=DIR_WITH_ILSVRC2012_TARS" if name == IMAGENET_NAME else ""
        raise UsageError(
            f"TFDS dataset {name!r} is not prepared in the data dir and nce-tf never "
            f"downloads. Received: tfds_data_dir={data_dir!r} (looked in "
            f"{builder.data_dir!r}). Prepare it there first with "
            f"`tfds build {name} --data_dir={builder.data_dir_root}{manual}`."
        ) from e


def _num_examples(builder, split: str) -> Optional[int]:
    # Mocked or partially described datasets carry no split metadata.
    split_info = builder.info.splits.get(split)
    return None if split_info is None else int(split_info.num_examples)


def cifar10_source(tfds_data_dir: Optional[str] = None) -> Source:
    """CIFAR-10 from TFDS, splits train/test.

    Args:
        tfds_data_dir: TFDS data directory; None means the TFDS default.

    Returns:
        A CIFAR-kind :class:`Source` with 32x32 images.

    Raises:
        UsageError: If cifar10 is not prepared in the data directory.
    """
    builder = _builder("cifar10", tfds_data_dir)
    train = _as_dataset(builder, tfds_data_dir, "train", as_supervised=True)
    test = _as_dataset(builder, tfds_data_dir, "test", as_supervised=True)
    info = DatasetInfo(
        name="cifar10",
        num_classes=int(builder.info.features["label"].num_classes),
        image_shape=(32, 32, 3),
        num_train=_num_examples(builder, "train"),
        num_test=_num_examples(builder, "test"),
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        kind="cifar",
    )
    return Source(train=train, test=test, info=info)


def imagenet_source(tfds_data_dir: Optional[str] = None, seed: int = 0) -> Source:
    """ImageNet-1k (ILSVRC 2012) from TFDS, splits train/validation.

    Args:
        tfds_data_dir: TFDS data directory; None means the TFDS default.
        seed: Seed for the order in which training files are read.

    Returns:
        An ImageNet-kind :class:`Source`; images keep their original sizes.

    Raises:
        UsageError: If imagenet2012 is not prepared in the data directory.
    """
    import tensorflow_datasets as tfds

    builder = _builder(IMAGENET_NAME, tfds_data_dir)
    # File-level shuffling complements the element shuffle buffer, which alone only
    # mixes a window of 10k of the 1.28M sorted-by-file examples.
    train = _as_dataset(
        builder,
        tfds_data_dir,
        "train",
        as_supervised=True,
        shuffle_files=True,
        read_config=tfds.ReadConfig(shuffle_seed=seed),
    )
    test = _as_dataset(builder, tfds_data_dir, "validation", as_supervised=True)
    info = _imagenet_info(
        builder,
        IMAGENET_NAME,
        num_train=_num_examples(builder, "train"),
        num_test=_num_examples(builder, "validation"),
    )
    return Source(train=train, test=test, info=info)


def _imagenet_info(builder, name: str, num_train, num_test) -> DatasetInfo:
    return DatasetInfo(
        name=name,
        num_classes=int(builder.info.features["label"].num_classes),
        image_shape=(224, 224, 3),
        num_train=num_train,
        num_test=num_test,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        kind="imagenet",
    )


def _image_label(example):
    # Not as_supervised: a generic dataset need not declare supervised keys.
    return example["image"], example["label"]


def _read_labels(builder, data_dir: Optional[str], split: str) -> np.ndarray:
    """All labels of a split in file order, without decoding a single image."""
    import tensorflow_datasets as tfds

    ds = _as_dataset(
        builder,
        data_dir,
        split,
        shuffle_files=False,
        decoders={"image": tfds.decode.SkipDecoding()},
    )

    def label_only(example):
        return example["label"]

    ds = _deterministic(ds).map(label_only).batch(_LABEL_BATCH).prefetch(tf.data.AUTOTUNE)
    batches = list(ds.as_numpy_iterator())
    if not batches:
        return np.zeros(0, np.int64)
    return np.concatenate(batches).astype(np.int64)


def imagenet_subset_source(
    tfds_data_dir: Optional[str] = None,
    per_class: int = 50,
    seed: int = 0,
    *,
    tfds_name: str = IMAGENET_NAME,
    train_split: str = "train",
    test_split: str = "validation",
) -> Source:
    """The NCE search subset: ``per_class`` random training images of every class.

    Works with any TFDS dataset that has ``image`` and ``label`` features.

    Args:
        tfds_data_dir: TFDS data directory; None means the TFDS default.
        per_class: Training images kept per class (all of them if a class has fewer).
        seed: Seed for the per-class choice; same seed, same subset.
        tfds_name: TFDS dataset name.
        train_split: Split the subset is drawn from.
        test_split: Split used, whole, for evaluation.

    Returns:
        An ImageNet-kind :class:`Source` whose ``train_indices`` records the chosen
        positions in the full training split.

    Raises:
        UsageError: If the dataset is not prepared or per_class < 1.
    """
    import tensorflow_datasets as tfds

    if isinstance(per_class, bool) or not isinstance(per_class, numbers.Integral) or per_class < 1:
        raise UsageError(
            f"subset_per_class must be an integer >= 1. Received: subset_per_class={per_class!r}."
        )
    builder = _builder(tfds_name, tfds_data_dir)
    labels = _read_labels(builder, tfds_data_dir, train_split)
    chosen = select_per_class(labels, int(per_class), seed=seed)
    keep = np.zeros(len(labels), dtype=bool)
    keep[chosen] = True
    keep = tf.constant(keep)
    image_feature = builder.info.features["image"]

    def is_chosen(index, example):
        return tf.gather(keep, index)

    def decode(index, example):
        return image_feature.decode_example(example["image"]), example["label"]

    train = _as_dataset(
        builder,
        tfds_data_dir,
        train_split,
        shuffle_files=False,
        decoders={"image": tfds.decode.SkipDecoding()},
    )
    # Filter before decoding: with 50 per class only 4% of ImageNet is ever decoded.
    train = _deterministic(train).enumerate().filter(is_chosen)
    train = train.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    test = _as_dataset(builder, tfds_data_dir, test_split).map(
        _image_label, num_parallel_calls=tf.data.AUTOTUNE
    )
    name = f"{tfds_name}_subset{per_class}"
    info = _imagenet_info(builder, name, len(chosen), _num_examples(builder, test_split))
    return Source(train=train, test=test, info=info, train_indices=chosen)
