"""Pick a data source by name: the single entry point the tools and training code use.

Names::

    synthetic              generated stripes task, no files (see synthetic.py)
    npz:PATH               arrays x_train, y_train, x_test, y_test in one .npz file
    cifar10                TFDS cifar10, train/test
    imagenet2012           TFDS imagenet2012, train/validation
    imagenet2012_subset    NCE search subset: subset_per_class images per class
    tfds:NAME[:VERSION]    any TFDS image classification dataset ('image' and 'label')

TFDS datasets are downloaded and prepared into ``tfds_data_dir`` on first use, as
``tfds.load`` does; ``download=False`` refuses an unprepared one instead (offline
machines). ImageNet's files are downloaded by hand (the error says where they go).

Example::

    source = get_source("npz:/data/cifar10_subset.npz")
    source = get_source("synthetic", seed=3, synthetic_train_size=512)
    source = get_source("tfds:cifar100", tfds_data_dir="/data/tfds")
"""

import numbers
from typing import Callable, Optional

from nce_tf.data.info import DatasetInfo, Source
from nce_tf.data.npz import npz_source
from nce_tf.data.synthetic import synthetic_source
from nce_tf.data.tfds_images import PREFIX as _TFDS_PREFIX
from nce_tf.data.tfds_images import tfds_image_source
from nce_tf.errors import UsageError

NAMES = ("synthetic", "npz:PATH", "cifar10", "imagenet2012", "imagenet2012_subset", "tfds:NAME")
_NPZ_PREFIX = "npz:"


def _check_count(name: str, value) -> None:
    # numbers.Integral admits numpy integers from configs; bool is excluded on purpose.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise UsageError(f"{name} must be an integer >= 1. Received: {name}={value!r}.")


def get_source(
    name: str,
    *,
    tfds_data_dir: Optional[str] = None,
    seed: int = 0,
    synthetic_train_size: int = 2048,
    synthetic_test_size: int = 512,
    subset_per_class: int = 50,
    download: bool = True,
    check: Optional[Callable[[DatasetInfo], None]] = None,
) -> Source:
    """Returns the unbatched train/test splits and description of a dataset.

    Args:
        name: One of ``synthetic``, ``npz:PATH``, ``cifar10``, ``imagenet2012``,
            ``imagenet2012_subset``, ``tfds:NAME`` (``tfds:NAME:VERSION``).
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
    if not isinstance(name, str):
        raise UsageError(
            f"dataset name must be a string. Received: name={name!r}. "
            f"Expected one of {', '.join(NAMES)}."
        )
    if name == _TFDS_PREFIX:
        raise UsageError(
            f"tfds dataset needs a name. Received: name={name!r}. Expected e.g. 'tfds:cifar100'."
        )
    if name == "synthetic":
        _check_count("synthetic_train_size", synthetic_train_size)
        _check_count("synthetic_test_size", synthetic_test_size)
        return synthetic_source(seed, int(synthetic_train_size), int(synthetic_test_size))
    if name.startswith(_NPZ_PREFIX):
        path = name[len(_NPZ_PREFIX) :]
        if not path:
            raise UsageError(
                f"npz dataset needs a path. Received: name={name!r}. "
                "Expected e.g. 'npz:/data/cifar10_subset.npz'."
            )
        return npz_source(path)
    # Imported here so the in-memory sources never pay for importing TFDS.
    from nce_tf.data import tfds_sources

    if name == "cifar10" or name.startswith(_TFDS_PREFIX):
        tfds_name = name.removeprefix(_TFDS_PREFIX)
        return tfds_image_source(tfds_name, tfds_data_dir, download=download, check=check, shown=name)
    if name == "imagenet2012":
        return tfds_sources.imagenet_source(tfds_data_dir, seed=seed, download=download)
    if name == "imagenet2012_subset":
        _check_count("subset_per_class", subset_per_class)
        return tfds_sources.imagenet_subset_source(tfds_data_dir, int(subset_per_class), seed, download=download)
    example = f"tfds:{name}" if name.isidentifier() else "tfds:cifar100"
    raise UsageError(
        f"Unknown dataset. Received: name={name!r}. Expected one of {', '.join(NAMES)} "
        f"(tfds:NAME for any TFDS image classification dataset, e.g. {example})."
    )


def _fits_model(model):
    """The check of a user's model (``keras:PATH``) against a TFDS dataset before it is downloaded,
    or None: zoo models are built at whatever image size and class count the data has."""
    if not (isinstance(model, str) and model.startswith("keras:")):
        return None
    from nce_tf import sources  # the model side; imported only for a user's model

    spec = sources.get_spec(model)
    return lambda info: spec.check_data(info.image_shape, info.num_classes)


def source_for(config, dataset=None) -> Source:
    """The source of a run's config (a :class:`~nce_tf.train.TrainConfig` or anything with its
    data fields): ``dataset`` if given (a search's ``--search_dataset``), else ``config.dataset``.
    A TFDS dataset is prepared on first use unless ``config.download`` is False."""
    return get_source(
        dataset or config.dataset, tfds_data_dir=config.tfds_data_dir or None, seed=config.seed,
        synthetic_train_size=config.synthetic_train_size, synthetic_test_size=config.synthetic_test_size,
        subset_per_class=config.subset_per_class, download=getattr(config, "download", True),
        check=_fits_model(getattr(config, "model", "")))
