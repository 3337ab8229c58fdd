"""Turn an unbatched ``(image, label)`` dataset into model-ready batches.

One function, :func:`make_pipeline`, does the usual ``tf.data`` chain::

    training:    shuffle(seeded) -> augment + normalise -> batch -> prefetch
    evaluation:  preprocess + normalise -> batch -> prefetch

Augmentation is stateless and driven by a second seeded stream
(``tf.data.Dataset.random``, re-randomised every epoch) zipped with the data, so a
training pipeline built with the same ``seed`` yields the same batches epoch after
epoch on every run, while different epochs still see different crops and flips.
``seed=None`` gives fresh randomness each time.

Example::

    source = get_source("synthetic")
    train = make_pipeline(source.train, source.info, training=True, batch_size=128, seed=0)
    images, labels = next(iter(train))   # float32 [128, 32, 32, 3], int64 [128]
"""

import numbers
from typing import Optional

import tensorflow as tf

from nce_tf.data.augment import preprocess_eval, preprocess_train
from nce_tf.data.info import DatasetInfo
from nce_tf.errors import UsageError


def _check_positive_int(name: str, value) -> None:
    # numbers.Integral admits numpy integers from configs; bool is excluded on purpose.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise UsageError(f"{name} must be an integer >= 1. Received: {name}={value!r}.")


def _check_element_spec(ds: tf.data.Dataset, info: DatasetInfo) -> None:
    spec = ds.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise UsageError(
            "dataset elements must be (image, label) pairs. "
            f"Received: element_spec={spec}."
        )
    image_shape = spec[0].shape
    if image_shape.rank is not None and image_shape.rank != 3:
        raise UsageError(
            "dataset must be unbatched with [H, W, 3] images. "
            f"Received: image shape={image_shape}."
        )
    # CIFAR-kind preprocessing does not resize, so a size mismatch would only
    # surface later as an obscure batching or model error.
    if info.kind == "cifar" and not image_shape.is_compatible_with(info.image_shape):
        raise UsageError(
            f"images do not match the model input {info.image_shape} of dataset "
            f"{info.name!r}. Received: image shape={image_shape}."
        )


def make_pipeline(
    ds: tf.data.Dataset,
    info: DatasetInfo,
    *,
    training: bool,
    batch_size: int,
    seed: Optional[int] = None,
    shuffle_buffer: int = 10000,
    drop_remainder: Optional[bool] = None,
    epoch=None,
) -> tf.data.Dataset:
    """Builds the batched input pipeline for training or evaluation.

    Args:
        ds: Unbatched dataset of ``(image uint8 [h, w, 3], label int)``.
        info: Description of the data; selects augmentation and normalisation.
        training: True to shuffle and augment; False for deterministic evaluation.
        batch_size: Examples per batch, at least 1.
        seed: Seed for shuffling and augmentation (training only); None for
            non-reproducible randomness.
        shuffle_buffer: Size of the shuffle buffer (training only), at least 1.
        drop_remainder: Whether to drop a final partial batch. None means True for
            training (every step sees a full batch, which keeps batch-norm statistics
            and step counts regular) and False for evaluation (every example counts).
        epoch: Training only: build the pipeline of this epoch (an int or an int64 scalar
            tensor): its order and augmentation depend on ``(seed, epoch)`` alone, so a run
            resumed at an epoch sees the batches an uninterrupted run sees
            (:func:`epoch_stream`).  None: one stream re-shuffled on every pass.

    Returns:
        A dataset of ``(float32 [B, H, W, 3], labels [B])`` with the labels' dtype
        unchanged (int64 for every nce-tf source), prefetched.

    Raises:
        UsageError: If batch_size or shuffle_buffer is not a positive integer, or the
            dataset elements do not look like unbatched ``(image, label)`` pairs.
    """
    _check_positive_int("batch_size", batch_size)
    _check_positive_int("shuffle_buffer", shuffle_buffer)
    _check_element_spec(ds, info)
    if drop_remainder is None:
        drop_remainder = bool(training)
    if training:
        ds = _augmented(ds, info, seed, shuffle_buffer, epoch)
    else:

        def eval_map(image, label):
            return preprocess_eval(image, info), label

        ds = ds.map(eval_map, num_parallel_calls=tf.data.AUTOTUNE)

    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


def _augmented(ds, info, seed, shuffle_buffer, epoch):
    """``ds`` shuffled and augmented, each element with its own seed pair (see :func:`make_pipeline`)."""
    if epoch is not None:
        if seed is None:
            raise UsageError("A per-epoch pipeline needs a seed. Received: seed=None.")
        seed = epoch_seed(seed, epoch)
    # A per-epoch pipeline is one fixed pass (tf.data cannot re-shuffle from a tensor seed);
    # epoch_stream gives every pass its own seed instead.
    again = epoch is None
    ds = ds.shuffle(int(shuffle_buffer), seed=seed, reshuffle_each_iteration=again)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=again).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds))

    def train_map(element, element_seed):
        image, label = element
        return preprocess_train(image, element_seed, info), label

    return ds.map(train_map, num_parallel_calls=tf.data.AUTOTUNE)


def epoch_seed(seed, epoch):
    """The data seed of one pass: distinct for every ``(seed, epoch)`` with ``epoch < 1_000_003``."""
    return tf.cast(seed, tf.int64) * 1_000_003 + tf.cast(epoch, tf.int64) + 1


_PASSES = 1000  # most passes over the data one epoch can take (steps_per_epoch up to 1000 passes)


def epoch_stream(ds, info, *, batch_size, seed, steps, first_epoch, last_epoch, skip=0):
    """``steps`` training batches per epoch for epochs ``[first_epoch, last_epoch)``, resumable exactly.

    Epoch ``e`` is a sequence of passes ``make_pipeline(..., seed=seed, epoch=e * 1000 + p)``,
    ``p = 0, 1, ...`` (each its own shuffle and augmentation), cut at ``steps`` batches, so what
    an epoch sees depends on ``(seed, e)`` only: a run restarted at epoch ``e`` (and ``skip``
    batches into it, for a mid-epoch checkpoint) sees exactly the batches an uninterrupted run
    sees there, at no cost for the epochs before (nothing is replayed).  Each epoch starts a
    fresh shuffled pass, so with ``steps`` shorter than a pass every epoch sees its own random
    subset.
    """

    @tf.autograph.experimental.do_not_convert
    def one_pass(index):
        # The traced pass gets its own graph-level seed: the order then depends on (seed, epoch)
        # alone, whatever global seed the caller set, and TF's get_seed does not compare a
        # tensor seed with a global seed of 0 in Python (which fails with a tensor).
        tf.random.set_seed(_PASSES)
        return make_pipeline(ds, info, training=True, batch_size=batch_size, seed=seed, epoch=index)

    @tf.autograph.experimental.do_not_convert
    def one_epoch(e):
        return tf.data.Dataset.range(e * _PASSES, (e + 1) * _PASSES).flat_map(one_pass).take(steps)

    stream = tf.data.Dataset.range(int(first_epoch), int(last_epoch)).flat_map(one_epoch)
    if skip:
        stream = stream.skip(int(skip))
    return stream.prefetch(tf.data.AUTOTUNE)
