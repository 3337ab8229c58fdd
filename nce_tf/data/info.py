"""What a dataset is, independent of where its pixels come from.

Every data source (generated, ``.npz`` file, TFDS) is described by the same two
records, so the training and search code never has to know which one it got:

* :class:`DatasetInfo` holds the static facts a model and a preprocessing pipeline
  need: the number of classes, the model input shape, the per-channel mean/std used to
  normalise pixels, and ``kind``, which picks the augmentation recipe ("cifar": pad,
  crop, flip at 32x32; "imagenet": random-resized crop to 224 for training, resize and
  centre crop for evaluation).
* :class:`Source` bundles the two unbatched ``tf.data`` splits with their info, plus the
  raw numpy arrays when the data is small enough to live in memory (the bi-level
  search splits those per class into a weight half and an architecture half).

Mean and std are on the 0..255 pixel scale, so normalising is simply
``(float(pixel) - mean) / std``.

Example::

    info = DatasetInfo(name="cifar10", num_classes=10, image_shape=(32, 32, 3),
                       num_train=50000, num_test=10000, mean=CIFAR10_MEAN,
                       std=CIFAR10_STD, kind="cifar")
"""

import dataclasses
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from nce_tf.errors import UsageError

# Per-channel statistics of the CIFAR-10 training set and of ImageNet, 0..255 scale.
CIFAR10_MEAN = (125.3, 123.0, 113.9)
CIFAR10_STD = (63.0, 62.1, 66.7)
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

KINDS = ("cifar", "imagenet")
CIFAR_INPUT_SHAPE = (32, 32, 3)
IMAGENET_INPUT_SHAPE = (224, 224, 3)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset.

    Attributes:
        name: Short name, used in logs and run directories.
        num_classes: Number of labels; labels are ``0 .. num_classes - 1``.
        image_shape: ``(H, W, C)`` of the model input after preprocessing.
        num_train: Number of training examples, or None when unknown.
        num_test: Number of test examples, or None when unknown.
        mean: Per-channel mean (3 floats, 0..255 scale) subtracted before the model.
        std: Per-channel standard deviation (3 floats, 0..255 scale).
        kind: ``"cifar"`` or ``"imagenet"``; selects the augmentation recipe.
    """

    name: str
    num_classes: int
    image_shape: Tuple[int, int, int]
    num_train: Optional[int]
    num_test: Optional[int]
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    kind: str

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UsageError(
                f"Unknown dataset kind. Received: kind={self.kind!r}. Expected one of {KINDS}."
            )
        if len(self.image_shape) != 3 or self.image_shape[-1] != 3:
            raise UsageError(
                "image_shape must be (H, W, 3). "
                f"Received: image_shape={tuple(self.image_shape)}."
            )
        for field in ("mean", "std"):
            value = getattr(self, field)
            if len(value) != 3:
                raise UsageError(
                    f"{field} must have 3 per-channel values. Received: {field}={value}."
                )
        if min(self.std) <= 0:
            raise UsageError(f"std must be positive. Received: std={self.std}.")
        # Frozen dataclass: normalise types once so equality and printing are stable
        # whatever sequence types the caller passed in.
        object.__setattr__(self, "image_shape", tuple(int(v) for v in self.image_shape))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))


@dataclasses.dataclass
class Source:
    """Two unbatched splits plus their description.

    Attributes:
        train: Unbatched ``tf.data.Dataset`` of ``(image uint8 [H, W, 3], label int64)``.
        test: Same for the evaluation split. For ImageNet-kind data images keep
            their original, varying sizes; the pipeline crops them.
        info: The :class:`DatasetInfo`.
        train_arrays: ``(x, y)`` numpy arrays of the training split when the data is
            in memory (synthetic, npz), else None.
        test_arrays: Same for the test split.
        train_indices: For subset sources, the sorted indices of the chosen examples
            in the full TFDS training split (for the record), else None.
    """

    train: tf.data.Dataset
    test: tf.data.Dataset
    info: DatasetInfo
    train_arrays: Optional[Tuple[np.ndarray, np.ndarray]] = None
    test_arrays: Optional[Tuple[np.ndarray, np.ndarray]] = None
    train_indices: Optional[np.ndarray] = None


def info_for_images(name, height, width, num_classes, num_train=None, num_test=None):
    """The :class:`DatasetInfo` of RGB images of one size (``None`` sides: sizes vary).

    32x32 images are CIFAR-kind (CIFAR-10 mean/std, pad-crop-flip at 32x32); any other
    or varying size is ImageNet-kind (ImageNet mean/std, random-resized crop to 224x224),
    so an ``.npz`` file and a TFDS dataset of the same images get the same model input.

    Args:
        name: Short name of the dataset.
        height: Image height in pixels, or None when it varies.
        width: Image width in pixels, or None when it varies.
        num_classes: Number of labels.
        num_train: Training examples, or None when unknown.
        num_test: Test examples, or None when unknown.

    Example::

        info_for_images("cifar100", 32, 32, 100).kind      # "cifar"
        info_for_images("tf_flowers", None, None, 5).image_shape   # (224, 224, 3)
    """
    cifar = (height, width) == CIFAR_INPUT_SHAPE[:2]
    return DatasetInfo(
        name=name,
        num_classes=int(num_classes),
        image_shape=CIFAR_INPUT_SHAPE if cifar else IMAGENET_INPUT_SHAPE,
        num_train=num_train,
        num_test=num_test,
        mean=CIFAR10_MEAN if cifar else IMAGENET_MEAN,
        std=CIFAR10_STD if cifar else IMAGENET_STD,
        kind="cifar" if cifar else "imagenet",
    )
