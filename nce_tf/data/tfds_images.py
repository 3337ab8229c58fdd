"""Any TFDS image classification dataset as a source: ``tfds:NAME`` (``cifar10`` is one).

A dataset qualifies when its examples hold an ``image`` feature of RGB ``uint8`` images
(``tfds.features.Image``, 3 channels) and a ``label`` feature (``tfds.features.ClassLabel``)
with at least 2 classes. Those are facts of the builder's code, known before a byte is
downloaded, so a dataset that cannot be used, or does not fit the model (``check``), is
refused before :func:`~nce_tf.data.tfds_prepare.prepare` writes anything.

Training reads split ``train``; evaluation reads ``test``, else ``validation``. The image
size picks the recipe as it does for an npz file (:func:`~nce_tf.data.info.info_for_images`):
32x32 is CIFAR-kind, any other or varying size ImageNet-kind (224x224 crops).

Example::

    source = tfds_image_source("cifar100", tfds_data_dir="/data/tfds", shown="tfds:cifar100")
    source.info.num_classes   # 100
"""

import dataclasses
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from nce_tf.data.info import DatasetInfo, Source, info_for_images
from nce_tf.data.tfds_prepare import absl_quiet, open_builder, prepare
from nce_tf.errors import UsageError

PREFIX = "tfds:"
TRAIN_SPLIT = "train"
TEST_SPLITS = ("test", "validation")
_ALLOWED = "an image classification dataset with an 'image' feature of RGB uint8 images and a 'label' ClassLabel"


def describe(builder, shown: str) -> DatasetInfo:
    """What the model will see of ``builder``'s dataset, checked from its features alone.

    Args:
        builder: A TFDS builder (prepared or not).
        shown: The dataset as the user wrote it, for messages.

    Returns:
        Its :class:`DatasetInfo` (example counts unknown until it is prepared).

    Raises:
        UsageError: If it lacks the features, its images are not RGB uint8, or it has
            fewer than 2 classes.
    """
    # TFDS (slow to import) only when a TFDS dataset is read
    import tensorflow_datasets as tfds

    features = builder.info.features
    names = sorted(features.keys()) if hasattr(features, "keys") else [type(features).__name__]
    image = features["image"] if "image" in names else None
    label = features["label"] if "label" in names else None
    if not isinstance(image, tfds.features.Image) or not isinstance(label, tfds.features.ClassLabel):
        raise UsageError(f"Not an image classification dataset. Received: dataset={shown!r} with features "
                         f"{names}. Allowed: {_ALLOWED}.")
    height, width, channels = image.shape
    if channels != 3 or image.np_dtype != np.uint8:
        raise UsageError(f"The dataset's images are not RGB uint8. Received: dataset={shown!r} with images "
                         f"{tuple(image.shape)} {np.dtype(image.np_dtype).name}. Allowed: (H, W, 3) uint8 "
                         f"images (the models take 3 channels).")
    if label.num_classes < 2:
        raise UsageError(f"The dataset has too few classes. Received: dataset={shown!r} with "
                         f"{label.num_classes} classes. Allowed: 2 or more.")
    return info_for_images(shown, height, width, label.num_classes)


def _test_split(builder, shown: str) -> str:
    splits = builder.info.splits
    if not splits:  # no split metadata (tfds.testing.mock_data): the usual name
        return TEST_SPLITS[0]
    if TRAIN_SPLIT not in splits or not any(s in splits for s in TEST_SPLITS):
        raise UsageError(f"The dataset has no train and test splits. Received: dataset={shown!r} with splits "
                         f"{sorted(splits.keys())}. Allowed: 'train' and 'test' (or 'validation').")
    return next(s for s in TEST_SPLITS if s in splits)


def num_examples(builder, split: str) -> Optional[int]:
    # Mocked or partially described datasets carry no split metadata.
    split_info = builder.info.splits.get(split)
    return None if split_info is None else int(split_info.num_examples)


def image_label(example):
    """``(image, label)`` of a TFDS example dict."""
    # Not as_supervised: a dataset need not declare supervised keys to have both features.
    return example["image"], example["label"]


def read_split(builder, split: str, **kwargs) -> tf.data.Dataset:
    """``builder.as_dataset(split)``, quiet unless the data is there (TFDS warns on a mocked dir)."""
    with absl_quiet(not builder.is_prepared()):
        return builder.as_dataset(split=split, **kwargs)


def tfds_image_source(
    name: str,
    tfds_data_dir: Optional[str] = None,
    *,
    download: bool = True,
    check: Optional[Callable[[DatasetInfo], None]] = None,
    shown: Optional[str] = None,
) -> Source:
    """An image classification dataset of TFDS, downloaded and prepared on first use.

    Args:
        name: TFDS name, optionally ``NAME:VERSION`` or ``NAME/CONFIG:VERSION``.
        tfds_data_dir: TFDS data directory; None means TFDS's default.
        download: If False, an unprepared dataset is an error instead of a download.
        check: Called with the dataset's :class:`DatasetInfo` before anything is
            downloaded; raises :class:`UsageError` if the data does not fit the model.
        shown: The dataset as the user wrote it (``tfds:cifar100``); also the info's name.

    Returns:
        A :class:`Source` of ``(image uint8, label int64)`` train/test splits.

    Raises:
        UsageError: For an unknown name, a dataset that is not image classification, data
            that does not fit (``check``), or a dataset that cannot be prepared.
    """
    shown = shown or f"{PREFIX}{name}"
    builder = open_builder(name, tfds_data_dir, shown)
    info = describe(builder, shown)
    if check is not None:
        check(info)
    prepare(builder, tfds_data_dir, download, shown)
    test_split = _test_split(builder, shown)
    train = read_split(builder, TRAIN_SPLIT).map(image_label, num_parallel_calls=tf.data.AUTOTUNE)
    test = read_split(builder, test_split).map(image_label, num_parallel_calls=tf.data.AUTOTUNE)
    info = dataclasses.replace(info, num_train=num_examples(builder, TRAIN_SPLIT),
                               num_test=num_examples(builder, test_split))
    return Source(train=train, test=test, info=info)
