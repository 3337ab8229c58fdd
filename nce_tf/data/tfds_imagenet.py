"""Sources backed by TensorFlow Datasets: ImageNet and the ImageNet subset.

Each is prepared on first use into the TFDS data directory, as ``tfds.load`` would
(:mod:`nce_tf.data.tfds_prepare`; ``download=False`` refuses instead). ImageNet cannot be
downloaded by TFDS: its tar files go into ``DATA_DIR/downloads/manual`` by hand, and the
error says so; the next run prepares it from them. CIFAR-10 and any other image
classification dataset of TFDS (``tfds:NAME``) come from :mod:`nce_tf.data.tfds_images`.

The ImageNet search subset of the NCE paper keeps ``per_class`` random training images
of every class. It is chosen in two passes over the training split in its fixed file
order: first only the labels are read (images skipped undecoded), numpy picks the
indices per class from ``seed``, then the split is read again and only the chosen
records are decoded. Each pass over the subset therefore still scans the whole training
split; for many epochs, cache it (``source.train.cache(path)``) or export it to an npz.

``tensorflow_datasets`` is imported inside the functions because importing it costs
seconds, which every other code path should not pay.

Example::

    source = imagenet_source(tfds_data_dir="/data/tfds", seed=0)
    source = imagenet_subset_source(tfds_data_dir="/data/tfds", per_class=50, seed=0)
"""

import numbers
from typing import Optional

import numpy as np
import tensorflow as tf

from nce_tf.data.info import IMAGENET_INPUT_SHAPE, IMAGENET_MEAN, IMAGENET_STD, DatasetInfo, Source
from nce_tf.data.split import select_per_class
from nce_tf.data.tfds_images import image_label, num_examples, read_split
from nce_tf.data.tfds_prepare import open_builder, prepare
from nce_tf.errors import UsageError

IMAGENET_NAME = "imagenet2012"
_LABEL_BATCH = 8192


def _deterministic(ds: tf.data.Dataset) -> tf.data.Dataset:
    # The subset is selected by position, so both passes must see the same order even
    # if a caller's options elsewhere allow non-deterministic interleaving.
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options)


def _open(name: str, tfds_data_dir: Optional[str], download: bool):
    builder = open_builder(name, tfds_data_dir)
    prepare(builder, tfds_data_dir, download)
    return builder


def imagenet_source(tfds_data_dir: Optional[str] = None, seed: int = 0, download: bool = True) -> Source:
    """ImageNet-1k (ILSVRC 2012) from TFDS, splits train/validation.

    Args:
        tfds_data_dir: TFDS data directory; None means the TFDS default.
        seed: Seed for the order in which training files are read.
        download: If False, an unprepared imagenet2012 is an error; if True, it is
            prepared from the manually downloaded tar files.

    Returns:
        An ImageNet-kind :class:`Source`; images keep their original sizes.

    Raises:
        UsageError: If imagenet2012 is not prepared and its tar files are not in
            ``DATA_DIR/downloads/manual``.
    """
    # TFDS (slow to import) only when a TFDS dataset is read
    import tensorflow_datasets as tfds

    builder = _open(IMAGENET_NAME, tfds_data_dir, download)
    # File-level shuffling complements the element shuffle buffer, which alone only
    # mixes a window of 10k of the 1.28M sorted-by-file examples.
    train = read_split(
        builder, "train", as_supervised=True, shuffle_files=True, read_config=tfds.ReadConfig(shuffle_seed=seed)
    )
    test = read_split(builder, "validation", as_supervised=True)
    info = _imagenet_info(
        builder,
        IMAGENET_NAME,
        num_train=num_examples(builder, "train"),
        num_test=num_examples(builder, "validation"),
    )
    return Source(train=train, test=test, info=info)


def _imagenet_info(builder, name: str, num_train, num_test) -> DatasetInfo:
    return DatasetInfo(
        name=name,
        num_classes=int(builder.info.features["label"].num_classes),
        image_shape=IMAGENET_INPUT_SHAPE,
        num_train=num_train,
        num_test=num_test,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        kind="imagenet",
    )


def _read_labels(builder, split: str) -> np.ndarray:
    """All labels of a split in file order, without decoding a single image."""
    # TFDS (slow to import) only when a TFDS dataset is read
    import tensorflow_datasets as tfds

    ds = read_split(builder, split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()})

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
    download: bool = True,
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
        download: If False, an unprepared dataset is an error instead of being prepared.

    Returns:
        An ImageNet-kind :class:`Source` whose ``train_indices`` records the chosen
        positions in the full training split.

    Raises:
        UsageError: If the dataset is not prepared and cannot be, or per_class < 1.
    """
    # TFDS (slow to import) only when a TFDS dataset is read
    import tensorflow_datasets as tfds

    if isinstance(per_class, bool) or not isinstance(per_class, numbers.Integral) or per_class < 1:
        raise UsageError(
            f"subset_per_class must be an integer >= 1. Received: subset_per_class={per_class!r}."
        )
    builder = _open(tfds_name, tfds_data_dir, download)
    labels = _read_labels(builder, train_split)
    chosen = select_per_class(labels, int(per_class), seed=seed)
    keep = np.zeros(len(labels), dtype=bool)
    keep[chosen] = True
    keep = tf.constant(keep)
    image_feature = builder.info.features["image"]

    def is_chosen(index, example):
        return tf.gather(keep, index)

    def decode(index, example):
        return image_feature.decode_example(example["image"]), example["label"]

    train = read_split(builder, train_split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()})
    # Filter before decoding: with 50 per class only 4% of ImageNet is ever decoded.
    train = _deterministic(train).enumerate().filter(is_chosen)
    train = train.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    test = read_split(builder, test_split).map(image_label, num_parallel_calls=tf.data.AUTOTUNE)
    name = f"{tfds_name}_subset{per_class}"
    info = _imagenet_info(builder, name, len(chosen), num_examples(builder, test_split))
    return Source(train=train, test=test, info=info, train_indices=chosen)
