"""Datasets and input pipelines for nce-tf.

Getting data into a model takes two steps:

1. :func:`get_source` returns a :class:`Source`: unbatched ``tf.data`` train/test
   splits of ``(image uint8 [H, W, 3], label int64)`` plus a :class:`DatasetInfo`
   (classes, input shape, mean/std, and ``kind``: "cifar" or "imagenet").
   Sources: a generated ``synthetic`` task, an ``npz:PATH`` file, or the TFDS datasets
   ``cifar10``, ``imagenet2012``, ``imagenet2012_subset`` and ``tfds:NAME`` (any image
   classification dataset of TFDS), downloaded and prepared on first use.
2. :func:`make_pipeline` shuffles, augments (training only), normalises, batches and
   prefetches.

For bi-level architecture search, :func:`split_per_class` splits the training
examples per class into a weight half and an architecture half.
:func:`normalize_for_model` applies the evaluation preprocessing to raw images outside
``tf.data`` (for export and inference).

Example::

    from nce_tf.data import get_source, make_pipeline, split_per_class

    source = get_source("synthetic", seed=0)
    train = make_pipeline(source.train, source.info, training=True, batch_size=64, seed=0)
    x, y = source.train_arrays
    idx_weights, idx_arch = split_per_class(y, fraction=0.5, seed=111)
"""

from nce_tf.data.augment import (
    imagenet_eval_crop,
    normalize,
    normalize_for_model,
    preprocess_eval,
    preprocess_train,
)
from nce_tf.data.info import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    DatasetInfo,
    Source,
)
from nce_tf.data.pipeline import epoch_stream, make_pipeline
from nce_tf.data.sources import NAMES, get_source, source_for
from nce_tf.data.split import select_per_class, split_per_class

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NAMES",
    "DatasetInfo",
    "Source",
    "get_source",
    "source_for",
    "epoch_stream",
    "imagenet_eval_crop",
    "make_pipeline",
    "normalize",
    "normalize_for_model",
    "preprocess_eval",
    "preprocess_train",
    "select_per_class",
    "split_per_class",
]
