"""Turn in-memory numpy arrays into a :class:`~nce_tf.data.info.Source`.

Synthetic and ``.npz`` data both end up as four arrays; this module wraps them in
unbatched ``tf.data`` datasets with the element format every source shares,
``(image uint8 [H, W, 3], label int64 scalar)``, and keeps the arrays on the Source so
the bi-level search can split them per class without iterating a dataset.

Example::

    source = source_from_arrays(x_train, y_train, x_test, y_test, info)
    image, label = next(iter(source.train))
"""

import numpy as np
import tensorflow as tf

from nce_tf.data.info import DatasetInfo, Source


def dataset_from_arrays(x: np.ndarray, y: np.ndarray) -> tf.data.Dataset:
    """Builds an unbatched dataset of ``(uint8 image, int64 label)`` pairs.

    Args:
        x: uint8 array ``(N, H, W, 3)``.
        y: Integer array ``(N,)``.

    Returns:
        A ``tf.data.Dataset`` with N elements.
    """
    return tf.data.Dataset.from_tensor_slices(
        (np.asarray(x, dtype=np.uint8), np.asarray(y, dtype=np.int64))
    )


def source_from_arrays(x_train, y_train, x_test, y_test, info: DatasetInfo) -> Source:
    """Wraps train/test arrays into a Source that also keeps the arrays.

    Args:
        x_train: uint8 ``(N, H, W, 3)`` training images.
        y_train: Integer ``(N,)`` training labels.
        x_test: uint8 ``(M, H, W, 3)`` test images.
        y_test: Integer ``(M,)`` test labels.
        info: The dataset description.

    Returns:
        A :class:`Source` with ``train_arrays`` and ``test_arrays`` set; labels are
        converted to int64 so arrays and datasets agree.
    """
    y_train = np.asarray(y_train, dtype=np.int64)
    y_test = np.asarray(y_test, dtype=np.int64)
    return Source(
        train=dataset_from_arrays(x_train, y_train),
        test=dataset_from_arrays(x_test, y_test),
        info=info,
        train_arrays=(x_train, y_train),
        test_arrays=(x_test, y_test),
    )
