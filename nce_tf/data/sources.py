"""Pick a data source by name: the single entry point the tools and training code use.

The names are the registry's (:mod:`nce_tf.data.registry`, one class per dataset)::

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

from typing import Callable, Optional

from nce_tf.data.info import DatasetInfo, Source
from nce_tf.data.registry import LoadOptions, dataset_for


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
