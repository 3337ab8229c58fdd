"""Pick a data source by name: the single entry point the tools and training code use.

Names::

    synthetic              generated stripes task, no files (see synthetic.py)
    npz:PATH               arrays x_train, y_train, x_test, y_test in one .npz file
    cifar10                TFDS cifar10, train/test
    imagenet2012           TFDS imagenet2012, train/validation
    imagenet2012_subset    NCE search subset: subset_per_class images per class

TFDS datasets must already be prepared in ``tfds_data_dir``; nothing is downloaded.

Example::

    source = get_source("npz:/data/cifar10_subset.npz")
    source = get_source("synthetic", seed=3, synthetic_train_size=512)
"""

import numbers
from typing import Optional

from nce_tf.data.info import Source
from nce_tf.data.npz import npz_source
from nce_tf.data.synthetic import synthetic_source
from nce_tf.errors import UsageError

NAMES = ("synthetic", "npz:PATH", "cifar10", "imagenet2012", "imagenet2012_subset")
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
) -> Source:
    """Returns the unbatched train/test splits and description of a dataset.

    Args:
        name: One of ``synthetic``, ``npz:PATH``, ``cifar10``, ``imagenet2012``,
            ``imagenet2012_subset``.
        tfds_data_dir: TFDS data directory for the TFDS datasets; None means the
            TFDS default (``~/tensorflow_datasets`` or ``$TFDS_DATA_DIR``).
        seed: Seed for generated data (synthetic), the subset choice
            (imagenet2012_subset) and the file order of imagenet2012 training.
        synthetic_train_size: Training images of the synthetic task.
        synthetic_test_size: Test images of the synthetic task.
        subset_per_class: Training images per class of imagenet2012_subset.

    Returns:
        A :class:`~nce_tf.data.info.Source`.

    Raises:
        UsageError: For an unknown name, bad sizes, or missing/malformed data.
    """
    if not isinstance(name, str):
        raise UsageError(
            f"dataset name must be a string. Received: name={name!r}. "
            f"Expected one of {', '.join(NAMES)}."
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

    if name == "cifar10":
        return tfds_sources.cifar10_source(tfds_data_dir)
    if name == "imagenet2012":
        return tfds_sources.imagenet_source(tfds_data_dir, seed=seed)
    if name == "imagenet2012_subset":
        _check_count("subset_per_class", subset_per_class)
        return tfds_sources.imagenet_subset_source(tfds_data_dir, int(subset_per_class), seed)
    raise UsageError(
        f"Unknown dataset. Received: name={name!r}. Expected one of {', '.join(NAMES)}."
    )


def source_for(config, dataset=None) -> Source:
    """The source of a run's config (a :class:`~nce_tf.train.TrainConfig` or anything with its
    data fields): ``dataset`` if given (a search's ``--search_dataset``), else ``config.dataset``."""
    return get_source(
        dataset or config.dataset, tfds_data_dir=config.tfds_data_dir or None, seed=config.seed,
        synthetic_train_size=config.synthetic_train_size, synthetic_test_size=config.synthetic_test_size,
        subset_per_class=config.subset_per_class)
