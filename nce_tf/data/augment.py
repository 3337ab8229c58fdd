"""Per-image augmentation and normalisation, for CIFAR-kind and ImageNet-kind data.

The recipes are the standard ones the NCE/TAS line of work trains with:

* CIFAR training: pad 4 pixels of zeros on every side (zeros, like PyTorch's
  ``RandomCrop(32, padding=4)``, not reflection), take a random 32x32 crop, flip
  left-right with probability 1/2.
* CIFAR evaluation: no geometric change.
* ImageNet training: random-resized crop (area 8%..100% of the image, aspect ratio
  3/4..4/3, via ``tf.image.stateless_sample_distorted_bounding_box`` with 10 attempts;
  if none fits, the whole image is used, where torchvision would centre crop), resized
  bilinearly to the model input (224x224), then a random left-right flip.
* ImageNet evaluation: resize so the shorter side is 256 (for a 224 input; in general
  ``round(size * 256 / 224)``), keeping the aspect ratio, then take the centre 224x224.

Every recipe ends with ``(float32(x) - mean) / std`` per channel, mean/std from the
:class:`~nce_tf.data.info.DatasetInfo` on the 0..255 scale.

Randomness is stateless: each call takes an explicit ``seed`` tensor of shape [2], so a
pipeline given a seed yields the same augmented images on every run, whatever the
parallelism. Resizes use antialiasing so downscaling matches PIL-based pipelines.

Example::

    x = preprocess_train(image_uint8, tf.constant([0, 7]), info)   # float32 [H, W, 3]
    x_eval = preprocess_eval(image_uint8, info)
"""

import numpy as np
import tensorflow as tf

from nce_tf.data.info import DatasetInfo
from nce_tf.errors import UsageError

CIFAR_PAD = 4
_AREA_RANGE = (0.08, 1.0)
_ASPECT_RANGE = (3.0 / 4.0, 4.0 / 3.0)
_CROP_ATTEMPTS = 10
# Ratio of the resize target to the crop size in the ImageNet evaluation recipe.
_EVAL_RESIZE_RATIO = 256.0 / 224.0


def normalize(image, info: DatasetInfo) -> tf.Tensor:
    """Casts to float32 and applies ``(x - mean) / std`` per channel.

    Args:
        image: ``[..., 3]`` tensor on the 0..255 scale, any numeric dtype.
        info: Provides ``mean`` and ``std``.

    Returns:
        float32 tensor of the same shape.
    """
    mean = tf.constant(info.mean, tf.float32)
    std = tf.constant(info.std, tf.float32)
    return (tf.cast(image, tf.float32) - mean) / std


def cifar_train_augment(image, seed, info: DatasetInfo) -> tf.Tensor:
    """Zero-pads by 4, random-crops back to the input size, random left-right flip.

    Args:
        image: uint8 ``[H, W, 3]`` tensor.
        seed: int ``[2]`` tensor for the stateless random ops.
        info: Provides the output ``image_shape``.

    Returns:
        Tensor ``[H, W, 3]`` of the input dtype.
    """
    height, width, channels = info.image_shape
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    padded = tf.pad(image, [[CIFAR_PAD, CIFAR_PAD], [CIFAR_PAD, CIFAR_PAD], [0, 0]])
    cropped = tf.image.stateless_random_crop(padded, [height, width, channels], seed=crop_seed)
    return tf.image.stateless_random_flip_left_right(cropped, seed=flip_seed)


def imagenet_train_augment(image, seed, info: DatasetInfo) -> tf.Tensor:
    """Random-resized crop to the input size, then a random left-right flip.

    Args:
        image: uint8 ``[h, w, 3]`` tensor of any size.
        seed: int ``[2]`` tensor for the stateless random ops.
        info: Provides the output ``image_shape``.

    Returns:
        float32 ``[H, W, 3]`` tensor on the 0..255 scale.
    """
    height, width, _ = info.image_shape
    box_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    whole_image = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, shape=[1, 1, 4])
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=whole_image,
        seed=box_seed,
        # 0 leaves area_range alone in charge, as in torchvision's RandomResizedCrop.
        min_object_covered=0.0,
        aspect_ratio_range=_ASPECT_RANGE,
        area_range=_AREA_RANGE,
        max_attempts=_CROP_ATTEMPTS,
        use_image_if_no_bounding_boxes=True,
    )
    crop = tf.slice(image, begin, size)
    resized = tf.image.resize(crop, [height, width], method="bilinear", antialias=True)
    return tf.image.stateless_random_flip_left_right(resized, seed=flip_seed)


def imagenet_eval_crop(images, info: DatasetInfo) -> tf.Tensor:
    """Resizes the shorter side to 256 (for 224 inputs) and takes the centre crop.

    Args:
        images: ``[h, w, 3]`` or ``[B, h, w, 3]`` tensor of any size.
        info: Provides the output ``image_shape``.

    Returns:
        float32 ``[H, W, 3]`` (or ``[B, H, W, 3]``) tensor on the 0..255 scale.
    """
    height, width, _ = info.image_shape
    target_short = float(round(min(height, width) * _EVAL_RESIZE_RATIO))
    shape = tf.shape(images)
    in_h, in_w = shape[-3], shape[-2]
    scale = target_short / tf.cast(tf.minimum(in_h, in_w), tf.float32)
    # Never below the crop size, so an extreme aspect ratio cannot make the crop fail.
    new_h = tf.maximum(tf.cast(tf.round(tf.cast(in_h, tf.float32) * scale), tf.int32), height)
    new_w = tf.maximum(tf.cast(tf.round(tf.cast(in_w, tf.float32) * scale), tf.int32), width)
    resized = tf.image.resize(images, [new_h, new_w], method="bilinear", antialias=True)
    top = (new_h - height) // 2
    left = (new_w - width) // 2
    return resized[..., top : top + height, left : left + width, :]


def preprocess_train(image, seed, info: DatasetInfo) -> tf.Tensor:
    """Training augmentation for ``info.kind`` followed by normalisation.

    Args:
        image: uint8 ``[h, w, 3]`` tensor.
        seed: int ``[2]`` tensor for the stateless random ops.
        info: The dataset description.

    Returns:
        float32 ``[H, W, 3]`` normalised tensor.
    """
    if info.kind == "cifar":
        augmented = cifar_train_augment(image, seed, info)
    else:
        augmented = imagenet_train_augment(image, seed, info)
    return normalize(augmented, info)


def preprocess_eval(image, info: DatasetInfo) -> tf.Tensor:
    """Deterministic evaluation preprocessing for ``info.kind``, then normalisation.

    Args:
        image: uint8 ``[h, w, 3]`` (or batched ``[B, h, w, 3]``) tensor.
        info: The dataset description.

    Returns:
        float32 normalised tensor with spatial size ``info.image_shape[:2]``.
    """
    if info.kind == "imagenet":
        image = imagenet_eval_crop(image, info)
    return normalize(image, info)


def normalize_for_model(images, info: DatasetInfo):
    """Applies the evaluation preprocessing to raw images outside a ``tf.data`` pipeline.

    Used by export and inference code to feed the model exactly what it saw during
    evaluation. For CIFAR-kind data that is just normalisation; ImageNet-kind images
    already at the model input size are only normalised, others are resized and
    centre-cropped first.

    Args:
        images: uint8 ``[H, W, 3]`` or ``[B, H, W, 3]``, as a numpy array (or
            array-like) or a ``tf.Tensor``.
        info: The dataset description.

    Returns:
        float32 array of the same kind as the input (numpy in, numpy out; tensor in,
        tensor out).

    Raises:
        UsageError: If the images are not 3-D/4-D with 3 channels, or CIFAR-kind
            images do not match ``info.image_shape``.
    """
    as_numpy = not tf.is_tensor(images)
    if as_numpy:
        images = np.asarray(images)
    shape = tuple(images.shape)
    if len(shape) not in (3, 4) or shape[-1] != 3:
        raise UsageError(
            "images must be [H, W, 3] or [B, H, W, 3]. "
            f"Received: images with shape={shape}."
        )
    same_size = tuple(shape[-3:-1]) == tuple(info.image_shape[:2])
    if info.kind == "cifar" and not same_size:
        raise UsageError(
            f"images must match the model input {info.image_shape} for "
            f"dataset {info.name!r}. Received: images with shape={shape}."
        )
    if as_numpy and same_size:
        mean = np.asarray(info.mean, np.float32)
        std = np.asarray(info.std, np.float32)
        return (images.astype(np.float32) - mean) / std
    if same_size:
        result = normalize(images, info)
    else:
        result = preprocess_eval(tf.convert_to_tensor(images), info)
    return result.numpy() if as_numpy else result
