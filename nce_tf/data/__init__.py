"""Datasets and input pipelines for nce-tf.

Getting data into a model takes two steps:

1. :func:`get_source` returns a :class:`Source`: unbatched ``tf.data`` train/test
   splits of ``(image uint8 [H, W, 3], label int64)`` plus a :class:`DatasetInfo`
   (classes, input shape, mean/std, and ``kind``: "cifar" or "imagenet").
   Sources: a generated ``synthetic`` task, an ``npz:PATH`` file, or the TFDS datasets
   ``cifar10``, ``imagenet2012``, ``imagenet2012_subset`` and ``tfds:NAME`` (any image
   classification dataset of TFDS), downloaded and prepared on first use.
   Each name is a :class:`Dataset` class in the registry :data:`DATASETS` (:mod:`nce_tf.data.registry`);
   adding a dataset is one class decorated with :func:`register_dataset`.
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

import importlib

from nce_tf.data.registry import DATASETS, Dataset, get_source, register_dataset

# The rest loads TensorFlow, so it is imported on first use: the dataset registry (names, checks,
# ``--help``) stays importable without it, for the tools' fast flag checks.
_HOMES = {
    "imagenet_eval_crop": "augment", "normalize": "augment", "normalize_for_model": "augment",
    "preprocess_eval": "augment", "preprocess_train": "augment",
    "CIFAR10_MEAN": "info", "CIFAR10_STD": "info", "IMAGENET_MEAN": "info", "IMAGENET_STD": "info",
    "DatasetInfo": "info", "Source": "info",
    "epoch_stream": "pipeline", "make_pipeline": "pipeline",
    "select_per_class": "split", "split_per_class": "split",
}


def __getattr__(name):
    if name in _HOMES:
        return getattr(importlib.import_module(f"nce_tf.data.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'nce_tf.data' has no attribute {name!r}")


__all__ = ["DATASETS", "Dataset", "get_source", "register_dataset", *_HOMES]
