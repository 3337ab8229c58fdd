"""Load an image classification dataset from one ``.npz`` file, with friendly errors.

Why: a single ``.npz`` is the simplest way to ship a fixed dataset (for example a CIFAR-10
subset) to a machine without TFDS or network access. The file must hold four arrays::

    x_train  uint8 (N, H, W, 3)     y_train  integer (N,)
    x_test   uint8 (M, H, W, 3)     y_test   integer (M,)

Labels are ``0 .. num_classes - 1`` with ``num_classes = max label + 1`` over both
splits. 32x32 images are treated as CIFAR-kind (CIFAR-10 mean/std, pad-crop-flip
augmentation); any other size as ImageNet-kind (ImageNet mean/std, random-resized crop
to a 224x224 model input).

The file is read with ``allow_pickle=False``: a data file can never run code. Every
problem the user can fix (missing file, not an npz, missing or malformed arrays) raises
:class:`~nce_tf.errors.UsageError` naming the path.

Example::

    source = npz_source("/data/cifar10_subset.npz")
    source.info.num_classes   # 10
"""

import os
import zipfile

import numpy as np

from nce_tf.data.info import Source, info_for_images
from nce_tf.data.memory import source_from_arrays
from nce_tf.errors import UsageError

REQUIRED_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
_EXPECTED = "Expected an .npz with arrays x_train, y_train, x_test, y_test."


def _not_valid(path: str, why: str) -> UsageError:
    why = " ".join(why.split())  # numpy messages may span lines; errors are one line.
    return UsageError(
        f"not a valid .npz dataset file ({why}). Received: path={path!r}. {_EXPECTED}"
    )


# What numpy and zipfile raise for truncated, foreign or pickled (object) content.
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)


def _is_npy(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(6) == b"\x93NUMPY"


def _read_arrays(path: str) -> dict:
    """Reads the four required arrays, raising UsageError for unreadable files."""
    if not os.path.isfile(path):
        raise UsageError(f"npz dataset file not found. Received: path={path!r}. {_EXPECTED}")
    if not zipfile.is_zipfile(path) and not _is_npy(path):
        raise _not_valid(path, "it is not a zip archive of .npy arrays")
    try:
        data = np.load(path, allow_pickle=False)
    except _READ_ERRORS as e:
        raise _not_valid(path, f"{type(e).__name__}: {e}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise _not_valid(path, "it holds a single .npy array, not an archive of arrays")
    with data:
        missing = [k for k in REQUIRED_ARRAYS if k not in data.files]
        if missing:
            raise UsageError(
                f"npz dataset is missing arrays {', '.join(missing)}. "
                f"Received: path={path!r} with arrays {sorted(data.files)}. {_EXPECTED}"
            )
        try:
            return {k: data[k] for k in REQUIRED_ARRAYS}
        except _READ_ERRORS as e:
            raise _not_valid(path, f"{type(e).__name__}: {e}") from None


def _check_split(path: str, split: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Validates one split and returns its images as uint8."""
    where = f"Received: path={path!r}, x_{split}.shape={x.shape}, y_{split}.shape={y.shape}."
    if x.ndim != 4 or x.shape[-1] != 3:
        raise UsageError(
            f"x_{split} must be 4-D images (N, H, W, 3). {where} {_EXPECTED}"
        )
    if x.shape[0] == 0:
        raise UsageError(f"npz split {split!r} is empty. {where}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise UsageError(
            f"y_{split} must be a 1-D integer label array. {where} dtype={y.dtype}."
        )
    if y.shape[0] != x.shape[0]:
        raise UsageError(f"x_{split} and y_{split} have different lengths. {where}")
    if y.min() < 0:
        raise UsageError(
            f"y_{split} has negative labels. {where} min label={int(y.min())}."
        )
    if x.dtype == np.uint8:
        return x
    # Accept other integer pixel types only when they are already on the 0..255 scale;
    # floats are refused because 0..1 and 0..255 conventions cannot be told apart safely.
    if np.issubdtype(x.dtype, np.integer) and x.min() >= 0 and x.max() <= 255:
        return x.astype(np.uint8)
    raise UsageError(
        f"x_{split} must hold uint8 pixels 0..255. {where} dtype={x.dtype}."
    )


def npz_source(path: str) -> Source:
    """Loads and validates an ``.npz`` dataset.

    Args:
        path: Path to the ``.npz`` file (``~`` is expanded).

    Returns:
        A :class:`Source` with arrays kept in memory. Kind "cifar" when images are
        32x32, else "imagenet" with a 224x224x3 model input.

    Raises:
        UsageError: If the file is missing, unreadable, or its arrays are malformed.
    """
    path = os.path.expanduser(str(path))
    arrays = _read_arrays(path)
    x_train = _check_split(path, "train", arrays["x_train"], arrays["y_train"])
    x_test = _check_split(path, "test", arrays["x_test"], arrays["y_test"])
    y_train, y_test = arrays["y_train"], arrays["y_test"]
    if x_train.shape[1:] != x_test.shape[1:]:
        raise UsageError(
            "x_train and x_test have different image shapes. "
            f"Received: path={path!r}, x_train.shape={x_train.shape}, x_test.shape={x_test.shape}."
        )
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    if num_classes < 2:
        raise UsageError(
            "npz dataset needs at least 2 classes. "
            f"Received: path={path!r}, max label={num_classes - 1}."
        )
    height, width = x_train.shape[1:3]
    info = info_for_images(
        os.path.splitext(os.path.basename(path))[0], height, width, num_classes,
        num_train=int(x_train.shape[0]), num_test=int(x_test.shape[0]),
    )
    return source_from_arrays(x_train, y_train, x_test, y_test, info)
