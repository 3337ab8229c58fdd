"""The data a run is trained on: its config's dataset, checked against a user's model before download.

Here, above both :mod:`nce_tf.data` (datasets by name) and the model names of this package, since it
needs both: a user's model (``keras:PATH``) states the image size and class count it takes, and a
TFDS dataset that does not fit is refused before it is downloaded.

Example::

    from nce_tf.sources import source_for
    source = source_for(TrainConfig(dataset="synthetic", synthetic_train_size=256))
"""

from nce_tf import data, sources  # nce_tf.data loads TensorFlow on first use only: sources stays light


def _fits_model(model):
    """The check of a user's model (``keras:PATH``) against a TFDS dataset before it is downloaded,
    or None: zoo models are built at whatever image size and class count the data has."""
    if not (isinstance(model, str) and model.startswith("keras:")):
        return None
    spec = sources.get_spec(model)
    return lambda info: spec.check_data(info.image_shape, info.num_classes)


def source_for(config, dataset=None):
    """The source of a run's config (a :class:`~nce_tf.train.TrainConfig` or anything with its
    data fields): ``dataset`` if given (a search's ``--search_dataset``), else ``config.dataset``.
    A TFDS dataset is prepared on first use unless ``config.download`` is False; returns its
    :class:`~nce_tf.data.info.Source`."""
    return data.get_source(
        dataset or config.dataset, tfds_data_dir=config.tfds_data_dir or None, seed=config.seed,
        synthetic_train_size=config.synthetic_train_size, synthetic_test_size=config.synthetic_test_size,
        subset_per_class=config.subset_per_class, download=getattr(config, "download", True),
        check=_fits_model(getattr(config, "model", "")))
