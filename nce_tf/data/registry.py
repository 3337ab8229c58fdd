"""The datasets nce-tf reads, by name: one :class:`Dataset` class each, in a registry.

A ``--dataset`` value is a registered name (``synthetic``, ``cifar10``) or, for a dataset that
takes an argument, ``NAME:ARGUMENT`` (``npz:/data/x.npz``, ``tfds:cifar100``).  The registry is
importable without TensorFlow: the tools check a ``--dataset`` value (:func:`check_dataset_name`)
and list the allowed names in ``--help`` and in errors (:func:`allowed`) before any heavy import;
each dataset imports its TensorFlow reader only when :meth:`Dataset.load` runs.

Adding a dataset is one subclass decorated with :func:`register_dataset` (and its test); it is then
usable by :func:`nce_tf.data.get_source`, ``TrainConfig.validate`` and every tool's ``--dataset``.

Example (a dataset registered in a few lines, from arrays in memory):

>>> import numpy as np
>>> from nce_tf.data import get_source
>>> from nce_tf.data.info import info_for_images
>>> from nce_tf.data.memory import source_from_arrays
>>> @register_dataset
... class Zeros(Dataset):
...     name, help = "zeros", "blank 8x8 images of two classes"
...     def load(self, value, options):
...         x, y = np.zeros((4, 8, 8, 3), np.uint8), np.array([0, 1, 0, 1])
...         return source_from_arrays(x, y, x, y, info_for_images(value, 8, 8, 2))
>>> get_source("zeros").info.num_classes
2
>>> _ = DATASETS.pop("zeros")
"""

import dataclasses
import numbers
from typing import Callable, Optional

from nce_tf.errors import UsageError

DATASETS = {}  # name -> Dataset instance, in the order help and errors list them


def register_dataset(cls):
    """Class decorator: registers an instance of a :class:`Dataset` subclass under ``cls.name``."""
    DATASETS[cls.name] = cls()
    return cls


@dataclasses.dataclass
class LoadOptions:
    """What a dataset may need besides its name; the arguments of :func:`nce_tf.data.get_source`."""

    tfds_data_dir: Optional[str] = None
    seed: int = 0
    synthetic_train_size: int = 2048
    synthetic_test_size: int = 512
    subset_per_class: int = 50
    download: bool = True
    check: Optional[Callable] = None


class Dataset:
    """One dataset kind.

    Attributes:
        name: the ``--dataset`` value, or the part before ``:`` when ``argument`` is set.
        argument: what follows ``NAME:`` (``PATH``), empty for a dataset without one.
        example: an argument shown when it is missing (``/data/cifar.npz``).
        help: one line for ``--help``.
    """

    name = ""
    argument = ""
    example = ""
    help = ""

    @property
    def shown(self):
        """The name as help and errors list it: ``synthetic``, ``npz:PATH``."""
        return f"{self.name}:{self.argument}" if self.argument else self.name

    def check(self, value, field="dataset"):
        """Checks ``value`` without TensorFlow (a missing argument); returns it."""
        if self.argument and value == f"{self.name}:":
            raise UsageError(f"The {self.name} dataset needs a {self.argument.lower()}. Received: {field}={value!r}. "
                             f"Expected e.g. {self.name}:{self.example}.")
        return value

    def load(self, value, options):
        """The :class:`~nce_tf.data.info.Source` of ``value`` (``name`` or ``name:argument``)."""
        raise NotImplementedError

    def arg(self, value):
        """The argument of ``name:argument``."""
        return value[len(self.name) + 1:]


def allowed():
    """The registered names as errors and ``--help`` list them."""
    return ", ".join(d.shown for d in DATASETS.values())


def dataset_for(value, field="dataset"):
    """The registered :class:`Dataset` that ``value`` names, its value checked; else a one-line error."""
    if isinstance(value, str):
        head, colon, _ = value.partition(":")
        found = DATASETS.get(head)
        if found is not None and bool(colon) == bool(found.argument):
            found.check(value, field)
            return found
    example = f" (tfds:NAME for any TFDS image classification dataset, e.g. tfds:{value})" if (
        isinstance(value, str) and value.isidentifier() and "tfds" in DATASETS) else ""
    raise UsageError(f"Unknown dataset. Received: {field}={value!r}. Allowed: {allowed()}{example}.")


def get_source(
    name: str,
    *,
    tfds_data_dir: Optional[str] = None,
    seed: int = 0,
    synthetic_train_size: int = 2048,
    synthetic_test_size: int = 512,
    subset_per_class: int = 50,
    download: bool = True,
    check: Optional[Callable[["DatasetInfo"], None]] = None,
) -> "Source":
    """Returns the unbatched train/test splits and description of a dataset: the one entry point
    the tools, the jobs and the library use (each dataset's TensorFlow reader loads here).

    Example::

        source = get_source("npz:/data/cifar10_subset.npz")
        source = get_source("synthetic", seed=3, synthetic_train_size=512)
        source = get_source("tfds:cifar100", tfds_data_dir="/data/tfds")

    Args:
        name: A name of :data:`nce_tf.data.registry.DATASETS`: ``synthetic``, ``npz:PATH``,
            ``cifar10``, ``imagenet2012``, ``imagenet2012_subset``, ``tfds:NAME``
            (``tfds:NAME:VERSION``), or one registered with ``register_dataset``.
        tfds_data_dir: TFDS data directory for the TFDS datasets; None means the
            TFDS default (``~/tensorflow_datasets`` or ``$TFDS_DATA_DIR``).
        seed: Seed for generated data (synthetic), the subset choice
            (imagenet2012_subset) and the file order of imagenet2012 training.
        synthetic_train_size: Training images of the synthetic task.
        synthetic_test_size: Test images of the synthetic task.
        subset_per_class: Training images per class of imagenet2012_subset.
        download: If False, an unprepared TFDS dataset is an error instead of a download.
        check: Called with a ``tfds:NAME`` dataset's :class:`DatasetInfo` before it is
            downloaded (raises :class:`UsageError` if it does not fit the model).

    Returns:
        A :class:`~nce_tf.data.info.Source`.

    Raises:
        UsageError: For an unknown name, bad sizes, missing/malformed data, or a TFDS
            dataset that is not image classification, does not fit ``check`` or cannot be
            prepared.
    """
    options = LoadOptions(tfds_data_dir=tfds_data_dir, seed=seed, synthetic_train_size=synthetic_train_size,
                          synthetic_test_size=synthetic_test_size, subset_per_class=subset_per_class,
                          download=download, check=check)
    return dataset_for(name, "name").load(name, options)


def check_dataset_name(value, field="dataset"):
    """Validates a ``--dataset`` value (not the files or the TFDS catalog: loading checks those)."""
    dataset_for(value, field)
    return value


def check_count(name, value):
    """``value`` as an int >= 1, else a one-line error naming ``name``."""
    # numbers.Integral admits numpy integers from configs; bool is excluded on purpose.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise UsageError(f"{name} must be an integer >= 1. Received: {name}={value!r}.")
    return int(value)


# The built-in datasets.  Each load imports its reader inside the method: the readers import
# TensorFlow (or TFDS), and this registry must stay importable without it (fast flag checks).


@register_dataset
class Synthetic(Dataset):
    name, help = "synthetic", "generated stripes task, no files"

    def load(self, value, options):
        from nce_tf.data.synthetic import synthetic_source  # TensorFlow: see the comment above

        return synthetic_source(options.seed, check_count("synthetic_train_size", options.synthetic_train_size),
                                check_count("synthetic_test_size", options.synthetic_test_size))


@register_dataset
class Cifar10(Dataset):
    name, help = "cifar10", "TFDS cifar10, train/test"

    def load(self, value, options):
        from nce_tf.data.tfds_images import tfds_image_source  # TensorFlow: see the comment above

        return tfds_image_source("cifar10", options.tfds_data_dir, download=options.download, check=options.check,
                                 shown=value)


@register_dataset
class Imagenet2012(Dataset):
    name, help = "imagenet2012", "TFDS imagenet2012, train/validation"

    def load(self, value, options):
        from nce_tf.data.tfds_imagenet import imagenet_source  # TensorFlow: see the comment above

        return imagenet_source(options.tfds_data_dir, seed=options.seed, download=options.download)


@register_dataset
class Imagenet2012Subset(Dataset):
    name, help = "imagenet2012_subset", "NCE's search subset: subset_per_class images per class"

    def load(self, value, options):
        from nce_tf.data.tfds_imagenet import imagenet_subset_source  # TensorFlow: see the comment above

        per_class = check_count("subset_per_class", options.subset_per_class)
        return imagenet_subset_source(options.tfds_data_dir, per_class, options.seed, download=options.download)


@register_dataset
class Npz(Dataset):
    name, argument, example = "npz", "PATH", "/data/cifar.npz"
    help = "arrays x_train, y_train, x_test, y_test in one .npz file"

    def load(self, value, options):
        from nce_tf.data.npz import npz_source  # TensorFlow: see the comment above

        return npz_source(self.arg(value))


@register_dataset
class Tfds(Dataset):
    name, argument, example = "tfds", "NAME", "cifar100"
    help = "any TFDS image classification dataset ('image' and 'label'), NAME[:VERSION]"

    def load(self, value, options):
        from nce_tf.data.tfds_images import tfds_image_source  # TensorFlow: see the comment above

        return tfds_image_source(self.arg(value), options.tfds_data_dir, download=options.download,
                                 check=options.check, shown=value)
